"""Stochastic gradient descent with optional (Nesterov) momentum: the paper's SGD baselines."""

from __future__ import annotations

import dataclasses

from adamlab.rules._array import namespace
from adamlab.rules.base import Array, Rule, State, check_flag, check_number, is_host_step


@dataclasses.dataclass(frozen=True)
class SGD(Rule):
    r"""SGD, heavy-ball momentum (Polyak 1964) and Nesterov momentum (Sutskever et al. 2013), as torch.optim::

        b ← g                                  at the first step
        b ← μ·b + (1−dampening)·g              afterwards
        d = g + μ·b  (nesterov)  or  b  (momentum)  or  g  (μ = 0)
        θ ← θ − lr·d

    With ``lr_in_momentum`` (Keras) the buffer accumulates lr-scaled steps, b ← μ·b + lr·g and
    θ ← θ − b (θ ← θ − (lr·g + μ·b) with Nesterov): the same trajectory for a constant lr, a different
    one when a schedule changes lr.

    Args:
        lr: step size ≥ 0 (torch default 1e-3).
        momentum: μ ≥ 0.
        dampening: ≥ 0; must be 0 with Nesterov.
        weight_decay: L2 coefficient added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend instead of descend.
        decoupled_weight_decay: θ ← θ·(1 − lr·λ) before the step instead of L2 (Keras).
        lr_in_momentum: see above (Keras).

    State: ``momentum_buffer`` when momentum > 0.
    """

    lr: float | None = None
    momentum: float | None = None
    dampening: float | None = None
    weight_decay: float | None = None
    nesterov: bool | None = None
    maximize: bool | None = None
    decoupled_weight_decay: bool | None = None
    lr_in_momentum: bool | None = None

    name = "sgd"
    defaults = dict(
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=False,
        decoupled_weight_decay=False,
        lr_in_momentum=False,
    )
    preset_defaults = {"keras": dict(lr=1e-2, decoupled_weight_decay=True, lr_in_momentum=True), "optax": {}}
    state_names = ("momentum_buffer",)

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("momentum", self.momentum)
        check_number("dampening", self.dampening)
        check_number("weight_decay", self.weight_decay)
        check_flag("nesterov", self.nesterov)
        check_flag("maximize", self.maximize)
        check_flag("decoupled_weight_decay", self.decoupled_weight_decay)
        check_flag("lr_in_momentum", self.lr_in_momentum)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0")

    def init(self, param: Array) -> State:
        return {"momentum_buffer": namespace(param).zeros_like(param)} if self.momentum != 0 else {}

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                param = param * (1 - self.lr * self.weight_decay)
            else:
                g = g + self.weight_decay * param
        if self.momentum == 0:
            return param - self.lr * g, {}
        mu, dampening = self.momentum, self.dampening
        if self.lr_in_momentum:  # Keras: the buffer holds lr-scaled steps
            g = self.lr * g
        if is_host_step(t):
            buf = g if t == 1 else mu * state["momentum_buffer"] + (1 - dampening) * g
        elif dampening == 0:  # traced t: the zero initial buffer makes the first step b = g by itself
            buf = mu * state["momentum_buffer"] + g
        else:  # 0 at t = 1, else 1, in t's own dtype (a bool tensor times a float would be torch's float32)
            later = namespace(t).clip(t - 1, 0, 1)
            buf = mu * state["momentum_buffer"] + (1 - dampening * later) * g
        direction = g + mu * buf if self.nesterov else buf
        step = direction if self.lr_in_momentum else self.lr * direction
        return param - step, {"momentum_buffer": buf}
