"""Adam (Kingma & Ba 2014, Algorithm 1) with every convention the frameworks differ on, and AdamW."""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.ops import Ops
from adamlab.rules.base import (
    Array,
    Coefficients,
    Rule,
    State,
    StateLayout,
    apply_increment,
    cast_like,
    check_betas,
    check_choice,
    check_flag,
    check_number,
    guard_zero,
    like_step,
    nonzero,
    per_element,
    scalar_sqrt,
)
from adamlab.rules.moments import (
    decay_weights,
    ema,
    ema_square,
    keras_keep,
    keras_power,
    l2_gradient,
    next_step,
    scale_by_learning_rate,
)


@dataclasses.dataclass(frozen=True)
class Adam(Rule):
    r"""Adam: adaptive moment estimation (Kingma & Ba, ICLR 2015, arXiv:1412.6980, Algorithm 1).

    With g the gradient at step t (1-based)::

        m ← β1·m + (1−β1)·g                 v ← β2·v + (1−β2)·g²
        m̂ = m / (1−β1^t)                    v̂ = v / (1−β2^t)
        θ ← θ − lr · m̂ / (√(v̂ + eps_root) + ε)                         (eps_hat=False, Algorithm 1)
        θ ← θ − lr·√(1−β2^t)/(1−β1^t) · m / (√v + ε̂)                    (eps_hat=True, end of §2; Keras/TF)

    The ε̂ form equals Algorithm 1 only with ε = ε̂/√(1−β2^t), so the two forms are different optimizers.

    The preset also fixes the order of arithmetic, so that each preset computes its framework's bits:
    ``torch``: ``m.lerp_(g, 1−β1)``, ``v.mul_(β2).addcmul_(g, g, value=1−β2)``, ``θ.addcdiv_(m, √v/√bc2 + ε,
    value=−lr/bc1)``; ``optax``: ``(1−β1)·g + β1·m``, ``m̂/(√(v̂ + eps_root) + ε)``, then ``−lr·u`` (and
    ``+ λθ`` before it for AdamW) added by ``apply_updates``; ``keras``: ``m += (g − m)·(1−β1)``, α computed in
    the variable's dtype, ``θ −= m·α/(√v + ε̂)``; ``paper``: Algorithm 1 as written.

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
        preset: ``"paper" | "torch" | "keras" | "optax"`` chooses defaults, conventions and the order of
            arithmetic (see docs/presets.md); explicit arguments win.

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
    supports_complex = True
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

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        check_number("eps_root", self.eps_root)
        for flag in ("amsgrad", "maximize", "decoupled_weight_decay", "bias_correction", "eps_hat", "nesterov"):
            check_flag(flag, getattr(self, flag))
        check_choice("amsgrad_max_of", self.amsgrad_max_of, ("v", "v_hat"))

    def layout(self) -> StateLayout:
        second = ("exp_avg_sq", "max_exp_avg_sq") if self.amsgrad else ("exp_avg_sq",)
        return StateLayout(per_element("exp_avg") + per_element(*second, nonnegative=True))

    # --- per step: the scalars, in the host arithmetic of the preset's framework ----------------------------

    def coefficients(self, t: Any, state: State) -> Coefficients:
        b1, b2 = self.betas
        lr, wd = self.lr, self.weight_decay
        k: Coefficients = {"b1": b1, "w1": 1 - b1, "b2": b2, "w2": 1 - b2, "eps": self.eps, "wd": wd, "lr": lr}
        k["keep"] = keras_keep(lr, wd, t) if self.preset == "keras" else 1 - lr * wd  # decoupled decay θ·(1 − lr·λ)
        k["eps_root"] = self.eps_root
        if self.preset == "keras":  # Keras: β^t, α in the variable's dtype (t arrives as a 0-d array of it)
            b1_power, b2_power = keras_power(b1, t), keras_power(b2, t)
            bc1, bc2 = (1 - b1_power, 1 - b2_power) if self.bias_correction else (1.0, 1.0)
            k["alpha"] = like_step(lr, t) * scalar_sqrt(bc2) / bc1
        else:  # host float64 (torch, paper), or arrays at the count's precision (optax under jit)
            bc1, bc2 = (1 - b1**t, 1 - b2**t) if self.bias_correction else (1.0, 1.0)
        k["bc1"], k["bc2"] = bc1, bc2
        k["bc1_next"] = (1 - b1 ** next_step(t)) if self.bias_correction else 1.0
        if self.preset == "torch":
            k["neg_step_size"] = -(lr / bc1)
            k["bc2_sqrt"] = bc2**0.5
            k["neg_scale_hat"] = -(lr * bc2**0.5 / bc1)  # the ε̂ form
        k["scale_hat"] = lr * scalar_sqrt(bc2) / bc1
        return k

    # --- the elementwise step ---------------------------------------------------------------------------

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        order = self.preset
        g = -grad if self.maximize else grad
        decoupled = nonzero(self.weight_decay) and self.decoupled_weight_decay
        if nonzero(self.weight_decay) and not self.decoupled_weight_decay:
            g = l2_gradient(ops, order, g, param, k["wd"])
        if decoupled and order != "optax":  # optax adds λθ to the update instead (below)
            param = decay_weights(ops, order, param, k)
        m = ema(ops, order, state["exp_avg"], g, k["b1"], k["w1"])
        v = ema_square(ops, order, state["exp_avg_sq"], g, k["b2"], k["w2"])
        new_state = {"exp_avg": m, "exp_avg_sq": v}
        v_max, corrected = v, False  # the second moment under the root; corrected: already divided by bc2
        if self.amsgrad:
            if self.amsgrad_max_of == "v":  # torch, Keras: running max of raw v
                v_max = new_state["max_exp_avg_sq"] = ops.maximum(state["max_exp_avg_sq"], v)
            else:  # optax: running max of the corrected v̂
                v_max = new_state["max_exp_avg_sq"] = ops.maximum(state["max_exp_avg_sq"], _div(ops, v, k["bc2"]))
                corrected = True
        if order == "torch":
            return self._torch_step(ops, k, param, g, m, v_max, corrected), new_state
        if order == "keras":
            return self._keras_step(ops, k, param, g, m, v_max, corrected), new_state
        if order == "optax":
            return self._optax_step(ops, k, param, g, m, v_max, corrected, decoupled), new_state
        return self._paper_step(ops, k, param, g, m, v_max, corrected), new_state

    def _m_hat(self, ops: Ops, k: Coefficients, m: Array, g: Array) -> Array:
        """m̂, or its Nesterov look-ahead β1·m/(1−β1^(t+1)) + (1−β1)·g/(1−β1^t) (optax's order)."""
        if self.nesterov:
            return k["b1"] * _div(ops, m, k["bc1_next"]) + k["w1"] * _div(ops, g, k["bc1"])
        return _div(ops, m, k["bc1"])

    def _torch_step(self, ops: Ops, k: Coefficients, p: Array, g: Array, m: Array, v: Array, corrected: bool) -> Array:
        """torch.optim.Adam's for-loop path: ``θ.addcdiv_(m, √v/√bc2 + ε, value=−lr/bc1)``."""
        if self.eps_hat and not self.nesterov:  # α_t·m/(√v + ε̂)
            denom = ops.sqrt(v + k["eps_root"] if nonzero(self.eps_root) else v) + k["eps"]
            return ops.addcdiv(p, m, guard_zero(ops, denom, self.eps), k["neg_scale_hat"])
        if self.nesterov or nonzero(self.eps_root) or corrected:  # conventions torch lacks, in torch's operations
            v_hat = v if corrected or self.eps_hat else v / k["bc2"]
            denom = ops.sqrt(v_hat + k["eps_root"] if nonzero(self.eps_root) else v_hat) + k["eps"]
            if self.nesterov:
                m_dir = self._m_hat(ops, k, m, g)
                scale = -(k["lr"] * scalar_sqrt(k["bc2"])) if self.eps_hat else -k["lr"]
                return ops.addcdiv(p, m_dir, guard_zero(ops, denom, self.eps), scale)
            return ops.addcdiv(p, m, guard_zero(ops, denom, self.eps), k["neg_step_size"])
        denom = ops.sqrt(v) / k["bc2_sqrt"] + k["eps"]
        return ops.addcdiv(p, m, guard_zero(ops, denom, self.eps), k["neg_step_size"])

    def _keras_step(self, ops: Ops, k: Coefficients, p: Array, g: Array, m: Array, v: Array, corrected: bool) -> Array:
        """keras.optimizers.Adam: ``θ −= (m·α)/(√v + ε)`` with α = lr·√(1−β2^t)/(1−β1^t)."""
        if not self.eps_hat or self.nesterov or corrected:  # Algorithm 1's ε in Keras's operations
            m_dir = self._m_hat(ops, k, m, g)
            v_hat = v if corrected else _div(ops, v, k["bc2"])
            denom = ops.sqrt(v_hat + k["eps_root"] if nonzero(self.eps_root) else v_hat) + k["eps"]
            return p - (m_dir * k["lr"]) / guard_zero(ops, denom, self.eps)
        denom = ops.sqrt(v + k["eps_root"] if nonzero(self.eps_root) else v) + k["eps"]
        if ops.name == "torch":  # Keras's torch backend: torch._foreach_add_(θ, (m·α)/(√v + ε), alpha=−1)
            return ops.axpy(p, (m * k["alpha"]) / guard_zero(ops, denom, self.eps), -1)
        return p - (m * k["alpha"]) / guard_zero(ops, denom, self.eps)

    def _optax_step(
        self, ops: Ops, k: Coefficients, p: Array, g: Array, m: Array, v: Array, corrected: bool, decoupled: bool
    ) -> Any:
        """optax.scale_by_adam, [add_decayed_weights], scale_by_learning_rate: u = −lr·(m̂/(√(v̂+ε_r)+ε) [+ λθ])."""
        m_hat = self._m_hat(ops, k, m, g)
        if self.eps_hat:  # the ε̂ form in optax's operations
            u = m_hat * scalar_sqrt(k["bc2"]) / guard_zero(ops, ops.sqrt(v + k["eps_root"]) + k["eps"], self.eps)
        else:
            v_hat = v if corrected else _div(ops, v, k["bc2"])
            u = m_hat / guard_zero(ops, ops.sqrt(v_hat + k["eps_root"]) + k["eps"], self.eps)
        if decoupled:
            u = u + k["wd"] * p
        return apply_increment(p, scale_by_learning_rate(k["lr"], u))

    def _paper_step(self, ops: Ops, k: Coefficients, p: Array, g: Array, m: Array, v: Array, corrected: bool) -> Array:
        """Algorithm 1: θ ← θ − α·m̂/(√v̂ + ε) (or the ε̂ form α_t·m/(√v + ε̂))."""
        if self.eps_hat and not self.nesterov and not corrected:
            denom = ops.sqrt(v + k["eps_root"]) + k["eps"]
            return p - k["scale_hat"] * m / guard_zero(ops, denom, self.eps)
        if not self.nesterov and not self.eps_hat:
            m_hat, denom = self._corrected(ops, k, m, v, corrected)
            return p - k["lr"] * m_hat / guard_zero(ops, denom, self.eps)
        m_dir = self._m_hat(ops, k, m, g)
        v_hat = v if corrected or self.eps_hat else _div(ops, v, k["bc2"])
        denom = ops.sqrt(v_hat + k["eps_root"]) + k["eps"]
        scale = k["lr"] * scalar_sqrt(k["bc2"]) if self.eps_hat else k["lr"]
        return p - scale * m_dir / guard_zero(ops, denom, self.eps)

    def _corrected(self, ops: Ops, k: Coefficients, m: Array, v: Array, corrected: bool) -> tuple[Array, Array]:
        """(m̂, √v̂ + ε): Algorithm 1's corrected moments (v: the second moment the step uses, v̂ if ``corrected``)."""
        v_hat = v if corrected else _div(ops, v, k["bc2"])
        return _div(ops, m, k["bc1"]), ops.sqrt(v_hat + k["eps_root"]) + k["eps"]

    def effective_step(self, k: Coefficients, state: State) -> tuple[Array, Array, Array]:
        """(m̂, v̂, d) with the step Δ = lr·m̂/d, for the state a step with coefficients ``k`` produced (paper §2.1).

        v̂ is the bias-corrected second moment the step uses (amsgrad's maximum, of v or of v̂). Every convention
        of this rule is followed: bias correction on or off, eps_root, and the ε̂ form, whose denominator in units
        of m̂ is d = (√(v + eps_root) + ε̂)/√(1−β2^t). With ``nesterov`` the step also needs the gradient: m̂ is
        then the plain corrected mean. The lab's diagnostics and training summary read Adam's steps through
        this method, so they follow the rule instead of re-deriving it.
        """
        from adamlab.ops import ops_for

        m = state["exp_avg"]
        ops = ops_for(m)
        corrected = self.amsgrad and self.amsgrad_max_of == "v_hat"
        v = state["max_exp_avg_sq"] if self.amsgrad else state["exp_avg_sq"]
        v_hat = v if corrected else _div(ops, v, k["bc2"])
        m_hat = _div(ops, m, k["bc1"])
        if self.eps_hat:
            raw = v * cast_like(k["bc2"], v) if corrected else v
            return m_hat, v_hat, (ops.sqrt(raw + k["eps_root"]) + k["eps"]) / cast_like(scalar_sqrt(k["bc2"]), v)
        return m_hat, v_hat, ops.sqrt(v_hat + k["eps_root"]) + k["eps"]


def _div(ops: Ops, x: Array, by: Any) -> Array:
    """x / by, with ``by`` (a host float or a 0-d array) in x's dtype first, as optax divides moments."""
    return x / cast_like(by, x)


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
