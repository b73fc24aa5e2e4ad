"""NAdam (Dozat 2016): Adam with Nesterov momentum, with torch's, Keras's and optax's momentum schedules."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from adamlab.ops import Ops, ops_for
from adamlab.rules.base import (
    Array,
    Coefficients,
    Rule,
    State,
    StateEntry,
    StateLayout,
    apply_increment,
    cast_like,
    check_betas,
    check_flag,
    check_number,
    guard_zero,
    is_host_step,
    like_step,
    nonzero,
    per_element,
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


def nesterov_moment(m: Array, g: Array, mu: Any, mu_next: Any, bc: Any, bc_next: Any) -> Array:
    """The Nesterov first moment m̄ = μ_{t+1}·m/(1−Π_{t+1}) + (1−μ_t)·g/(1−Π_t), with bc = 1−Π_t.

    Π_t = μ_1·…·μ_t. With a constant μ = β1 this is optax's ``nesterov=True`` form
    β1·m/(1−β1^(t+1)) + (1−β1)·g/(1−β1^t).
    """
    return mu_next * m / bc_next + (1 - mu) * g / bc


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

    State: ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with the schedule, ``mu_product`` (Π_t, a 0-d array; in the
    torch preset in the array library's default float dtype, as torch.optim.NAdam keeps it: float32 unless
    ``torch.set_default_dtype`` says otherwise, also for float64 parameters; else in the parameter's dtype).
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
    supports_complex = True
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

    def layout(self) -> StateLayout:
        entries = per_element("exp_avg") + per_element("exp_avg_sq", nonnegative=True)
        if self.momentum_schedule:
            # torch keeps Π_t in its default dtype (float32 unless changed), also for float64 parameters
            dtype = "default" if self.preset == "torch" else "param"
            entries += (StateEntry("mu_product", kind="scalar", fill=1.0, dtype=dtype),)
        return StateLayout(entries)

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_betas(self.betas)
        check_number("eps", self.eps)
        check_number("weight_decay", self.weight_decay)
        check_number("momentum_decay", self.momentum_decay)
        for flag in ("decoupled_weight_decay", "maximize", "momentum_schedule"):
            check_flag(flag, getattr(self, flag))

    def coefficients(self, t: Any, state: State) -> Coefficients:
        b1, b2 = self.betas
        lr, wd = self.lr, self.weight_decay
        k: Coefficients = {"b1": b1, "w1": 1 - b1, "b2": b2, "w2": 1 - b2, "eps": self.eps, "wd": wd, "lr": lr}
        k["keep"] = 1 - lr * wd
        k["bc2"] = 1 - b2**t
        if self.preset == "keras" and self.momentum_schedule and not is_host_step(t):
            return {**k, **self._keras_coefficients(t, state)}
        if self.momentum_schedule:  # μ_t, μ_{t+1}; Π_t is carried in the state (a 0-d array of its own dtype)
            psi = self.momentum_decay
            mu = b1 * (1.0 - 0.5 * (0.96 ** (t * psi)))
            mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * psi)))
            prior = state["mu_product"]  # rounded to Π's dtype, as torch's mu_product *= mu
            product = k["mu_product"] = prior * cast_like(mu, prior)
            if is_host_step(t) and np.ndim(product) == 0:  # torch: host floats from _get_value(mu_product)
                value = float(product)
                bc, bc_next = 1.0 - value, 1.0 - value * mu_next
            else:  # Π's value in the float type the count promotes to (float64 where the library has it), as
                # torch's default path takes it into a host float; a float32 count (torch.compile) keeps float32
                # (a host count with per-member Π, a batched run, keeps Π in its own library and dtype)
                wide = product if is_host_step(t) else cast_like(product, t * 1.0)
                bc, bc_next = 1 - wide, 1 - wide * cast_like(mu_next, wide)
        else:  # constant μ = β1: Π_t = β1^t (optax's nadam)
            mu = mu_next = b1
            bc, bc_next = 1 - b1**t, 1 - b1 ** next_step(t)
        k.update(mu=mu, mu_next=mu_next, bc=bc, bc_next=bc_next)
        # torch's two addcdiv_ values: −lr·(1−μ)/(1−Π_t) on g, −lr·μ_{t+1}/(1−Π_{t+1}) on m
        k["g_value"] = -lr * (1.0 - mu) / bc
        k["m_value"] = (-lr * mu_next) / bc_next
        return k

    def _keras_coefficients(self, t: Any, state: State) -> Coefficients:
        """keras.optimizers.Nadam's scalars, in the variable's dtype (t is a 0-d array of it, as Keras's count).

        μ_t = β1·(1 − ½·0.96^t) and μ_{t+1} with β1 and 0.96 cast to the dtype. Keras updates its one Π once per
        step before the variables, as ``(Π·β1)·(1 − ½·0.96^t)`` on the jax and tensorflow backends and as
        ``Π·μ_t`` on the torch backend (``torch_nadam.py``); here each variable carries its own copy of Π.
        """
        b1, b2 = self.betas
        psi = self.momentum_decay
        beta1 = like_step(b1, t)
        power, power_next = (t, next_step(t)) if psi == 1 else (t * psi, next_step(t) * psi)
        mu = beta1 * (1.0 - 0.5 * keras_power(0.96, power))
        mu_next = beta1 * (1.0 - 0.5 * keras_power(0.96, power_next))
        prior = state["mu_product"]
        on_torch = ops_for(t).name == "torch"
        product = prior * mu if on_torch else prior * b1 * (1.0 - 0.5 * keras_power(0.96, power))
        product_next = product * mu_next
        lr = like_step(self.lr, t)
        beta2 = like_step(b2, t)
        # the backend-neutral update_step weighs g by 1 − β1 and g² by 1 − β2 of the cast betas (the torch
        # backend by 1 − β of the Python floats)
        weights = {} if on_torch else {"w1": 1 - beta1, "w2": 1 - beta2}
        return {**weights, "mu": mu, "mu_next": mu_next, "mu_product": product, "bc": 1 - product,
                "bc_next": 1 - product_next, "bc2": 1 - keras_power(b2, t), "lr_t": lr,
                "keep": keras_keep(self.lr, self.weight_decay, t), "g_value": 0.0, "m_value": 0.0}  # fmt: skip

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        order = self.preset
        g = -grad if self.maximize else grad
        param_in = param
        if nonzero(self.weight_decay):
            if self.decoupled_weight_decay:
                if not (order == "optax" and not self.momentum_schedule):  # optax.nadamw adds λθ to u (below)
                    param = decay_weights(ops, order, param, k)
            else:
                g = l2_gradient(ops, order, g, param, k["wd"])
        m = ema(ops, order, state["exp_avg"], g, k["b1"], k["w1"])
        v = ema_square(ops, order, state["exp_avg_sq"], g, k["b2"], k["w2"])
        new_state = {"exp_avg": m, "exp_avg_sq": v}
        if order == "torch":  # torch.optim.NAdam's for-loop path
            denom = guard_zero(ops, ops.sqrt(v / k["bc2"]) + k["eps"], self.eps)
            return ops.addcdiv(ops.addcdiv(param, g, denom, k["g_value"]), m, denom, k["m_value"]), new_state
        if order == "optax" and not self.momentum_schedule:  # optax.nadam = adam(nesterov=True), then −lr·u
            m_hat = k["b1"] * (m / cast_like(k["bc_next"], m)) + k["w1"] * (g / cast_like(k["bc"], g))
            denom = guard_zero(ops, ops.sqrt(v / cast_like(k["bc2"], v) + 0.0) + k["eps"], self.eps)
            u = m_hat / denom
            if nonzero(self.weight_decay) and self.decoupled_weight_decay:  # optax.nadamw
                u = u + k["wd"] * param_in
            return apply_increment(param, scale_by_learning_rate(k["lr"], u)), new_state
        m_bar = nesterov_moment(m, g, cast_like(k["mu"], m), cast_like(k["mu_next"], m),
                                cast_like(k["bc"], m), cast_like(k["bc_next"], m))  # fmt: skip
        denom = guard_zero(ops, ops.sqrt(v / cast_like(k["bc2"], v)) + k["eps"], self.eps)
        if order == "keras" and "lr_t" in k:  # θ −= (m̂·lr)/(√v̂ + ε); torch backend: θ.add_(…, alpha=−1)
            step = (m_bar * k["lr_t"]) / denom
            return (ops.axpy(param, step, -1) if ops.name == "torch" else param - step), new_state
        return param - k["lr"] * m_bar / denom, new_state
