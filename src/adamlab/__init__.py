"""adamlab: the Adam optimizer family (Kingma & Ba 2014), defined once and run anywhere.

- :mod:`adamlab.rules` (re-exported here): the math of each optimizer as a pure rule over arrays.
- :mod:`adamlab.torch`, :mod:`adamlab.numpy`: the framework faces.
- :func:`minimize` and :mod:`adamlab.lab`: run, watch and compare optimizers.

``import adamlab`` does not import torch; the torch face and autograd-based ``minimize`` import it when used.
"""

from __future__ import annotations

from adamlab.errors import NonFiniteError
from adamlab.lab.minimize import History, MinimizeResult, minimize
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
    "NonFiniteError",
    "RMSprop",
    "Rule",
    "__version__",
    "make_rule",
    "minimize",
]
