"""adamlab: the Adam optimizer family (Kingma & Ba 2014), defined once and run anywhere.

- :mod:`adamlab.rules` (re-exported here): the math of each optimizer as a pure rule over arrays.
- :mod:`adamlab.torch`, :mod:`adamlab.numpy`, :mod:`adamlab.optax`, :mod:`adamlab.keras`: the framework faces
  (the last two need the ``jax`` and ``keras`` extras and are imported only when used).
- :mod:`adamlab.checkpoint`: optimizer state that moves between faces; :mod:`adamlab.conformance`: the
  side-by-side comparison with torch.optim, optax and Keras.
- :func:`minimize` and :mod:`adamlab.lab`: run, watch and compare optimizers.

``import adamlab`` does not import torch; the torch face and autograd-based ``minimize`` import it when used.
"""

from __future__ import annotations

from adamlab.errors import NonFiniteError
from adamlab.lab.compare import compare
from adamlab.lab.minimize import History, MinimizeResult, minimize
from adamlab.lab.minimize_batched import minimize_batched
from adamlab.rules import (
    OPTIMIZER_NAMES,
    PRESETS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Averaged,
    NAdam,
    RAdam,
    RMSprop,
    Rule,
    make_rule,
)

__version__ = "0.1.0"

__all__ = [
    "OPTIMIZER_NAMES",
    "PRESETS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Averaged",
    "History",
    "MinimizeResult",
    "NAdam",
    "NonFiniteError",
    "RAdam",
    "RMSprop",
    "Rule",
    "__version__",
    "compare",
    "make_rule",
    "minimize",
    "minimize_batched",
]
