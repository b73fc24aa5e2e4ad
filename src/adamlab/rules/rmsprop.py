"""RMSProp (Tieleman & Hinton 2012), optionally centered and with momentum."""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.ops import Ops
from adamlab.rules.base import (
    Array,
    Coefficients,
    Rule,
    State,
    StateLayout,
    apply_increment,
    check_flag,
    check_number,
    guard_zero,
    like_step,
    nonzero,
    per_element,
    positive,
)
from adamlab.rules.moments import decay_weights, ema, ema_square, keras_keep, l2_gradient, scale_by_learning_rate


@dataclasses.dataclass(frozen=True)
class RMSprop(Rule):
    r"""RMSProp, as torch.optim.RMSprop::

        s ← α·s + (1−α)·g²
        ḡ ← α·ḡ + (1−α)·g;  s̃ = s − ḡ²          (centered)
        d = g / (√s̃ + ε)
        b ← μ·b + d;  θ ← θ − lr·b               (momentum μ > 0)
        θ ← θ − lr·d                             (μ = 0)

    Conventions: ``eps_in_sqrt`` (Keras, optax) uses d = g / √(s̃ + ε); ``lr_in_momentum`` (Keras, optax)
    accumulates lr-scaled steps, b ← μ·b + lr·d and θ ← θ − b (the same for a constant lr).

    The paper (§5) notes RMSProp with momentum is Adam without bias correction, with momentum applied
    to the rescaled gradient instead of the gradient.

    Args:
        lr: ≥ 0 (torch default 1e-2).  alpha: smoothing constant in [0, 1].  eps: ≥ 0.
        weight_decay: L2 coefficient.  momentum: μ ≥ 0.  centered: subtract the mean gradient.
        maximize: ascend instead of descend.
        decoupled_weight_decay: θ ← θ·(1 − lr·λ) before the step instead of L2 (Keras).
        eps_in_sqrt, lr_in_momentum: see above.

    State: ``square_avg`` (s), ``momentum_buffer`` (μ > 0), ``grad_avg`` (centered).
    """

    lr: float | None = None
    alpha: float | None = None
    eps: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    centered: bool | None = None
    maximize: bool | None = None
    decoupled_weight_decay: bool | None = None
    eps_in_sqrt: bool | None = None
    lr_in_momentum: bool | None = None

    name = "rmsprop"
    supports_complex = True
    defaults = dict(
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        maximize=False,
        decoupled_weight_decay=False,
        eps_in_sqrt=False,
        lr_in_momentum=False,
    )
    preset_defaults = {
        "keras": dict(lr=1e-3, alpha=0.9, eps=1e-7, decoupled_weight_decay=True, eps_in_sqrt=True, lr_in_momentum=True),
        "optax": dict(alpha=0.9, eps_in_sqrt=True, lr_in_momentum=True),
    }

    def layout(self) -> StateLayout:
        names = (("momentum_buffer",) if positive(self.momentum) else ()) + (("grad_avg",) if self.centered else ())
        return StateLayout(per_element("square_avg", nonnegative=True) + per_element(*names))

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("alpha", self.alpha, high=1.0, high_open=False)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        check_number("momentum", self.momentum)
        check_flag("centered", self.centered)
        check_flag("maximize", self.maximize)
        for flag in ("decoupled_weight_decay", "eps_in_sqrt", "lr_in_momentum"):
            check_flag(flag, getattr(self, flag))

    def coefficients(self, t: Any, state: State) -> Coefficients:
        lr, wd, a = self.lr, self.weight_decay, self.alpha
        keep = keras_keep(lr, wd, t) if self.preset == "keras" else 1 - lr * wd
        k = {"a": a, "w": 1 - a, "wd": wd, "lr": lr, "neg_lr": -lr, "keep": keep, "eps": self.eps,
             "mu": self.momentum}  # fmt: skip
        if self.preset == "keras":  # Keras casts lr to the variable's dtype (t's, when t is an array)
            k["lr_t"] = like_step(lr, t)
        return k

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        order = self.preset
        g = -grad if self.maximize else grad
        if nonzero(self.weight_decay):
            if self.decoupled_weight_decay:
                param = decay_weights(ops, order, param, k)
            else:
                g = l2_gradient(ops, order, g, param, k["wd"])
        if order == "keras" and self.eps_in_sqrt and self.lr_in_momentum:
            return self._keras_step(ops, k, param, g, state)
        s = ema_square(ops, order, state["square_avg"], g, k["a"], k["w"])
        new_state = {"square_avg": s}
        if order == "optax" and self.lr_in_momentum:
            return self._optax_step(ops, k, param, g, s, state, new_state), new_state
        if self.centered:
            g_avg = new_state["grad_avg"] = ema(ops, order, state["grad_avg"], g, k["a"], k["w"])
            s = ops.addcmul(s, g_avg, g_avg, -1) if order == "torch" else s - ops.abs_sq(g_avg)
        denom = ops.sqrt(s + k["eps"]) if self.eps_in_sqrt else ops.sqrt(s) + k["eps"]
        denom = guard_zero(ops, denom, self.eps)
        if order == "torch" and not self.lr_in_momentum:
            if positive(self.momentum):  # buf.mul_(μ).addcdiv_(g, avg); param.add_(buf, alpha=−lr)
                buf = new_state["momentum_buffer"] = ops.addcdiv(state["momentum_buffer"] * k["mu"], g, denom, 1)
                return ops.axpy(param, buf, k["neg_lr"]), new_state
            return ops.addcdiv(param, g, denom, k["neg_lr"]), new_state
        direction = g / denom
        if self.lr_in_momentum:  # the buffer holds lr-scaled steps
            direction = k["lr"] * direction
        if positive(self.momentum):
            direction = new_state["momentum_buffer"] = k["mu"] * state["momentum_buffer"] + direction
        return param - (direction if self.lr_in_momentum else k["lr"] * direction), new_state

    def _optax_step(self, ops: Ops, k: Coefficients, p: Array, g: Array, s: Array, state: State, new: State) -> Any:
        """optax.rmsprop: scale_by_rms (or scale_by_stddev), scale_by_learning_rate, then trace(μ).

        ``u = −lr·(rsqrt(s + ε)·g)`` (``1/(√s + ε)`` without ``eps_in_sqrt``; ``s − ḡ²`` when centered), and with
        momentum optax's trace ``τ ← u + μ·τ`` holds lr-scaled steps with optax's sign: the rule's buffer is −τ.
        """
        if self.centered:
            g_avg = new["grad_avg"] = ema(ops, "optax", state["grad_avg"], g, k["a"], k["w"])
            s = s - ops.abs_sq(g_avg)
        scaling = 1 / ops.sqrt(s + k["eps"]) if self.eps_in_sqrt else 1 / (ops.sqrt(s) + k["eps"])
        u = scale_by_learning_rate(k["lr"], scaling * g)
        if positive(self.momentum):
            trace = u + k["mu"] * -state["momentum_buffer"]
            new["momentum_buffer"] = -trace
            u = trace
        return apply_increment(p, u)

    def _keras_step(self, ops: Ops, k: Coefficients, p: Array, g: Array, state: State) -> tuple[Array, State]:
        """keras.optimizers.RMSprop: ``s ← ρ·s + (1−ρ)·g²``, ``Δ = (lr·g)/√(s + ε)`` (centered: √((s − ḡ²) + ε)),
        ``b ← μ·b + Δ``, ``θ −= b`` (or Δ). The torch backend's foreach form: ``s.mul_(ρ).add_(g·g, alpha=1−ρ)``,
        ``d = s + ε``, centered ``d.add_(ḡ·ḡ, alpha=−1)`` (so (s + ε) − ḡ²), ``Δ = (g·lr)/√d``,
        ``θ.add_(b, alpha=−1)``."""
        torch = ops.name == "torch"
        new: State = {}
        if torch:
            s = new["square_avg"] = ops.axpy(state["square_avg"] * k["a"], g * g, k["w"])
            denom = s + k["eps"]
            if self.centered:
                g_avg = new["grad_avg"] = ops.axpy(state["grad_avg"] * k["a"], g, k["w"])
                denom = ops.axpy(denom, g_avg * g_avg, -1)
            step = (g * k["lr_t"]) / guard_zero(ops, ops.sqrt(denom), self.eps)
        else:
            s = new["square_avg"] = k["a"] * state["square_avg"] + k["w"] * ops.abs_sq(g)
            if self.centered:
                g_avg = new["grad_avg"] = k["a"] * state["grad_avg"] + k["w"] * g
                denom = s - ops.abs_sq(g_avg) + k["eps"]
            else:
                denom = s + k["eps"]
            step = (k["lr_t"] * g) / guard_zero(ops, ops.sqrt(denom), self.eps)
        if positive(self.momentum):
            step = new["momentum_buffer"] = (
                state["momentum_buffer"] * k["mu"] + step if torch else k["mu"] * state["momentum_buffer"] + step
            )
        return (ops.axpy(p, step, -1) if torch else p - step), new
