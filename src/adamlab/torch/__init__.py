"""PyTorch optimizers: drop-in ``torch.optim.Optimizer`` classes over adamlab's rules (``preset="torch"``).

    >>> import torch, adamlab.torch
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = adamlab.torch.Adam(model.parameters(), lr=1e-3)

One class per :data:`adamlab.registry.OPTIMIZERS` entry (``adamlab.torch.Adam``, ``.NAdam``, ...), built by
:func:`~adamlab.torch.optimizer.make_torch_optimizer`: where torch.optim has the optimizer, the class has
torch's signature (positional order, keyword-only parameters, defaults), torch's checks and exception types,
torch's param-group keys and state format, so code written for torch.optim runs unchanged (docs/torch-face.md).
See each rule in :mod:`adamlab.rules` for the math and the extra options (``eps_hat``, ``bias_correction``, ...).
Dense float32/float64 CPU parameters take the fast path by default (a flat buffer per (device, dtype), one
numba kernel call per param group, bit-identical to the plain path; ``fast=False`` turns it off; see
docs/fast-path.md).
``export_state(opt)``/``import_state(opt, checkpoint)`` move the state to and from the other faces
(:mod:`adamlab.checkpoint`).

The package holds the whole face: :mod:`~adamlab.torch.optimizer` (the ``torch.optim.Optimizer`` subclass),
:mod:`~adamlab.torch.signature` (torch's signatures and checks), :mod:`~adamlab.torch.plain_path` (the
per-parameter step), :mod:`~adamlab.torch.fast_path` and :mod:`~adamlab.torch.flat_buffer` (the CPU fast path),
:mod:`~adamlab.torch.loading` and :mod:`~adamlab.torch.step_count` (state dicts), :mod:`~adamlab.torch.distributed`
(DTensor/FSDP2, one NaN decision for all ranks) and :mod:`~adamlab.torch.checkpoint` (its checkpoint pair).
"""

from __future__ import annotations

from adamlab.registry import OPTIMIZERS as _REGISTRY
from adamlab.torch.checkpoint import export_state, import_state
from adamlab.torch.optimizer import NonFiniteError, RuleOptimizer, make_torch_optimizer

#: face class per registry name (``"adam"`` → :class:`Adam` ...), one per :data:`adamlab.registry.OPTIMIZERS` entry
OPTIMIZERS: dict[str, type[RuleOptimizer]] = {e.name: make_torch_optimizer(e) for e in _REGISTRY}
globals().update({cls.__name__: cls for cls in OPTIMIZERS.values()})  # adamlab.torch.Adam, ...

__all__ = [
    "OPTIMIZERS",
    *sorted(cls.__name__ for cls in OPTIMIZERS.values()),
    "NonFiniteError",
    "RuleOptimizer",
    "export_state",
    "import_state",
]
