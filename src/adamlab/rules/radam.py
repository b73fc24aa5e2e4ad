"""RAdam (Liu et al. 2020): Adam with the variance of the adaptive learning rate rectified."""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.ops import Ops, ops_for
from adamlab.rules.base import (
    Array,
    Coefficients,
    Rule,
    State,
    StateLayout,
    apply_increment,
    cast_like,
    check_betas,
    check_flag,
    check_number,
    guard_zero,
    is_host_step,
    nonzero,
    per_element,
    scalar_sqrt,
)
from adamlab.rules.moments import decay_weights, ema, ema_square, l2_gradient, next_step, scale_by_learning_rate
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
    supports_complex = True
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

    def layout(self) -> StateLayout:
        return StateLayout(per_element("exp_avg") + per_element("exp_avg_sq", nonnegative=True))

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        check_number("eps_root", self.eps_root)
        check_number("threshold", self.threshold, low=4.0)
        for flag in ("decoupled_weight_decay", "maximize", "eps_hat", "threshold_inclusive", "nesterov"):
            check_flag(flag, getattr(self, flag))

    def coefficients(self, t: Any, state: State) -> Coefficients:
        b1, b2 = self.betas
        lr, wd = self.lr, self.weight_decay
        k: Coefficients = {"b1": b1, "w1": 1 - b1, "b2": b2, "w2": 1 - b2, "eps": self.eps, "wd": wd, "lr": lr}
        k["keep"] = 1 - lr * wd
        k["eps_root"] = self.eps_root
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        k.update(bc1=bc1, bc2=bc2, bc1_next=1 - b1 ** next_step(t), bc2_sqrt=bc2**0.5)
        # ρ_t in the step's own precision (host float64, or the traced count's float type), as torch and optax
        # (optax: b2t = b2**count; ρ_∞ − 2·count·b2t/(1 − b2t), its own 1 − β2^t)
        rho_inf = 2 / (1 - b2) - 1
        b2t = b2**t
        rho = rho_inf - 2 * t * b2t / (1 - b2t)
        rectify = rho >= self.threshold if self.threshold_inclusive else rho > self.threshold
        r_squared = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
        if is_host_step(t):
            r = r_squared**0.5 if rectify else 0.0  # torch's _compute_rect (unused when not rectified)
            k["rectify"] = bool(rectify)
        else:  # r² < 0 only for ρ_t < 4, which is never rectified: abs keeps the unused branch finite
            r = ops_for(r_squared).sqrt(abs(r_squared))
            k["rectify"] = rectify
        k["rect"] = r
        k["scale"] = lr * r * scalar_sqrt(bc2) if self.eps_hat else lr * r
        return k

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        order = self.preset
        g = -grad if self.maximize else grad
        decoupled = nonzero(self.weight_decay) and self.decoupled_weight_decay
        if nonzero(self.weight_decay):
            if not self.decoupled_weight_decay:
                g = l2_gradient(ops, order, g, param, k["wd"])
            elif order != "optax":  # optax adds λθ to the update instead (below)
                param = decay_weights(ops, order, param, k)
        m = ema(ops, order, state["exp_avg"], g, k["b1"], k["w1"])
        v = ema_square(ops, order, state["exp_avg_sq"], g, k["b2"], k["w2"])
        new_state = {"exp_avg": m, "exp_avg_sq": v}
        if order == "optax":
            return self._optax_step(ops, k, param, g, m, v, decoupled), new_state
        if self.nesterov:
            m_hat = nesterov_moment(m, g, k["b1"], k["b1"], cast_like(k["bc1"], m), cast_like(k["bc1_next"], m))
        else:
            m_hat = m / cast_like(k["bc1"], m)
        if order == "torch" and not self.nesterov and self.eps_hat and not nonzero(self.eps_root):
            # torch.optim.RAdam: param.add_(m̂·lr·(√bc2/(√v + ε))·r, alpha=−1), or param.add_(m̂·lr, alpha=−1)
            adaptive = k["bc2_sqrt"] / guard_zero(ops, ops.sqrt(v) + k["eps"], self.eps)
            rectified = ops.axpy(param, m_hat * k["lr"] * adaptive * k["rect"], -1.0)
            return ops.select(k["rectify"], rectified, ops.axpy(param, m_hat * k["lr"], -1.0)), new_state
        if self.eps_hat:  # lr·r·m̂·√(1−β2^t)/(√v + ε)
            denom = ops.sqrt(v + k["eps_root"]) + k["eps"]
        else:  # lr·r·m̂/(√v̂ + ε)
            denom = ops.sqrt(v / cast_like(k["bc2"], v) + k["eps_root"]) + k["eps"]
        rectified = param - cast_like(k["scale"], param) * m_hat / guard_zero(ops, denom, self.eps)
        return ops.select(k["rectify"], rectified, param - k["lr"] * m_hat), new_state

    def _optax_step(self, ops: Ops, k: Coefficients, p: Array, g: Array, m: Array, v: Array, decoupled: bool) -> Any:
        """optax.scale_by_radam, then scale_by_learning_rate: u = −lr·where(ρ_t ≥ 5, r·m̂/(√(v̂+ε_r)+ε), m̂)."""
        if self.nesterov:  # b1·m/(1−β1^(t+1)) + (1−β1)·g/(1−β1^t), each moment bias-corrected first
            m_hat = k["b1"] * (m / cast_like(k["bc1_next"], m)) + k["w1"] * (g / cast_like(k["bc1"], g))
        else:
            m_hat = m / cast_like(k["bc1"], m)
        v_hat = v / cast_like(k["bc2"], v)
        if self.eps_hat:  # the ε̂ form in optax's operations
            denom = guard_zero(ops, ops.sqrt(v + k["eps_root"]) + k["eps"], self.eps)
            rectified = cast_like(k["rect"], m_hat) * m_hat * cast_like(k["bc2_sqrt"], m_hat) / denom
        else:
            denom = guard_zero(ops, ops.sqrt(v_hat + k["eps_root"]) + k["eps"], self.eps)
            rectified = cast_like(k["rect"], m_hat) * m_hat / denom
        u = ops.select(k["rectify"], rectified, m_hat)
        if decoupled:
            u = u + k["wd"] * p
        return apply_increment(p, scale_by_learning_rate(k["lr"], u))
