"""DTensor parameters (FSDP2's ``fully_shard``, tensor parallelism) and the one non-finite decision of all ranks.

- A DTensor parameter is stepped on its local shard (``to_local()``) with torch's operations: the rules are
  elementwise, so each rank updates its own elements exactly as torch.optim does, and the state entries are
  DTensors with the parameter's mesh and placements, as torch.optim's ``zeros_like`` makes them. Rules whose
  state is not elementwise (Adafactor's factored moments) run on the DTensors themselves, whose operators
  reduce across ranks where the math needs it.
- Where each rank holds a different part of the model (DTensor parameters; ``ZeroRedundancyOptimizer``, which
  hands each rank's optimizer its own shard), whether a gradient is NaN/inf is decided for all ranks together:
  each rank reduces its own finite flag with one ``all_reduce`` (MIN) over the default process group per step,
  so ``nonfinite="skip"`` skips the step on every rank and ``"raise"`` raises on every rank before any changes.
  With replicated parameters (DDP) every rank sees the same gradients, and no communication is needed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import torch


def dtensor_type() -> type | None:
    """``torch.distributed.tensor.DTensor`` if it was imported already (nothing is imported here)."""
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None) if module is not None else None


def is_dtensor(t: Any) -> bool:
    cls = dtensor_type()
    return cls is not None and isinstance(t, cls)


def local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (a view: writes reach the DTensor), or ``t`` itself."""
    return t.to_local() if is_dtensor(t) else t


def like_param(value: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """A state entry computed on ``p``'s local shard, as a DTensor laid out as ``p`` (``value`` when ``p`` is
    not a DTensor)."""
    if not is_dtensor(p):
        return value
    cls = dtensor_type()
    return cls.from_local(value, p.device_mesh, p.placements, run_check=False, shape=p.shape, stride=p.stride())


def inside_zero_redundancy() -> bool:
    """True when the optimizer being built is the local optimizer of a ``ZeroRedundancyOptimizer`` (it builds it
    in its own ``__init__``/``add_param_group``: a frame up the stack whose ``self`` is one)."""
    module = sys.modules.get("torch.distributed.optim.zero_redundancy_optimizer")
    zero = getattr(module, "ZeroRedundancyOptimizer", None) if module is not None else None
    if zero is None:
        return False
    frame = sys._getframe(1)
    for _ in range(12):
        if frame is None:
            return False
        if isinstance(frame.f_locals.get("self"), zero):
            return True
        frame = frame.f_back
    return False


def sharded(params: Iterable[torch.Tensor]) -> bool:
    """True when some parameter is a DTensor."""
    cls = dtensor_type()
    return cls is not None and any(isinstance(p, cls) for p in params)


def all_ranks_finite(finite: bool, device: torch.device) -> bool:
    """``finite`` combined over every rank of the default process group (one all_reduce of one element)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return finite
    backend = dist.get_backend()
    if backend == "gloo" or device.type == "meta":
        device = torch.device("cpu")
    flag = torch.tensor([1 if finite else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())
