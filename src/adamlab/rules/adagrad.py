"""AdaGrad (Duchi, Hazan & Singer 2011): the paper's baseline for sparse features."""

from __future__ import annotations

import dataclasses

from adamlab.rules._array import namespace
from adamlab.rules.base import Array, Rule, State, check_flag, check_number, safe_denominator


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
    state_names = ("sum",)

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("lr_decay", self.lr_decay)
        check_number("weight_decay", self.weight_decay)
        check_number("initial_accumulator_value", self.initial_accumulator_value)
        check_number("eps", self.eps)
        check_flag("maximize", self.maximize)
        check_flag("decoupled_weight_decay", self.decoupled_weight_decay)
        check_flag("eps_in_sqrt", self.eps_in_sqrt)

    def init(self, param: Array) -> State:
        return {"sum": namespace(param).full_like(param, self.initial_accumulator_value)}

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        xp = namespace(param)
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                param = param * (1 - self.lr * self.weight_decay)
            else:
                g = g + self.weight_decay * param
        lr_t = self.lr / (1 + (t - 1) * self.lr_decay)
        s = state["sum"] + g * g
        denom = xp.sqrt(s + self.eps) if self.eps_in_sqrt else xp.sqrt(s) + self.eps
        return param - lr_t * g / safe_denominator(xp, denom, self.eps), {"sum": s}
