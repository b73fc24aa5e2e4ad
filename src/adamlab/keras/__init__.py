"""The Keras face: Keras 3 optimizer classes over adamlab's rules (``preset="keras"`` by default).

    >>> import keras, adamlab.keras
    >>> model.compile(optimizer=adamlab.keras.Adam(learning_rate=1e-3), loss="mse")   # doctest: +SKIP

The classes take Keras's argument names (``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``, ``rho``,
``weight_decay``, ``clipnorm``, ``use_ema`` …) as well as torch's (``lr``, ``betas``, ``eps``, ``alpha``), and
``preset="torch"`` gives torch.optim's conventions inside a Keras training loop. Keras has no RAdam; this
face has one anyway. Requires the ``keras`` extra (``pip install "adamlab[keras]"``) and a Keras backend:
when ``KERAS_BACKEND`` is unset and TensorFlow is not installed, the torch backend is selected before
Keras is imported (torch is always installed with adamlab).

``export_state(opt)``/``import_state(opt, checkpoint)`` move the optimizer state to and from the other faces
(:mod:`adamlab.checkpoint`); the optimizer must be built (``opt.build(model.trainable_variables)``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys


def _default_backend() -> None:
    """Pick Keras's torch backend when nothing else is configured and TensorFlow (Keras's default) is absent."""
    if "keras" in sys.modules or "KERAS_BACKEND" in os.environ or importlib.util.find_spec("tensorflow"):
        return
    config = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "keras.json")
    try:
        with open(config) as f:
            configured = json.load(f).get("backend")
    except (OSError, ValueError):
        configured = None
    if configured in (None, "tensorflow"):
        os.environ["KERAS_BACKEND"] = "torch"


_default_backend()
try:
    import keras  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("adamlab.keras needs Keras 3, which is not installed: pip install 'adamlab[keras]'") from error

from adamlab import rules  # noqa: E402
from adamlab.keras.checkpoint import export_state, import_state  # noqa: E402
from adamlab.keras.optimizer import RuleOptimizer, make_keras_optimizer  # noqa: E402

Adam = make_keras_optimizer(rules.Adam, "Adam")
AdamW = make_keras_optimizer(rules.AdamW, "AdamW")
Adamax = make_keras_optimizer(rules.Adamax, "Adamax")
Nadam = make_keras_optimizer(rules.NAdam, "Nadam")
NAdam = Nadam
RAdam = make_keras_optimizer(rules.RAdam, "RAdam")
SGD = make_keras_optimizer(rules.SGD, "SGD")
Adagrad = make_keras_optimizer(rules.Adagrad, "Adagrad")
RMSprop = make_keras_optimizer(rules.RMSprop, "RMSprop")
Adadelta = make_keras_optimizer(rules.Adadelta, "Adadelta")

#: face class per rule name
OPTIMIZERS: dict[str, type[RuleOptimizer]] = {
    cls.rule_type.name: cls for cls in (Adam, AdamW, Adamax, Nadam, RAdam, SGD, Adagrad, RMSprop, Adadelta)
}

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Nadam",
    "RAdam",
    "RMSprop",
    "RuleOptimizer",
    "export_state",
    "import_state",
]
