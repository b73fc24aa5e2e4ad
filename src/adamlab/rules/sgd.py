"""Stochastic gradient descent with optional (Nesterov) momentum: the paper's SGD baselines."""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.ops import Ops, is_number
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
from adamlab.rules.moments import decay_weights, keras_keep, l2_gradient, scale_by_learning_rate


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
    supports_complex = True
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

    def layout(self) -> StateLayout:
        return StateLayout(per_element("momentum_buffer") if nonzero(self.momentum) else ())

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("momentum", self.momentum)
        check_number("dampening", self.dampening)
        check_number("weight_decay", self.weight_decay)
        check_flag("nesterov", self.nesterov)
        check_flag("maximize", self.maximize)
        check_flag("decoupled_weight_decay", self.decoupled_weight_decay)
        check_flag("lr_in_momentum", self.lr_in_momentum)
        if self.nesterov and is_number(self.momentum) and is_number(self.dampening) and (
            self.momentum == 0 or self.dampening != 0
        ):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0")

    def coefficients(self, t: Any, state: State) -> Coefficients:
        lr, wd = self.lr, self.weight_decay
        keep = keras_keep(lr, wd, t) if self.preset == "keras" else 1 - lr * wd
        k = {"lr": lr, "neg_lr": -lr, "wd": wd, "keep": keep, "mu": self.momentum,
             "undamped": 1 - self.dampening, "first": t == 1}  # fmt: skip
        if self.preset == "keras":  # Keras casts lr and momentum to the variable's dtype (t's, when t is an array)
            k.update(lr_t=like_step(lr, t), mu_t=like_step(self.momentum, t))
        return k

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        order = self.preset
        g = -grad if self.maximize else grad
        if nonzero(self.weight_decay):
            if self.decoupled_weight_decay:
                param = decay_weights(ops, order, param, k)
            else:
                g = l2_gradient(ops, order, g, param, k["wd"])
        if order == "keras" and self.lr_in_momentum and not nonzero(self.dampening):
            return self._keras_step(ops, k, param, g, state)
        if not nonzero(self.momentum):
            if order == "optax":  # scale_by_learning_rate: u = −lr·g
                return apply_increment(param, scale_by_learning_rate(k["lr"], g)), {}
            return (ops.axpy(param, g, k["neg_lr"]) if order == "torch" else param - k["lr"] * g), {}
        if order == "optax" and not self.lr_in_momentum and not nonzero(self.dampening):
            # optax.trace: b ← g + μ·b; d = g + μ·b (nesterov) or b; then scale_by_learning_rate: u = −lr·d
            buf = g + k["mu"] * state["momentum_buffer"]
            direction = g + k["mu"] * buf if self.nesterov else buf
            return apply_increment(param, scale_by_learning_rate(k["lr"], direction)), {"momentum_buffer": buf}
        if self.lr_in_momentum:  # Keras: the buffer holds lr-scaled steps
            g = k["lr"] * g
        if order == "torch":  # buf = g at the first step, then buf.mul_(μ).add_(g, alpha=1 − dampening)
            buf = ops.select(k["first"], g, ops.axpy(state["momentum_buffer"] * k["mu"], g, k["undamped"]))
            direction = ops.axpy(g, buf, k["mu"]) if self.nesterov else buf
            if self.lr_in_momentum:
                return param - direction, {"momentum_buffer": buf}
            return ops.axpy(param, direction, k["neg_lr"]), {"momentum_buffer": buf}
        # the zero initial buffer makes the first step's μ·b vanish; (1 − dampening) applies from step 2
        damped = ops.select(k["first"], g, k["undamped"] * g) if nonzero(self.dampening) else g
        buf = k["mu"] * state["momentum_buffer"] + damped
        direction = g + k["mu"] * buf if self.nesterov else buf
        step = direction if self.lr_in_momentum else k["lr"] * direction
        return param - step, {"momentum_buffer": buf}

    def _keras_step(self, ops: Ops, k: Coefficients, param: Array, g: Array, state: State) -> tuple[Array, State]:
        """keras.optimizers.SGD: Keras's buffer m = −b holds the negated lr-scaled steps, ``m ← m·μ − g·lr`` and
        ``θ ← θ + m`` (``θ + (m·μ − g·lr)`` with Nesterov); on the torch backend ``m.mul_(μ).add_(g, alpha=−lr)``,
        ``θ.add_(m)`` (Nesterov: ``θ.add_(g, alpha=−lr).add_(m, alpha=μ)``). Negation is exact, so b = −m is kept."""
        torch = ops.name == "torch"
        if not nonzero(self.momentum):
            return (ops.axpy(param, g, k["neg_lr"]) if torch else param - g * k["lr_t"]), {}
        m = -state["momentum_buffer"]
        if torch:
            m = ops.axpy(m * k["mu"], g, k["neg_lr"])
            new_param = ops.axpy(ops.axpy(param, g, k["neg_lr"]), m, k["mu"]) if self.nesterov else param + m
        else:
            m = m * k["mu_t"] - g * k["lr_t"]
            new_param = param + (m * k["mu_t"] - g * k["lr_t"]) if self.nesterov else param + m
        return new_param, {"momentum_buffer": -m}
