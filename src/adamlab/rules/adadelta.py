"""AdaDelta (Zeiler 2012): a baseline of the paper's §6.2 MLP experiment."""

from __future__ import annotations

import dataclasses

from adamlab.rules._array import namespace
from adamlab.rules.base import Array, Rule, State, check_flag, check_number


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
    state_names = ("square_avg", "acc_delta")

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("rho", self.rho, high=1.0, high_open=False)
        check_number("eps", self.eps, low_open=True)
        check_number("weight_decay", self.weight_decay)
        check_flag("maximize", self.maximize)
        check_flag("decoupled_weight_decay", self.decoupled_weight_decay)

    def init(self, param: Array) -> State:
        xp = namespace(param)
        return {"square_avg": xp.zeros_like(param), "acc_delta": xp.zeros_like(param)}

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        xp = namespace(param)
        rho, eps = self.rho, self.eps
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                param = param * (1 - self.lr * self.weight_decay)
            else:
                g = g + self.weight_decay * param
        s = rho * state["square_avg"] + (1 - rho) * (g * g)
        delta = xp.sqrt(state["acc_delta"] + eps) / xp.sqrt(s + eps) * g
        a = rho * state["acc_delta"] + (1 - rho) * (delta * delta)
        return param - self.lr * delta, {"square_avg": s, "acc_delta": a}
