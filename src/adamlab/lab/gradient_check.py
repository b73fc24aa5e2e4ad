"""Catch a ``fun`` that autograd cannot differentiate: written with ``math.*`` or NumPy instead of ``torch.*``.

``math.sin(x)`` of a tensor returns a Python float: autograd silently drops that term (torch only warns),
and the optimizer follows a wrong gradient. ``np.sin(x)`` of a tensor that requires grad raises torch's
"Can't call numpy() on Tensor that requires grad". Both are caught before the first step:

- :func:`autograd_gradient_mismatch` compares autograd's gradient at x0 with a central finite difference
  of ``fun`` along one fixed direction, in the run's dtype (``fun`` sees the tensors it always sees). A
  mismatch counts only when the finite differences of two step sizes (h and h/16) agree with each other, so
  a kink near x0 (``abs``) is not reported. Tolerances (relative): float64 h = 1e-4, agreement 1e-4,
  mismatch 1e-3; float32 h = 1e-2, agreement 1e-2, mismatch 3e-2 (``math.sin`` at x = 1 is 21% off).
- :data:`TORCH_HINT` is the message both cases end with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["TORCH_HINT", "autograd_gradient_mismatch"]

TORCH_HINT = ("write fun with torch functions (torch.sin, torch.exp, ...), not math.* or numpy.*, so that "
              "autograd can differentiate it; or pass grad=")  # fmt: skip


def _value(fun: Callable[[Any], Any], x: Any) -> float:
    import torch

    with torch.no_grad():
        out = fun(x)
    return float(out.detach().reshape(()) if torch.is_tensor(out) else np.asarray(out, dtype=float).reshape(()))


#: (h, agreement, mismatch) relative tolerances per dtype (see the module docstring)
_TOLERANCES = {"float64": (1e-4, 1e-4, 1e-3), "float32": (1e-2, 1e-2, 3e-2)}


def autograd_gradient_mismatch(fun: Callable[[Any], Any], x0: np.ndarray, grad: np.ndarray,
                               dtype: str = "float64") -> str | None:  # fmt: skip
    """None when autograd's ``grad`` at ``x0`` agrees with finite differences of ``fun``; else a message."""
    import torch

    step, agree, mismatch = _TOLERANCES[dtype]
    torch_dtype = getattr(torch, dtype)
    x = np.asarray(x0, dtype=np.float64)
    n = x.size
    direction = 1.0 / np.arange(1, n + 1, dtype=np.float64)  # fixed, unequal weights (no cancellation)
    direction = (direction / np.linalg.norm(direction)).reshape(x.shape)
    autograd = float(np.sum(np.asarray(grad, dtype=np.float64) * direction))
    scale = max(1.0, float(np.max(np.abs(x))) if n else 1.0)

    def central(h: float) -> float:
        plus_x = torch.as_tensor(x + h * direction, dtype=torch_dtype)
        minus_x = torch.as_tensor(x - h * direction, dtype=torch_dtype)
        taken = float(np.sum((plus_x.double().numpy() - minus_x.double().numpy()) * direction))  # the step made
        return (_value(fun, plus_x) - _value(fun, minus_x)) / taken

    try:
        coarse, fine = central(step * scale), central(step * scale / 16)
    except Exception:  # fun cannot be evaluated near x0 in float64: nothing to compare
        return None
    if not (math.isfinite(coarse) and math.isfinite(fine) and math.isfinite(autograd)):
        return None
    size = max(abs(coarse), abs(fine), abs(autograd), 1e-12)
    smooth = abs(coarse - fine) <= agree * size + 1e-9
    if smooth and abs(autograd - fine) > mismatch * size + 1e-9:
        where = f"x0 = {x.tolist() if n > 1 else float(x.reshape(()))}"
        what = "the derivative" if n == 1 else "the directional derivative"
        return (f"fun: autograd's gradient disagrees with a finite difference at {where} ({what} {autograd:.6g} "
                f"vs {fine:.6g}): {TORCH_HINT}")  # fmt: skip
    return None
