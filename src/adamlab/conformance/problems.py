"""The test problem of the conformance runs: a noisy random quadratic and a small MLP on random minibatches.

Both parts are optimized together as one list of parameters ``[x, W1, b1, W2, b2]``; the gradient of step t
is a pure function of the parameters and t, written once over NumPy or jax.numpy arrays. The per-step noise
and minibatches keep the gradients away from zero, where adaptive steps (m/√v with both → 0) would
amplify last-bit rounding differences into visible ones and the comparison would measure chaos, not math.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.ops import array_module as namespace

#: parameter names, in order; the first belongs to the quadratic, the rest to the MLP
PARAM_NAMES: tuple[str, ...] = ("x", "W1", "b1", "W2", "b2")
QUADRATIC, MLP = PARAM_NAMES[:1], PARAM_NAMES[1:]


class Problem:
    """½·xᵀAx − bᵀx + noise_tᵀx (8-d, A positive definite) and a 4-8-1 tanh MLP, mean squared error on
    a minibatch of 16 of 64 fixed random points per step. ``data`` holds every array the gradient needs."""

    def __init__(self, seed: int, steps: int) -> None:
        rng = np.random.default_rng(seed)
        n, hidden, points, batch = 8, 8, 64, 16
        q = rng.normal(size=(n, n))
        x_mlp = rng.normal(size=(points, 4))
        self.data = {
            "A": q.T @ q / n + 0.1 * np.eye(n),
            "b": rng.normal(size=n),
            "noise": 0.3 * rng.normal(size=(steps, n)),
            "X": x_mlp,
            "Y": np.sin(x_mlp.sum(axis=1, keepdims=True)),
            "batches": rng.integers(0, points, size=(steps, batch)),
        }
        self.init = [
            rng.normal(size=n),
            rng.normal(size=(4, hidden)) / 2,
            0.1 * rng.normal(size=hidden),
            rng.normal(size=(hidden, 1)) / np.sqrt(hidden),
            0.1 * rng.normal(size=1),
        ]
        self.steps = steps

    def initial(self, dtype: Any = np.float64) -> list[np.ndarray]:
        """Fresh copies of the starting parameters."""
        return [p.astype(dtype, copy=True) for p in self.init]


def gradient(params: list[Any], t: Any, data: dict[str, Any]) -> list[Any]:
    """The gradient at step ``t`` (0-based) of both parts, in the module of ``params`` (NumPy or jax.numpy)."""
    xp = namespace(params[0])
    x, w1, b1, w2, b2 = params
    g_quad = data["A"] @ x - data["b"] + data["noise"][t]
    idx = data["batches"][t]
    inputs, targets = data["X"][idx], data["Y"][idx]
    hidden = xp.tanh(inputs @ w1 + b1)
    d_out = (hidden @ w2 + b2 - targets) / inputs.shape[0]  # d(½·mean r²)/dy
    d_pre = (d_out @ w2.T) * (1 - hidden * hidden)
    return [g_quad, inputs.T @ d_pre, d_pre.sum(axis=0), hidden.T @ d_out, d_out.sum(axis=0)]


def relative_difference(ours: list[np.ndarray], reference: list[np.ndarray]) -> dict[str, float]:
    """max|ours − ref| / max|ref| per parameter, maximised over the quadratic's and over the MLP's parameters."""
    per = {}
    for name, a, b in zip(PARAM_NAMES, ours, reference, strict=True):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        scale = np.abs(b).max()
        per[name] = float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max())
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            per[name] = float("inf")
    return {"quadratic": max(per[n] for n in QUADRATIC), "mlp": max(per[n] for n in MLP)}
