r"""The building blocks the rules share, each in the order of arithmetic of every preset's framework.

An exponential moving average β·a + (1−β)·x is one formula and four roundings::

    torch   a.lerp_(x, 1−β)                    (second moment: a.mul_(β).addcmul_(g, g, value=1−β))
    optax   (1−β)·x + β·a                      (tree_update_moment; x = g² for the second moment)
    keras   a + (x − a)·(1−β)                  (update_step: assign_add(a, (x − a)·(1−β)))
            a·β + (1−β)·x, as fma              (Keras's torch backend replaces update_step with torch._foreach_
                                                ops: a.mul_(β) then add_(x, alpha=1−β))
    paper   β·a + (1−β)·x                      (Algorithm 1 as printed)

``order`` is the rule's preset; ``beta`` and ``w`` = 1−β come from the rule's coefficients.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.ops import Array, Ops, is_number, ops_for
from adamlab.rules.base import cast_like, is_host_step, like_step


def ema(ops: Ops, order: str, avg: Array, x: Array, beta: Any, w: Any) -> Array:
    """β·avg + (1−β)·x, with w = 1−β."""
    if order == "torch":
        return ops.lerp(avg, x, w)
    if order == "optax":
        return w * x + beta * avg
    if order == "keras":
        return ops.axpy(avg * beta, x, w) if ops.name == "torch" else avg + (x - avg) * w
    return beta * avg + w * x


def ema_square(ops: Ops, order: str, avg: Array, g: Array, beta: Any, w: Any) -> Array:
    """β·avg + (1−β)·|g|² (|g|² = g·conj(g) for complex g), with w = 1−β."""
    if order == "torch":
        return ops.addcmul(avg * beta, g, g, w)
    square = ops.abs_sq(g)
    if order == "optax":
        return w * square + beta * avg
    if order == "keras":
        return ops.axpy(avg * beta, square, w) if ops.name == "torch" else avg + (square - avg) * w
    return beta * avg + w * square


def l2_gradient(ops: Ops, order: str, g: Array, param: Array, wd: Any) -> Array:
    """g + λ·θ: L2 regularisation folded into the gradient (torch: ``grad.add(param, alpha=λ)``)."""
    return ops.axpy(g, param, wd) if order == "torch" else g + wd * param


def decay_weights(ops: Ops, order: str, param: Array, k: dict[str, Any]) -> Array:
    """Decoupled weight decay θ·(1 − lr·λ) before the step (torch: ``param.mul_(1 − lr·λ)``; Keras:
    ``θ − θ·λ·lr``, in the variable's dtype). Reads ``keep`` = 1 − lr·λ, ``wd`` and ``lr`` from ``k``."""
    if order == "keras" and ops.name != "torch":  # (Keras's torch backend: θ·(1 − λ·lr), as torch)
        return param - param * k["wd"] * k["lr"]
    return param * k["keep"]


def next_step(t: Any) -> Any:
    """t + 1, the step after t (Nesterov's look-ahead β^(t+1)). An integer array count saturates at its dtype's
    maximum, as ``optax.safe_increment`` does (so that optax's graph and this one are the same); a host int or a
    float count (Keras's) is just incremented."""
    kind = getattr(getattr(t, "dtype", None), "kind", None)
    if kind not in ("i", "u") or isinstance(t, np.ndarray | np.generic):
        return t + 1
    largest = np.iinfo(t.dtype).max
    return ops_for(t).where(t < largest, t + 1, largest)


def scale_by_learning_rate(lr: Any, u: Array) -> Array:
    """optax's ``scale_by_learning_rate``: the update u times −lr, written as optax writes it, ``(−1·lr)·u`` with
    −lr in u's dtype (``jnp.array(−1·lr(count), dtype=u.dtype)·u`` for a schedule)."""
    return cast_like(-1 * lr, u) * u


def keras_keep(lr: Any, wd: Any, t: Any) -> Any:
    """Keras's torch backend's decoupled decay factor ``1 − wd·lr``, computed in float32 (``lr`` is Keras's float32
    learning-rate variable) and then multiplied into every variable, whatever its dtype
    (``torch._foreach_mul_(variables, 1 − weight_decay·lr)``). Keras's arithmetic is what a Keras count asks for
    (t an array, as the Keras face passes it); with a host step t the factor is the host float 1 − lr·wd."""
    if is_host_step(t):
        return 1 - lr * wd
    if is_number(lr) and is_number(wd):
        return float(np.float32(1) - np.float32(wd) * np.float32(lr))
    return 1 - wd * lr


def keras_power(x: Any, t: Any) -> Any:
    """x^t as Keras computes β^t, ``ops.power(ops.cast(x, dtype), t)``: x in t's dtype and library, raised by that
    library's pow (a host t: Python's float64 power).

    NumPy has no Keras backend. For a float32 NumPy count the power is the one TensorFlow's CPU kernel computes
    for a 0-d float32 pow (measured with TensorFlow 2.21: in float64, rounded once to float32, subnormal results
    flushed to 0), so that the keras preset on NumPy reproduces ``tf.keras`` (``adamlab demo``).
    """
    base = like_step(x, t)
    if isinstance(t, np.ndarray | np.generic) and np.asarray(t).dtype == np.float32:
        power = np.float32(np.power(np.float64(base), np.float64(t)))
        return np.asarray(power if abs(power) >= np.finfo(np.float32).tiny else np.float32(0.0))
    return base**t
