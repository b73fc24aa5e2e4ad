"""The test problem of the conformance runs, and the distances between two runs' results.

The problem is chaotic on purpose: ``f(x) = ½·xᵀQx + 0.1·Σ sin 3x`` with Q = AAᵀ/64 for a random 64 × 64 matrix
A, its 64 parameters held in two tensors (shapes ``(40,)`` and ``(4, 6)``). The sine terms give it many local
minima, so a difference in the last bit of one step grows until the two runs end visibly apart: after a few
hundred steps two implementations are either identical bit for bit or clearly not. A tolerance would hide
exactly what this check is for.

Two runs are compared over their whole trajectories (the parameters after every step), so that a difference
cannot wash out when an optimizer converges to the same fixed point from slightly different paths. The distance
is counted in ulps (units in the last place): the number of floating-point values of that dtype between two
numbers (0: identical; 1: neighbours). NaN is at infinite distance from everything, including another NaN, and
−0.0 and +0.0 are at distance 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.ops import array_module

SIZE = 64  #: number of parameters
SHAPES: tuple[tuple[int, ...], ...] = ((40,), (4, 6))  #: the two tensors holding them


class Problem:
    """``½·xᵀQx + 0.1·Σ sin 3x`` over x ∈ R^64 held as two tensors; ``steps`` steps per run."""

    def __init__(self, seed: int, steps: int) -> None:
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(SIZE, SIZE))
        self.q = a @ a.T / SIZE
        self.x0 = rng.normal(size=SIZE)
        self.steps = steps

    def initial(self, dtype: Any = np.float64) -> list[np.ndarray]:
        """Fresh copies of the starting parameters, as the two tensors."""
        return split(self.x0.astype(dtype))

    def matrix(self, dtype: Any = np.float64) -> np.ndarray:
        return self.q.astype(dtype)


def split(x: Any) -> list[Any]:
    """The flat 64-vector as the two parameter tensors."""
    return [x[:40], x[40:].reshape(4, 6)]


def flatten(params: list[Any]) -> np.ndarray:
    """The two parameter tensors as one NumPy vector (for comparing runs)."""
    return np.concatenate([np.asarray(p).reshape(-1) for p in params])


def gradient(params: list[Any], q: Any) -> list[Any]:
    """∇f = Qx + 0.3·cos 3x, in the module and dtype of ``params`` (NumPy, torch or jax.numpy arrays)."""
    xp = array_module(params[0])
    x = xp.concatenate([params[0], params[1].reshape(-1)])
    return split(q @ x + 0.3 * xp.cos(3 * x))


def _sign_and_magnitude(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each float's sign and its magnitude's position among the non-negative floats of its dtype (int64)."""
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[x.dtype.itemsize]
    signed = np.ascontiguousarray(x).view(bits).reshape(-1)
    return signed < 0, (signed & np.array(np.iinfo(bits).max, dtype=bits)).astype(np.int64)


def ulp_distance(ours: Any, reference: Any) -> float:
    """The largest distance in ulps between corresponding elements (``inf`` where either is NaN).

    Both arrays must have the same float dtype and shape: the distance is counted in that dtype, exactly up to
    2^53 ulps (beyond, the two numbers have nothing in common anyway).
    """
    a, b = np.asarray(ours), np.asarray(reference)
    if a.dtype != b.dtype or a.shape != b.shape or a.dtype.kind != "f":
        raise ValueError(f"ulp_distance compares two float arrays of one dtype and shape; got {a.dtype}{a.shape} "
                         f"and {b.dtype}{b.shape}")  # fmt: skip
    if a.size == 0:
        return 0.0
    if np.isnan(a).any() or np.isnan(b).any():
        return float("inf")
    (neg_a, mag_a), (neg_b, mag_b) = _sign_and_magnitude(a), _sign_and_magnitude(b)
    same_side = np.abs(mag_a - mag_b).astype(np.float64)  # same sign: the difference of positions, exact
    across_zero = mag_a.astype(np.float64) + mag_b.astype(np.float64)  # opposite signs: through ±0
    return float(np.where(neg_a == neg_b, same_side, across_zero).max())


def relative_difference(ours: Any, reference: Any) -> float:
    """max|ours − reference| / max|reference| (the absolute difference where the reference is all zeros)."""
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf") if not np.array_equal(a, b, equal_nan=True) else 0.0
    scale = np.abs(b).max() if b.size else 0.0
    diff = np.abs(a - b).max() if a.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


__all__ = ["SHAPES", "SIZE", "Problem", "flatten", "gradient", "relative_difference", "split", "ulp_distance"]
