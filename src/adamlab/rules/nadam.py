"""NAdam (Dozat 2016): Adam with Nesterov momentum, with torch's, Keras's and optax's momentum schedules."""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.rules._array import namespace
from adamlab.rules.base import (
    Array,
    Rule,
    State,
    bias_correction,
    cast_like,
    check_betas,
    check_flag,
    check_number,
    is_host_step,
    safe_denominator,
)


def nesterov_moment(m: Array, g: Array, mu: Any, mu_next: Any, bc: Any, bc_next: Any) -> Array:
    """The Nesterov first moment m̄ = μ_{t+1}·m/(1−Π_{t+1}) + (1−μ_t)·g/(1−Π_t), with bc = 1−Π_t.

    Π_t = μ_1·…·μ_t. With a constant μ = β1 this is optax's ``nesterov=True`` form
    β1·m/(1−β1^(t+1)) + (1−β1)·g/(1−β1^t).
    """
    return mu_next * m / bc_next + (1 - mu) * g / bc


def _scalar_one(xp: Any, like: Array) -> Array:
    """A 0-d array holding 1, of ``like``'s dtype (and device, for torch)."""
    kwargs = {"device": like.device} if xp.__name__ == "torch" else {}
    return xp.ones((), dtype=like.dtype, **kwargs)


@dataclasses.dataclass(frozen=True)
class NAdam(Rule):
    r"""NAdam: Nesterov-accelerated Adam (Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop).

    With the momentum schedule μ_t = β1·(1 − ½·0.96^(t·ψ)) and Π_t = μ_1·…·μ_t::

        m ← β1·m + (1−β1)·g                 v ← β2·v + (1−β2)·g²
        m̄ = μ_{t+1}·m/(1−Π_{t+1}) + (1−μ_t)·g/(1−Π_t)
        θ ← θ − lr · m̄ / (√(v/(1−β2^t)) + ε)

    Conventions, set by the preset:

    - torch and the paper: ψ = ``momentum_decay`` = 4e-3 (Dozat's 0.96^(t/250));
    - keras: the same schedule without ψ, μ_t = β1·(1 − ½·0.96^t), i.e. ``momentum_decay=1``;
    - optax: no schedule (``momentum_schedule=False``): μ_t = β1, Π_t = β1^t, which is
      ``optax.nadam`` = ``optax.adam(nesterov=True)`` (also :class:`Adam` with ``nesterov=True``).

    Args:
        lr: step size ≥ 0 (torch 2e-3; keras, optax 1e-3).
        betas: (β1, β2), each in [0, 1).
        eps: ε ≥ 0 added to √v̂.
        weight_decay: λ ≥ 0: L2 in the gradient, or θ ← θ·(1 − lr·λ) with ``decoupled_weight_decay``.
        momentum_decay: ψ ≥ 0 of the μ schedule.
        decoupled_weight_decay: decay the weights instead of adding λθ to the gradient (NAdamW).
        maximize: ascend instead of descend.
        momentum_schedule: use the μ_t schedule (True) or the constant μ = β1 (False, optax).

    State: ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with the schedule, ``mu_product`` (Π_t, a 0-d array
    as in torch.optim.NAdam, but in the parameter's dtype: torch keeps it in its default dtype, float32
    unless changed, so float64 runs agree with torch.optim to ~1e-16 only under a float64 default dtype).
    """

    lr: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    weight_decay: float | None = None
    momentum_decay: float | None = None
    decoupled_weight_decay: bool | None = None
    maximize: bool | None = None
    momentum_schedule: bool | None = None

    name = "nadam"
    defaults = dict(
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        maximize=False,
        momentum_schedule=True,
    )
    preset_defaults = {
        "paper": {},
        "torch": {},
        "keras": dict(lr=1e-3, eps=1e-7, momentum_decay=1.0, decoupled_weight_decay=True),
        "optax": dict(lr=1e-3, momentum_schedule=False, decoupled_weight_decay=True),
    }
    state_names = ("exp_avg", "exp_avg_sq", "mu_product")

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        check_number("momentum_decay", self.momentum_decay)
        for flag in ("decoupled_weight_decay", "maximize", "momentum_schedule"):
            check_flag(flag, getattr(self, flag))

    def init(self, param: Array) -> State:
        xp = namespace(param)
        state = {"exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}
        if self.momentum_schedule:
            state["mu_product"] = _scalar_one(xp, param)
        return state

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        xp = namespace(param)
        beta1, beta2 = self.betas
        lr, eps, wd = self.lr, self.eps, self.weight_decay
        g = -grad if self.maximize else grad
        if wd != 0:
            if self.decoupled_weight_decay:
                param = param * (1 - lr * wd)
            else:
                g = g + wd * param
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * (g * g)
        new_state = {"exp_avg": m, "exp_avg_sq": v}

        if self.momentum_schedule:  # μ_t and μ_{t+1}; Π_t is carried in the state
            psi = self.momentum_decay
            mu = beta1 * (1 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
            if not is_host_step(t):
                mu, mu_next = cast_like(mu, param), cast_like(mu_next, param)
            product = new_state["mu_product"] = state["mu_product"] * mu
            bc, bc_next = 1 - product, 1 - product * mu_next
        else:  # constant μ = β1: Π_t = β1^t
            mu = mu_next = beta1
            bc, bc_next = bias_correction(beta1, t, param), bias_correction(beta1, t + 1, param)

        m_bar = nesterov_moment(m, g, mu, mu_next, bc, bc_next)
        denom = xp.sqrt(v / bias_correction(beta2, t, param)) + eps
        return param - lr * m_bar / safe_denominator(xp, denom, eps), new_state
