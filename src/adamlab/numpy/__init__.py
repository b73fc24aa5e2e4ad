"""NumPy optimizers over adamlab's rules, for gradients you compute yourself (``preset="paper"`` default).

``export_state(opt, params)``/``import_state(opt, checkpoint, params)`` move the state to and from the other
faces (:mod:`adamlab.checkpoint`).
"""

from __future__ import annotations

from adamlab.errors import NonFiniteError
from adamlab.numpy.checkpoint import export_state, import_state
from adamlab.numpy.optimizer import NumpyOptimizer, make_numpy_optimizer
from adamlab.registry import OPTIMIZERS as _REGISTRY

#: face class per registry name (``"adam"`` → :class:`Adam` ...), one per :data:`adamlab.registry.OPTIMIZERS` entry
OPTIMIZERS: dict[str, type[NumpyOptimizer]] = {e.name: make_numpy_optimizer(e.rule, e.face) for e in _REGISTRY}
globals().update({cls.__name__: cls for cls in OPTIMIZERS.values()})  # adamlab.numpy.Adam, ...

__all__ = [
    "OPTIMIZERS",
    *sorted(cls.__name__ for cls in OPTIMIZERS.values()),
    "NonFiniteError",
    "NumpyOptimizer",
    "export_state",
    "import_state",
]
