"""AdaGrad (Duchi, Hazan & Singer 2011): the paper's baseline for sparse features."""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.ops import Ops
from adamlab.rules.base import (
    Array,
    Coefficients,
    Rule,
    State,
    StateEntry,
    StateLayout,
    apply_increment,
    cast_like,
    check_flag,
    check_number,
    guard_zero,
    like_step,
    nonzero,
)
from adamlab.rules.moments import decay_weights, keras_keep, l2_gradient, scale_by_learning_rate


@dataclasses.dataclass(frozen=True)
class Adagrad(Rule):
    r"""AdaGrad, as torch.optim.Adagrad::

        s ← s + g²
        θ ← θ − lr_t · g / (√s + ε),     lr_t = lr / (1 + (t−1)·lr_decay)
        θ ← θ − lr_t · g / √(s + ε)                          (eps_in_sqrt: Keras, optax)

    The paper (§5) relates it to Adam with β1 = 0, (1−β2) → 0 and α_t = α/√t.

    Args:
        lr: step size ≥ 0 (torch default 1e-2).
        lr_decay: ≥ 0.
        weight_decay: L2 coefficient added to the gradient.
        initial_accumulator_value: starting value of s (≥ 0).
        eps: ≥ 0.
        maximize: ascend instead of descend.
        decoupled_weight_decay: θ ← θ·(1 − lr·λ) before the step instead of L2 (Keras).
        eps_in_sqrt: put ε inside the square root (Keras, optax).

    The keras and optax presets also start the accumulator at 0.1 with ε = 1e-7.

    State: ``sum`` (s).
    """

    lr: float | None = None
    lr_decay: float | None = None
    weight_decay: float | None = None
    initial_accumulator_value: float | None = None
    eps: float | None = None
    maximize: bool | None = None
    decoupled_weight_decay: bool | None = None
    eps_in_sqrt: bool | None = None

    name = "adagrad"
    supports_complex = True
    defaults = dict(
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        maximize=False,
        decoupled_weight_decay=False,
        eps_in_sqrt=False,
    )
    preset_defaults = {
        "keras": dict(lr=1e-3, initial_accumulator_value=0.1, eps=1e-7, decoupled_weight_decay=True, eps_in_sqrt=True),
        "optax": dict(initial_accumulator_value=0.1, eps=1e-7, eps_in_sqrt=True),
    }

    def layout(self) -> StateLayout:
        return StateLayout((StateEntry("sum", fill=self.initial_accumulator_value, nonnegative=True),))

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("lr_decay", self.lr_decay)
        check_number("weight_decay", self.weight_decay)
        check_number("initial_accumulator_value", self.initial_accumulator_value)
        check_number("eps", self.eps)
        check_flag("maximize", self.maximize)
        check_flag("decoupled_weight_decay", self.decoupled_weight_decay)
        check_flag("eps_in_sqrt", self.eps_in_sqrt)

    def coefficients(self, t: Any, state: State) -> Coefficients:
        lr, wd = self.lr, self.weight_decay
        clr = lr / (1 + (t - 1) * self.lr_decay)
        keep = keras_keep(lr, wd, t) if self.preset == "keras" else 1 - lr * wd
        k = {"wd": wd, "lr": lr, "keep": keep, "eps": self.eps, "clr": clr, "neg_clr": -clr}
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
        if order == "torch":  # state_sum.addcmul_(g, g, value=1); param.addcdiv_(g, √s + ε, value=−clr)
            s = ops.addcmul(state["sum"], g, g, 1)
            denom = ops.sqrt(s + k["eps"]) if self.eps_in_sqrt else ops.sqrt(s) + k["eps"]
            return ops.addcdiv(param, g, guard_zero(ops, denom, self.eps), k["neg_clr"]), {"sum": s}
        if order == "keras" and self.eps_in_sqrt and not nonzero(self.lr_decay):
            # keras.optimizers.Adagrad: s ← s + g²; θ −= (lr·g)/√(s + ε) (torch backend: θ.add_((g·lr)/…, alpha=−1))
            s = state["sum"] + ops.abs_sq(g)
            denom = guard_zero(ops, ops.sqrt(s + k["eps"]), self.eps)
            if ops.name == "torch":
                return ops.axpy(param, (g * k["lr_t"]) / denom, -1), {"sum": s}
            return param - (k["lr_t"] * g) / denom, {"sum": s}
        if order == "optax" and self.eps_in_sqrt:
            # optax.scale_by_rss: s ← |g|² + s; u = where(s > 0, rsqrt(s + ε), 0)·g; then u·(−lr)
            s = ops.abs_sq(g) + state["sum"]
            scaled = ops.where(s > 0, 1 / ops.sqrt(s + k["eps"]), 0.0) * g
            return apply_increment(param, scale_by_learning_rate(k["clr"], scaled)), {"sum": s}
        s = state["sum"] + ops.abs_sq(g)
        denom = ops.sqrt(s + k["eps"]) if self.eps_in_sqrt else ops.sqrt(s) + k["eps"]
        return param - cast_like(k["clr"], g) * g / guard_zero(ops, denom, self.eps), {"sum": s}
