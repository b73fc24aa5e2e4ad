"""AdaMax (Kingma & Ba 2014, §7.1, Algorithm 2): Adam with the infinity norm."""

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
    cast_like,
    check_betas,
    check_flag,
    check_number,
    guard_zero,
    like_step,
    nonzero,
    per_element,
)
from adamlab.rules.moments import decay_weights, ema, keras_keep, keras_power, l2_gradient, scale_by_learning_rate


@dataclasses.dataclass(frozen=True)
class Adamax(Rule):
    r"""AdaMax (arXiv:1412.6980 §7.1, Algorithm 2)::

        m ← β1·m + (1−β1)·g
        u ← max(β2·u, |g| + ε)              (eps_in_max=True: torch, optax)
        u ← max(β2·u, |g|);  divide by u+ε  (eps_in_max=False: Keras)
        θ ← θ − (lr / (1−β1^t)) · m / u

    Algorithm 2 itself has no ε (``preset="paper"`` uses ε = 0); where u = 0 every gradient so far was 0,
    so m = 0 as well, and the step is defined as 0 instead of 0/0.

    Args:
        lr: step size α ≥ 0 (paper and torch: 0.002).
        betas: (β1, β2), each in [0, 1).
        eps: ε ≥ 0 guarding the division, placed as ``eps_in_max`` says.
        weight_decay: L2 coefficient added to the gradient (decoupled in the keras preset).
        maximize: ascend instead of descend.
        decoupled_weight_decay: θ ← θ·(1 − lr·λ) instead of L2.
        eps_in_max: see above.

    State: ``exp_avg`` (m) and ``exp_inf`` (u).
    """

    lr: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    weight_decay: float | None = None
    maximize: bool | None = None
    decoupled_weight_decay: bool | None = None
    eps_in_max: bool | None = None

    name = "adamax"
    supports_complex = True
    defaults = dict(
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        maximize=False,
        decoupled_weight_decay=False,
        eps_in_max=True,
    )
    preset_defaults = {
        "paper": dict(eps=0.0),
        "torch": {},
        "keras": dict(lr=1e-3, eps=1e-7, eps_in_max=False, decoupled_weight_decay=True),
        "optax": dict(decoupled_weight_decay=True),
    }

    def layout(self) -> StateLayout:
        return StateLayout(per_element("exp_avg") + per_element("exp_inf", nonnegative=True))

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        for flag in ("maximize", "decoupled_weight_decay", "eps_in_max"):
            check_flag(flag, getattr(self, flag))

    def coefficients(self, t: Any, state: State) -> Coefficients:
        b1, b2 = self.betas
        lr, wd = self.lr, self.weight_decay
        if self.preset == "keras":  # Keras: β1^t and lr in the variable's dtype (t arrives as a 0-d array of it)
            bc1, keep, lr_t = 1 - keras_power(b1, t), keras_keep(lr, wd, t), like_step(lr, t)
        else:
            bc1, keep, lr_t = 1 - b1**t, 1 - lr * wd, lr
        clr = lr / bc1  # torch: lr / bias_correction
        return {"b1": b1, "w1": 1 - b1, "b2": b2, "eps": self.eps, "wd": wd, "lr": lr, "keep": keep, "lr_t": lr_t,
                "bc1": bc1, "clr": clr, "neg_clr": -clr}  # fmt: skip

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        order = self.preset
        g = -grad if self.maximize else grad
        decoupled = nonzero(self.weight_decay) and self.decoupled_weight_decay
        if nonzero(self.weight_decay):
            if not self.decoupled_weight_decay:
                g = l2_gradient(ops, order, g, param, k["wd"])
            elif order != "optax":  # optax adds λθ to the update instead (adamaxw, below)
                param = decay_weights(ops, order, param, k)
        m = ema(ops, order, state["exp_avg"], g, k["b1"], k["w1"])
        scaled = state["exp_inf"] * k["b2"] if order == "torch" else k["b2"] * state["exp_inf"]
        if self.eps_in_max:  # u = max(β2·u, |g| + ε), the denominator itself (optax: max(|g| + ε, β2·u))
            u = denom = ops.maximum(ops.abs(g) + k["eps"], scaled) if order == "optax" else ops.maximum(
                scaled, ops.abs(g) + k["eps"]
            )
        else:  # u = max(β2·u, |g|), divided by u + ε
            u = ops.maximum(scaled, ops.abs(g))
            denom = u + k["eps"]
        denom = guard_zero(ops, denom, self.eps)
        new_state = {"exp_avg": m, "exp_inf": u}
        if order == "torch":  # param.addcdiv_(exp_avg, exp_inf, value=-clr)
            return ops.addcdiv(param, m, denom, k["neg_clr"]), new_state
        if order == "optax":  # scale_by_adamax: (m / bc1) / u; [add_decayed_weights: + λθ]; scale: −lr·(…)
            step = (m / cast_like(k["bc1"], m)) / denom
            if decoupled:
                step = step + k["wd"] * param
            return apply_increment(param, scale_by_learning_rate(k["lr"], step)), new_state
        if order == "keras":  # θ −= (lr·m)/((1−β1^t)·(u + ε)); torch backend: θ.add_((m·lr)/((u + ε)·(1−β1^t)), α=−1)
            if ops.name == "torch":
                return ops.axpy(param, (m * k["lr_t"]) / (denom * k["bc1"]), -1), new_state
            return param - (k["lr_t"] * m) / (k["bc1"] * denom), new_state
        return param - (cast_like(k["clr"], m) * m) / denom, new_state
