"""Which Keras backend the face runs on: Keras's own choice, with torch as the fallback before Keras is imported.

Keras reads its backend once, when it is first imported: ``KERAS_BACKEND``, else ``keras.json`` in
``KERAS_HOME`` (default ``~/.keras``), else ``"tensorflow"``. adamlab never switches a backend Keras already
uses. It only fills in the one case that would otherwise fail: Keras not imported yet, no ``KERAS_BACKEND``,
no backend in ``keras.json`` other than the default it writes there itself (``"tensorflow"``), and TensorFlow
not installed. Then it sets ``KERAS_BACKEND=torch`` (torch is always installed with adamlab).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

#: the backends this face is tested on (Keras's numpy and openvino backends do not train)
TESTED_BACKENDS: tuple[str, ...] = ("torch", "jax", "tensorflow")
#: the packages Keras's backends import
_BACKEND_PACKAGES: tuple[str, ...] = ("torch", "jax", "jaxlib", "tensorflow", "openvino")


def _keras_home() -> str:
    """Keras's configuration folder, found the way Keras finds it (``keras/src/backend/config.py``)."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def configured_backend() -> str:
    """The backend Keras will pick when it is imported now: ``KERAS_BACKEND``, else keras.json, else tensorflow."""
    if os.environ.get("KERAS_BACKEND"):  # Keras ignores an empty value
        return os.environ["KERAS_BACKEND"]
    try:
        with open(os.path.join(_keras_home(), "keras.json")) as f:
            configured = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        configured = None
    return configured if isinstance(configured, str) and configured else "tensorflow"


def select_default_backend() -> None:
    """Before Keras is imported, choose its torch backend where Keras would otherwise look for a missing TensorFlow.

    Does nothing once Keras is imported (its backend is used as is) or when a backend is configured.
    """
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):  # imported, or chosen: never switched
        return
    if configured_backend() != "tensorflow" or importlib.util.find_spec("tensorflow"):
        return
    os.environ["KERAS_BACKEND"] = "torch"


def import_error(error: ModuleNotFoundError) -> ImportError | ModuleNotFoundError:
    """A clear ImportError for ``import keras`` failing for want of Keras or of its configured backend."""
    missing = (error.name or "").split(".")[0]
    if missing == "keras":
        return ImportError("adamlab.keras needs Keras 3, which is not installed: pip install 'adamlab[keras]'")
    if missing not in _BACKEND_PACKAGES:
        return error
    return ImportError(
        f"Keras is configured for its {configured_backend()!r} backend (KERAS_BACKEND, else keras.json in "
        f"{_keras_home()}), but {error.name!r} is not installed. Set KERAS_BACKEND to an installed backend "
        f"({', '.join(TESTED_BACKENDS)}) before Keras is first imported, or install that package."
    )
