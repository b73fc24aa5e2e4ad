"""NumPy optimizers over adamlab's rules, for gradients you compute yourself (``preset="paper"`` default)."""

from __future__ import annotations

from adamlab import rules
from adamlab.adapters.numpy_optimizer import NumpyOptimizer, make_numpy_optimizer
from adamlab.errors import NonFiniteError

Adam = make_numpy_optimizer(rules.Adam)
AdamW = make_numpy_optimizer(rules.AdamW)
Adamax = make_numpy_optimizer(rules.Adamax)
SGD = make_numpy_optimizer(rules.SGD)
Adagrad = make_numpy_optimizer(rules.Adagrad)
RMSprop = make_numpy_optimizer(rules.RMSprop)
Adadelta = make_numpy_optimizer(rules.Adadelta)

__all__ = ["Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NonFiniteError", "NumpyOptimizer", "RMSprop", "SGD"]
