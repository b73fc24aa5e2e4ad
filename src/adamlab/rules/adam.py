"""Adam (Kingma & Ba 2014, Algorithm 1) with every convention the frameworks differ on, and AdamW."""

from __future__ import annotations

import dataclasses

from adamlab.rules._array import namespace
from adamlab.rules.base import (
    Array,
    Rule,
    State,
    bias_correction,
    check_betas,
    check_choice,
    check_flag,
    check_number,
    safe_denominator,
    scalar_sqrt,
)
from adamlab.rules.nadam import nesterov_moment


@dataclasses.dataclass(frozen=True)
class Adam(Rule):
    r"""Adam: adaptive moment estimation (Kingma & Ba, ICLR 2015, arXiv:1412.6980, Algorithm 1).

    With g the gradient at step t (1-based)::

        m ← β1·m + (1−β1)·g                 v ← β2·v + (1−β2)·g²
        m̂ = m / (1−β1^t)                    v̂ = v / (1−β2^t)
        θ ← θ − lr · m̂ / (√(v̂ + eps_root) + ε)                         (eps_hat=False, Algorithm 1)
        θ ← θ − lr·√(1−β2^t)/(1−β1^t) · m / (√v + ε̂)                    (eps_hat=True, end of §2; Keras/TF)

    The ε̂ form equals Algorithm 1 only with ε = ε̂/√(1−β2^t), so the two forms are different optimizers.

    Args:
        lr: step size α (≥ 0). May be an array for batched runs (one lr per problem).
        betas: (β1, β2), each in [0, 1).
        eps: ε added to the denominator (≥ 0); where it goes is set by ``eps_hat``.
        weight_decay: λ ≥ 0. L2 (λθ added to the gradient) unless ``decoupled_weight_decay``,
            then θ ← θ·(1 − lr·λ) before the Adam update (AdamW, Loshchilov & Hutter 2019).
        amsgrad: use the running maximum of the second moment (Reddi et al. 2018).
        maximize: ascend instead of descend (g ← −g).
        decoupled_weight_decay: see ``weight_decay``.
        bias_correction: divide by (1−β^t); off gives RMSProp with momentum (§5).
        eps_hat: put ε before bias correction (the paper's "efficient" ordering; Keras/TF).
        eps_root: added inside the square root, √(v̂ + eps_root) (optax); with ``eps_hat``, √(v + eps_root). ≥ 0.
        amsgrad_max_of: ``"v"`` keeps the max of the raw v and bias-corrects it (torch, Keras);
            ``"v_hat"`` keeps the max of the bias-corrected v̂ (optax).
        nesterov: replace m̂ by its Nesterov look-ahead β1·m/(1−β1^(t+1)) + (1−β1)·g/(1−β1^t)
            (Dozat 2016; optax's ``adam(nesterov=True)``, i.e. ``optax.nadam``); see :class:`NAdam`.
        preset: ``"paper" | "torch" | "keras" | "optax"`` chooses defaults and conventions
            (see docs/presets.md); explicit arguments win.

    State: ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``.

    Example:
        >>> import numpy as np
        >>> rule = Adam(lr=0.1)
        >>> p = np.array([1.0]); s = rule.init(p)
        >>> p, s = rule.step(p, np.array([2.0]), s, t=1)
        >>> round(float(p[0]), 6)   # the first Adam step has size lr (m̂/√v̂ = ±1)
        0.9
    """

    lr: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    weight_decay: float | None = None
    amsgrad: bool | None = None
    maximize: bool | None = None
    decoupled_weight_decay: bool | None = None
    bias_correction: bool | None = None
    eps_hat: bool | None = None
    eps_root: float | None = None
    amsgrad_max_of: str | None = None
    nesterov: bool | None = None

    name = "adam"
    defaults = dict(
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        maximize=False,
        decoupled_weight_decay=False,
        bias_correction=True,
        eps_hat=False,
        eps_root=0.0,
        amsgrad_max_of="v",
        nesterov=False,
    )
    preset_defaults = {
        "paper": {},
        "torch": {},
        "keras": dict(eps=1e-7, eps_hat=True, decoupled_weight_decay=True),
        "optax": dict(amsgrad_max_of="v_hat", decoupled_weight_decay=True),
    }
    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        check_number("eps_root", self.eps_root)
        for flag in ("amsgrad", "maximize", "decoupled_weight_decay", "bias_correction", "eps_hat", "nesterov"):
            check_flag(flag, getattr(self, flag))
        check_choice("amsgrad_max_of", self.amsgrad_max_of, ("v", "v_hat"))

    def init(self, param: Array) -> State:
        xp = namespace(param)
        state = {"exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}
        if self.amsgrad:
            state["max_exp_avg_sq"] = xp.zeros_like(param)
        return state

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        xp = namespace(param)
        beta1, beta2 = self.betas
        lr, eps, wd = self.lr, self.eps, self.weight_decay
        g = -grad if self.maximize else grad
        if wd != 0 and not self.decoupled_weight_decay:
            g = g + wd * param  # L2 regularisation folded into the gradient
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * (g * g)
        new_state = {"exp_avg": m, "exp_avg_sq": v}
        # bias corrections are host float64 from an integer t: they never stall (arrays for a traced t)
        if self.bias_correction:
            bc1, bc2 = bias_correction(beta1, t, param), bias_correction(beta2, t, param)
        else:
            bc1, bc2 = 1.0, 1.0

        # the second moment the denominator uses, on the raw scale (v_max) and bias-corrected (v_hat)
        if not self.amsgrad:
            v_max, v_hat = v, v / bc2
        elif self.amsgrad_max_of == "v":  # torch, Keras: running max of raw v, then correct it
            v_max = new_state["max_exp_avg_sq"] = xp.maximum(state["max_exp_avg_sq"], v)
            v_hat = v_max / bc2
        else:  # optax: running max of the corrected v̂
            v_hat = new_state["max_exp_avg_sq"] = xp.maximum(state["max_exp_avg_sq"], v / bc2)
            v_max = v_hat * bc2

        if wd != 0 and self.decoupled_weight_decay:
            param = param * (1 - lr * wd)
        if self.nesterov:  # m̂ → its look-ahead, with the constant momentum μ_t = β1
            bc1_next = bias_correction(beta1, t + 1, param) if self.bias_correction else 1.0
            m_hat = nesterov_moment(m, g, beta1, beta1, bc1, bc1_next)
            scale, m_scaled = (lr * scalar_sqrt(bc2), m_hat) if self.eps_hat else (lr, m_hat)
        elif self.eps_hat:  # α_t · m / (√v + ε̂)
            scale, m_scaled = lr * scalar_sqrt(bc2) / bc1, m
        else:  # α · m̂ / (√v̂ + ε)
            scale, m_scaled = lr / bc1, m
        denom = xp.sqrt((v_max if self.eps_hat else v_hat) + self.eps_root) + eps
        update = scale * m_scaled / safe_denominator(xp, denom, eps)
        return param - update, new_state


@dataclasses.dataclass(frozen=True)
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): θ ← θ·(1 − lr·λ), then the Adam step.

    Same arguments as :class:`Adam`; defaults differ by preset: λ = 1e-2 (paper, torch), 4e-3 (keras),
    1e-4 (optax).
    """

    name = "adamw"
    defaults = {**Adam.defaults, "weight_decay": 1e-2, "decoupled_weight_decay": True}
    preset_defaults = {
        **Adam.preset_defaults,
        "keras": {**Adam.preset_defaults["keras"], "weight_decay": 4e-3},
        "optax": {**Adam.preset_defaults["optax"], "weight_decay": 1e-4},
    }
