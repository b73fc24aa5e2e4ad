"""NumPy optimizers over adamlab's rules, for gradients you compute yourself (``preset="paper"`` default).

``export_state(opt, params)``/``import_state(opt, checkpoint, params)`` move the state to and from the other
faces (:mod:`adamlab.checkpoint`).
"""

from __future__ import annotations

from adamlab import rules
from adamlab.errors import NonFiniteError
from adamlab.numpy.checkpoint import export_state, import_state
from adamlab.numpy.optimizer import NumpyOptimizer, make_numpy_optimizer

Adam = make_numpy_optimizer(rules.Adam)
AdamW = make_numpy_optimizer(rules.AdamW)
Adamax = make_numpy_optimizer(rules.Adamax)
NAdam = make_numpy_optimizer(rules.NAdam)
RAdam = make_numpy_optimizer(rules.RAdam)
SGD = make_numpy_optimizer(rules.SGD)
Adagrad = make_numpy_optimizer(rules.Adagrad)
RMSprop = make_numpy_optimizer(rules.RMSprop)
Adadelta = make_numpy_optimizer(rules.Adadelta)

__all__ = [
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "NonFiniteError",
    "NumpyOptimizer",
    "RAdam",
    "RMSprop",
    "SGD",
    "export_state",
    "import_state",
]
