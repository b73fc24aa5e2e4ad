"""Temporal averaging of the parameters (Kingma & Ba 2014, §7.2), usable with any rule."""

from __future__ import annotations

import dataclasses

from adamlab.rules.base import Array, Rule, State, check_choice, check_number

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
    def state_names(self) -> tuple[str, ...]:
        return (*self.rule.state_names, "param_avg")

    def init(self, param: Array) -> State:
        return {**self.rule.init(param), "param_avg": param * 0}

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        inner = {k: v for k, v in state.items() if k != "param_avg"}
        param, new_state = self.rule.step(param, grad, inner, t)
        avg = state["param_avg"]
        if self.mode == "polyak":
            new_state["param_avg"] = avg + (param - avg) / t
        else:
            new_state["param_avg"] = self.decay * avg + (1 - self.decay) * param
        return param, new_state

    def averaged(self, state: State, t: int) -> Array:
        """The averaged parameters θ̂ after ``t`` steps (bias-corrected for ``ema``)."""
        if t < 1:
            raise ValueError("averaged parameters exist only after the first step (t >= 1)")
        avg = state["param_avg"]
        return avg if self.mode == "polyak" else avg / (1 - self.decay**t)
