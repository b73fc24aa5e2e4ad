"""RAdam (Liu et al. 2020): Adam with the variance of the adaptive learning rate rectified."""

from __future__ import annotations

import dataclasses

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
    scalar_sqrt,
)
from adamlab.rules.nadam import nesterov_moment


@dataclasses.dataclass(frozen=True)
class RAdam(Rule):
    r"""Rectified Adam (Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020, Alg. 2).

    With ρ_∞ = 2/(1−β2) − 1 and ρ_t = ρ_∞ − 2t·β2^t/(1−β2^t), the length of the approximated SMA::

        m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²          m̂ = m/(1−β1^t)
        if ρ_t > threshold (≥ with threshold_inclusive):
            r_t = √((ρ_t−4)(ρ_t−2)ρ_∞ / ((ρ_∞−4)(ρ_∞−2)ρ_t))
            θ ← θ − lr·r_t·m̂·√(1−β2^t)/(√v + ε)              (eps_hat=True: torch, the paper's l_t)
            θ ← θ − lr·r_t·m̂/(√(v̂ + eps_root) + ε)           (eps_hat=False: optax)
        else:
            θ ← θ − lr·m̂                                      (un-adapted SGD with momentum)

    Conventions by preset: torch rectifies when ρ_t > 5 with ε̂ inside (ε on √v before bias correction);
    optax when ρ_t ≥ 5 with ε after correction; the paper's Algorithm 2 when ρ_t > 4, with no ε (ε = 0;
    a zero √v then means a zero gradient history and the step is 0). Keras has no RAdam.

    Args:
        lr: step size ≥ 0 (1e-3).
        betas: (β1, β2), each in [0, 1).
        eps: ε ≥ 0, placed as ``eps_hat`` says.
        weight_decay: λ ≥ 0: L2 in the gradient, or θ ← θ·(1 − lr·λ) with ``decoupled_weight_decay``.
        decoupled_weight_decay: decay the weights instead of adding λθ to the gradient (RAdamW).
        maximize: ascend instead of descend.
        eps_hat: ε added to √v before bias correction (torch) rather than to √v̂ (optax).
        eps_root: ≥ 0, added inside the square root: √(v̂ + eps_root) (optax).
        threshold: the ρ_t above which the step is rectified (5; the paper's Algorithm 2 says 4).
        threshold_inclusive: rectify when ρ_t ≥ threshold (optax) instead of ρ_t > threshold (torch).
        nesterov: use the Nesterov first moment (optax's ``radam(nesterov=True)``; see :class:`NAdam`).

    State: ``exp_avg`` (m) and ``exp_avg_sq`` (v).
    """

    lr: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    weight_decay: float | None = None
    decoupled_weight_decay: bool | None = None
    maximize: bool | None = None
    eps_hat: bool | None = None
    eps_root: float | None = None
    threshold: float | None = None
    threshold_inclusive: bool | None = None
    nesterov: bool | None = None

    name = "radam"
    defaults = dict(
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        maximize=False,
        eps_hat=True,
        eps_root=0.0,
        threshold=5.0,
        threshold_inclusive=False,
        nesterov=False,
    )
    preset_defaults = {
        "paper": dict(eps=0.0, threshold=4.0),
        "torch": {},
        "keras": dict(eps=1e-7, decoupled_weight_decay=True),
        "optax": dict(eps_hat=False, threshold_inclusive=True, decoupled_weight_decay=True),
    }
    state_names = ("exp_avg", "exp_avg_sq")

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        check_number("eps_root", self.eps_root)
        check_number("threshold", self.threshold, low=4.0)
        for flag in ("decoupled_weight_decay", "maximize", "eps_hat", "threshold_inclusive", "nesterov"):
            check_flag(flag, getattr(self, flag))

    def init(self, param: Array) -> State:
        xp = namespace(param)
        return {"exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}

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

        bc1, bc2 = bias_correction(beta1, t, param), bias_correction(beta2, t, param)
        if self.nesterov:
            m_hat = nesterov_moment(m, g, beta1, beta1, bc1, bias_correction(beta1, t + 1, param))
        else:
            m_hat = m / bc1
        plain = param - lr * m_hat

        # ρ_t in the step's own precision (host float64, or the traced count's float type)
        rho_inf = 2 / (1 - beta2) - 1
        beta2_t = beta2**t
        rho = rho_inf - 2 * t * beta2_t / (1 - beta2_t)
        rectify = rho >= self.threshold if self.threshold_inclusive else rho > self.threshold
        if is_host_step(t) and not rectify:
            return plain, new_state
        r_squared = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
        # (r² < 0 only for ρ_t < 4, which is never rectified: abs just keeps the unused branch finite)
        r = scalar_sqrt(r_squared) if is_host_step(t) else cast_like(xp.sqrt(xp.abs(r_squared)), param)

        if self.eps_hat:  # lr·r·m̂·√(1−β2^t)/(√v + ε)
            denom = xp.sqrt(v + self.eps_root) + eps
            scale = lr * r * scalar_sqrt(bc2)
        else:  # lr·r·m̂/(√v̂ + ε)
            denom = xp.sqrt(v / bc2 + self.eps_root) + eps
            scale = lr * r
        rectified = param - scale * m_hat / safe_denominator(xp, denom, eps)
        if is_host_step(t):
            return rectified, new_state
        return xp.where(rectify, rectified, plain), new_state
