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

from adamlab.ops import Array, Ops


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
