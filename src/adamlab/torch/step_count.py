"""``state["step"]`` in torch.optim's format, with an exact count behind it.

torch.optim keeps the step count of each parameter as a 0-d float tensor: float32 (float64 when the default
dtype is float64) on the CPU, or float32 on the parameter's device with ``fused``/``capturable``. A float32
count stops at 2^24 = 16,777,216 (2^24 + 1 rounds back to 2^24), so torch's bias corrections stall there. This
face keeps torch's format while it is exact and moves a count past 2^24 into a float64 tensor, exact to 2^53:
the count behind the bias corrections is always ``int(state["step"])``, and ``state_dict()`` carries it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

#: the largest count a float32 step tensor holds exactly (every integer up to it is a float32)
FLOAT32_EXACT = 2**24
#: the largest count accepted from a checkpoint (float64 holds every integer up to it)
MAX_STEP = 2**53


def scalar_dtype(group: dict[str, Any] | None = None) -> torch.dtype:
    """torch's dtype for the step tensor (``torch.optim.optimizer._get_scalar_dtype``)."""
    if group is not None and group.get("fused"):
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def step_device(p: torch.Tensor, group: dict[str, Any] | None) -> torch.device:
    """Where torch keeps the step: on the CPU, or with the parameter under ``fused``/``capturable``."""
    if group is not None and (group.get("fused") or group.get("capturable")):
        return p.device if p.device.type != "meta" else torch.device("cpu")
    return torch.device("cpu")


def make_step(count: int, p: torch.Tensor, group: dict[str, Any] | None = None) -> torch.Tensor:
    """A step tensor holding ``count`` (float64 past 2^24, where float32 is no longer exact)."""
    dtype = scalar_dtype(group)
    if dtype == torch.float32 and count > FLOAT32_EXACT:
        dtype = torch.float64
    return torch.tensor(float(count), dtype=dtype, device=step_device(p, group))


def count_of(step: Any) -> int:
    """The integer count of a step entry (a tensor, or a number from an older checkpoint)."""
    return int(step.item()) if torch.is_tensor(step) else int(step)


def advance(state: dict[str, Any], p: torch.Tensor, group: dict[str, Any]) -> int:
    """``step += 1`` in place, as torch does, unless float32 could no longer hold the new count; returns it."""
    step = state["step"]
    count = count_of(step) + 1
    if torch.is_tensor(step) and (step.dtype != torch.float32 or count <= FLOAT32_EXACT):
        step.fill_(float(count))
    else:
        state["step"] = make_step(count, p, group)
    return count


def checked_count(value: Any, where: str) -> int:
    """A loaded step as an integer in [0, 2^53]; ValueError naming ``where`` otherwise (negative, NaN, inf,
    fractional, or too large for the count to be exact)."""
    if torch.is_tensor(value):
        if value.numel() != 1 or value.is_complex() or value.device.type == "meta":
            raise ValueError(f"{where}: step must be one number; got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: step must be an integer in [0, 2^53]; got {value!r}")
    if not math.isfinite(value) or value != int(value) or not 0 <= value <= MAX_STEP:
        raise ValueError(f"{where}: step must be an integer in [0, 2^53]; got {value!r}")
    return int(value)
