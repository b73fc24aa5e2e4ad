"""AdaMax (Kingma & Ba 2014, §7.1, Algorithm 2): Adam with the infinity norm."""

from __future__ import annotations

import dataclasses

from adamlab.rules._array import namespace
from adamlab.rules.base import (
    Array,
    Rule,
    State,
    bias_correction,
    check_betas,
    check_flag,
    check_number,
    safe_denominator,
)


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
    state_names = ("exp_avg", "exp_inf")

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        for flag in ("maximize", "decoupled_weight_decay", "eps_in_max"):
            check_flag(flag, getattr(self, flag))

    def init(self, param: Array) -> State:
        xp = namespace(param)
        return {"exp_avg": xp.zeros_like(param), "exp_inf": xp.zeros_like(param)}

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        xp = namespace(param)
        beta1, beta2 = self.betas
        lr, eps, wd = self.lr, self.eps, self.weight_decay
        g = -grad if self.maximize else grad
        if wd != 0 and not self.decoupled_weight_decay:
            g = g + wd * param
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        if self.eps_in_max:
            u = xp.maximum(beta2 * state["exp_inf"], xp.abs(g) + eps)
            denom = u
        else:
            u = xp.maximum(beta2 * state["exp_inf"], xp.abs(g))
            denom = u + eps
        if wd != 0 and self.decoupled_weight_decay:
            param = param * (1 - lr * wd)
        update = (lr / bias_correction(beta1, t, param)) * m / safe_denominator(xp, denom, eps)
        return param - update, {"exp_avg": m, "exp_inf": u}
