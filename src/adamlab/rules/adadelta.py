"""AdaDelta (Zeiler 2012): a baseline of the paper's §6.2 MLP experiment."""

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
    like_step,
    nonzero,
    per_element,
)
from adamlab.rules.moments import decay_weights, ema_square, keras_keep, l2_gradient, scale_by_learning_rate


@dataclasses.dataclass(frozen=True)
class Adadelta(Rule):
    r"""AdaDelta, as torch.optim.Adadelta::

        s ← ρ·s + (1−ρ)·g²
        Δ = √(a + ε) / √(s + ε) · g
        a ← ρ·a + (1−ρ)·Δ²
        θ ← θ − lr·Δ

    Args:
        lr: scale applied to Δ, ≥ 0 (torch default 1.0).  rho: ρ in [0, 1].  eps: > 0.
        weight_decay: L2 coefficient.  maximize: ascend instead of descend.
        decoupled_weight_decay: θ ← θ·(1 − lr·λ) before the step instead of L2 (Keras).

    State: ``square_avg`` (s) and ``acc_delta`` (a).
    """

    lr: float | None = None
    rho: float | None = None
    eps: float | None = None
    weight_decay: float | None = None
    maximize: bool | None = None
    decoupled_weight_decay: bool | None = None

    name = "adadelta"
    defaults = dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False, decoupled_weight_decay=False)
    preset_defaults = {"keras": dict(lr=1e-3, rho=0.95, eps=1e-7, decoupled_weight_decay=True), "optax": {}}

    def layout(self) -> StateLayout:
        return StateLayout(per_element("square_avg", "acc_delta", nonnegative=True))

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("rho", self.rho, high=1.0, high_open=False)
        check_number("eps", self.eps, low_open=True)
        check_number("weight_decay", self.weight_decay)
        check_flag("maximize", self.maximize)
        check_flag("decoupled_weight_decay", self.decoupled_weight_decay)

    def coefficients(self, t: Any, state: State) -> Coefficients:
        lr, wd, rho = self.lr, self.weight_decay, self.rho
        keep = keras_keep(lr, wd, t) if self.preset == "keras" else 1 - lr * wd
        k = {"rho": rho, "w": 1 - rho, "wd": wd, "lr": lr, "neg_lr": -lr, "keep": keep, "eps": self.eps}
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
        if order == "keras":
            return self._keras_step(ops, k, param, g, state)
        s = ema_square(ops, order, state["square_avg"], g, k["rho"], k["w"])
        if order == "torch":  # delta = √(a + ε).div_(√(s + ε)).mul_(g); param.add_(delta, alpha=−lr)
            delta = ops.sqrt(state["acc_delta"] + k["eps"]) / ops.sqrt(s + k["eps"]) * g
            a = ema_square(ops, order, state["acc_delta"], delta, k["rho"], k["w"])
            return ops.axpy(param, delta, k["neg_lr"]), {"square_avg": s, "acc_delta": a}
        delta = ops.sqrt(state["acc_delta"] + k["eps"]) / ops.sqrt(s + k["eps"]) * g
        a = ema_square(ops, order, state["acc_delta"], delta, k["rho"], k["w"])
        if order == "optax":  # scale_by_adadelta, then scale_by_learning_rate: u = −lr·Δ
            return apply_increment(param, scale_by_learning_rate(k["lr"], delta)), {"square_avg": s, "acc_delta": a}
        return param - k["lr"] * delta, {"square_avg": s, "acc_delta": a}

    def _keras_step(self, ops: Ops, k: Coefficients, p: Array, g: Array, state: State) -> tuple[Array, State]:
        """keras.optimizers.Adadelta: ``s ← ρ·s + (1−ρ)·g²``, ``Δ = −(√(a + ε)·g)/√(s + ε)``, ``a ← ρ·a + (1−ρ)·Δ²``,
        ``θ += lr·Δ``; the torch backend's foreach form ``s.mul_(ρ).add_(g·g, alpha=1−ρ)``, ``Δ = (…)·(−1)``,
        ``θ.add_(Δ, alpha=lr)``."""
        rms_a = ops.sqrt(state["acc_delta"] + k["eps"])
        if ops.name == "torch":
            s = ops.axpy(state["square_avg"] * k["rho"], g * g, k["w"])
            delta = ((rms_a * g) / ops.sqrt(s + k["eps"])) * -1
            a = ops.axpy(state["acc_delta"] * k["rho"], delta * delta, k["w"])
            return ops.axpy(p, delta, k["lr"]), {"square_avg": s, "acc_delta": a}
        s = k["rho"] * state["square_avg"] + k["w"] * ops.abs_sq(g)
        delta = -((rms_a * g) / ops.sqrt(s + k["eps"]))
        a = k["rho"] * state["acc_delta"] + k["w"] * ops.abs_sq(delta)
        return p + k["lr_t"] * delta, {"square_avg": s, "acc_delta": a}
