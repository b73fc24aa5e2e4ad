"""Temporal averaging of the parameters (Kingma & Ba 2014, §7.2), usable with any rule."""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.ops import Ops
from adamlab.rules.base import (
    Array,
    Coefficients,
    Increment,
    Rule,
    State,
    StateEntry,
    StateLayout,
    applied,
    check_choice,
    check_number,
)

AVERAGING_MODES: tuple[str, ...] = ("polyak", "ema")


@dataclasses.dataclass(frozen=True)
class Averaged:
    r"""Wrap ``rule`` and keep an average of its iterates θ_1 … θ_t in the state entry ``param_avg``::

        polyak:  θ̄_t = (1/t)·Σ_k θ_k                 (running mean; Polyak & Juditsky 1992)
        ema:     θ̄_t = β·θ̄_{t−1} + (1−β)·θ_t,  θ̄_0 = 0;   θ̂_t = θ̄_t / (1−β^t)   (bias-corrected)

    The wrapped rule's trajectory is unchanged; :meth:`averaged` returns the average to evaluate with.
    The paper suggests β = β2 (0.999).
    """

    rule: Rule
    mode: str = "ema"
    decay: float = 0.999

    def __post_init__(self) -> None:
        check_choice("averaging", self.mode, AVERAGING_MODES)
        check_number("averaging_decay", self.decay, high=1.0)

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def base(self) -> Rule:
        """The wrapped rule (whose hyperparameters and math the average leaves unchanged)."""
        return self.rule

    @property
    def preset(self) -> str:
        return self.rule.preset

    @property
    def elementwise(self) -> bool:
        return self.rule.elementwise

    def hyperparameters(self) -> dict[str, Any]:
        return self.rule.hyperparameters()

    def layout(self) -> StateLayout:
        return StateLayout((*self.rule.layout().entries, StateEntry("param_avg")))

    def coefficients(self, t: Any, state: State) -> Coefficients:
        k = self.rule.coefficients(t, state)
        return {**k, "avg_t": t, "avg_decay": self.decay, "avg_w": 1 - self.decay}

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        inner = {key: v for key, v in state.items() if key != "param_avg"}
        new_param, new_state = self.rule.update(ops, k, param, grad, inner)
        theta = applied(new_param) if isinstance(new_param, Increment) else new_param
        avg = state["param_avg"]
        if self.mode == "polyak":  # θ̄_t = θ̄_{t−1} + (θ_t − θ̄_{t−1})/t
            new_state["param_avg"] = avg + (theta - avg) / k["avg_t"]
        else:
            new_state["param_avg"] = k["avg_decay"] * avg + k["avg_w"] * theta
        return new_param, new_state

    init = Rule.init
    step = Rule.step
    increment = Rule.increment

    def averaged(self, state: State, t: int) -> Array:
        """The averaged parameters θ̂ after ``t`` steps (bias-corrected for ``ema``)."""
        if t < 1:
            raise ValueError("averaged parameters exist only after the first step (t >= 1)")
        avg = state["param_avg"]
        return avg if self.mode == "polyak" else avg / (1 - self.decay**t)
