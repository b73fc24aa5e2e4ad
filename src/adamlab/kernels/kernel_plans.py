"""What a rule's kernel needs besides the arrays: its option flags and, per step t, its host scalars.

The scalars are computed here exactly as the rule computes them on the host (the same float64 expressions,
e.g. ``lr / (1 - beta1**t)``), and the kernel casts each to the array dtype where the rule multiplies a
tensor by it. A plan exists only for a rule type listed in :data:`PLANS` (exact type, so a user subclass
that changes the math never runs a kernel) with plain-number hyperparameters; anything else takes the
generic flat path or the plain path.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from adamlab import rules
from adamlab.rules import Rule


@dataclasses.dataclass(frozen=True)
class KernelPlan:
    """How to run one rule object's kernel."""

    kernel: str  # key of adamlab.kernels.cpu_kernels.STEPS
    slots: tuple[str, ...]  # state names for the kernel's s0, s1, s2
    flags: np.ndarray  # int64 options
    row: Callable[[int], tuple[float, ...]]  # host scalars for step t
    mu_schedule: Any = None  # NAdam with its μ schedule: (rule), rows need the per-tensor μ product

    def rows(self, steps: np.ndarray, stepped: np.ndarray | None, mu_product: np.ndarray | None) -> np.ndarray:
        """One row for all tensors when they share step t, else one per tensor (``stepped``: which step now)."""
        if self.mu_schedule is not None:
            return _nadam_rows(self, steps, stepped, mu_product)
        live = steps if stepped is None else steps[stepped]
        first = int(live[0]) if live.size else 1
        if live.size == 0 or (live == first).all():
            return np.array([self.row(first)], dtype=np.float64)
        distinct, inverse = np.unique(live, return_inverse=True)
        table = np.array([self.row(int(t)) for t in distinct], dtype=np.float64)
        out = np.repeat(table[:1], steps.size, axis=0)
        out[stepped] = table[inverse]
        return out


def plan_for(rule: Any) -> KernelPlan | None:
    """The kernel plan of ``rule``, or None when no kernel expresses it."""
    make = PLANS.get(type(rule))
    if make is None or not all(_plain_number(v) for v in rule.hyperparameters().values()):
        return None
    return make(rule)


def _plain_number(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain_number(v) for v in value)
    return isinstance(value, (str, numbers.Real))  # not arrays or tensors (batched or traced values)


def _flags(*values: Any) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.int64)


def _decay_modes(rule: Rule) -> tuple[bool, bool]:
    """(L2 folded into the gradient, decoupled decay of θ), each only when weight_decay != 0."""
    wd = rule.weight_decay
    return wd != 0 and not rule.decoupled_weight_decay, wd != 0 and rule.decoupled_weight_decay


def _adam(rule: rules.Adam) -> KernelPlan:
    b1, b2 = rule.betas
    lr, eps, wd = rule.lr, rule.eps, rule.weight_decay
    l2, decay = _decay_modes(rule)
    ams = 0 if not rule.amsgrad else (1 if rule.amsgrad_max_of == "v" else 2)

    def row(t: int) -> tuple[float, ...]:
        bc1, bc2 = (1 - b1**t, 1 - b2**t) if rule.bias_correction else (1.0, 1.0)
        bc1_next = 1.0
        if rule.nesterov:
            bc1_next = 1 - b1 ** (t + 1) if rule.bias_correction else 1.0
            scale = lr * math.sqrt(bc2) if rule.eps_hat else lr
        elif rule.eps_hat:
            scale = lr * math.sqrt(bc2) / bc1
        else:
            scale = lr / bc1
        return (b1, 1 - b1, b2, 1 - b2, wd, 1 - lr * wd, eps, rule.eps_root, bc1, bc2, bc1_next, scale)

    flags = _flags(rule.maximize, l2, decay, ams, rule.nesterov, rule.eps_hat, eps == 0)
    return KernelPlan("adam", ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), flags, row)


def _adamax(rule: rules.Adamax) -> KernelPlan:
    b1, b2 = rule.betas
    lr, eps, wd = rule.lr, rule.eps, rule.weight_decay
    l2, decay = _decay_modes(rule)

    def row(t: int) -> tuple[float, ...]:
        return (b1, 1 - b1, b2, wd, 1 - lr * wd, eps, lr / (1 - b1**t))

    flags = _flags(rule.maximize, l2, decay, rule.eps_in_max, eps == 0)
    return KernelPlan("adamax", ("exp_avg", "exp_inf"), flags, row)


def _nadam_mu(rule: rules.NAdam, t: int) -> tuple[float, float]:
    """μ_t and μ_{t+1} of the schedule (host float64, as the rule)."""
    b1, psi = rule.betas[0], rule.momentum_decay
    return b1 * (1 - 0.5 * 0.96 ** (t * psi)), b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))


def _nadam(rule: rules.NAdam) -> KernelPlan:
    b1, b2 = rule.betas
    lr, eps, wd = rule.lr, rule.eps, rule.weight_decay
    l2, decay = _decay_modes(rule)

    def row(t: int) -> tuple[float, ...]:  # constant μ = β1 (optax); the schedule fills mu..bc_next per tensor
        bc, bc_next = 1 - b1**t, 1 - b1 ** (t + 1)
        return (b1, 1 - b1, b2, 1 - b2, wd, 1 - lr * wd, eps, lr, b1, 1 - b1, bc, bc_next, 1 - b2**t)

    flags = _flags(rule.maximize, l2, decay, eps == 0)
    return KernelPlan("nadam", ("exp_avg", "exp_avg_sq"), flags, row, rule if rule.momentum_schedule else None)


def _nadam_rows(plan: KernelPlan, steps: np.ndarray, stepped: np.ndarray | None, mu_product: np.ndarray) -> np.ndarray:
    """Rows per tensor for NAdam's μ schedule; updates the per-tensor Π_t (``mu_product``) of stepped tensors.

    As in the rule: Π_t = Π_{t-1}·μ_t, bc = 1 − Π_t and bc_next = 1 − Π_t·μ_{t+1}, each rounded to the
    parameter dtype (the rule keeps Π_t as a 0-d tensor of that dtype).
    """
    rule, dtype = plan.mu_schedule, mu_product.dtype.type
    idx = np.arange(steps.size) if stepped is None else np.flatnonzero(stepped)
    distinct, inverse = np.unique(steps[idx], return_inverse=True)
    mus = np.array([_nadam_mu(rule, int(t)) for t in distinct], dtype=np.float64).reshape(-1, 2)[inverse]
    product = mu_product[idx] * mus[:, 0].astype(dtype)
    mu_product[idx] = product
    out = np.repeat(np.array([plan.row(1)], dtype=np.float64), steps.size, axis=0)
    out[idx, 8] = mus[:, 1]  # μ_{t+1}
    out[idx, 9] = 1 - mus[:, 0]  # 1 − μ_t (host float64)
    out[idx, 10] = dtype(1) - product
    out[idx, 11] = dtype(1) - product * mus[:, 1].astype(dtype)
    out[idx, 12] = np.array([1 - rule.betas[1] ** int(t) for t in distinct], dtype=np.float64)[inverse]
    return out


def _radam(rule: rules.RAdam) -> KernelPlan:
    b1, b2 = rule.betas
    lr, eps, wd = rule.lr, rule.eps, rule.weight_decay
    l2, decay = _decay_modes(rule)
    rho_inf = 2 / (1 - b2) - 1

    def row(t: int) -> tuple[float, ...]:
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        bc1_next = 1 - b1 ** (t + 1) if rule.nesterov else 1.0
        beta2_t = b2**t
        rho = rho_inf - 2 * t * beta2_t / (1 - beta2_t)
        rectify = rho >= rule.threshold if rule.threshold_inclusive else rho > rule.threshold
        scale = 0.0
        if rectify:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            scale = lr * r * math.sqrt(bc2) if rule.eps_hat else lr * r
        return (b1, 1 - b1, b2, 1 - b2, wd, 1 - lr * wd, eps, rule.eps_root, lr, bc1, bc1_next, bc2, rectify, scale)

    flags = _flags(rule.maximize, l2, decay, rule.nesterov, rule.eps_hat, eps == 0)
    return KernelPlan("radam", ("exp_avg", "exp_avg_sq"), flags, row)


def _sgd(rule: rules.SGD) -> KernelPlan:
    lr, wd = rule.lr, rule.weight_decay
    l2, decay = _decay_modes(rule)

    def row(t: int) -> tuple[float, ...]:
        return (lr, rule.momentum, 1 - rule.dampening, wd, 1 - lr * wd, t == 1)

    flags = _flags(rule.maximize, l2, decay, rule.momentum != 0, rule.nesterov, rule.lr_in_momentum)
    return KernelPlan("sgd", ("momentum_buffer",), flags, row)


def _adagrad(rule: rules.Adagrad) -> KernelPlan:
    lr, eps, wd = rule.lr, rule.eps, rule.weight_decay
    l2, decay = _decay_modes(rule)

    def row(t: int) -> tuple[float, ...]:
        return (wd, 1 - lr * wd, eps, lr / (1 + (t - 1) * rule.lr_decay))

    flags = _flags(rule.maximize, l2, decay, rule.eps_in_sqrt, eps == 0)
    return KernelPlan("adagrad", ("sum",), flags, row)


def _rmsprop(rule: rules.RMSprop) -> KernelPlan:
    lr, eps, wd, a = rule.lr, rule.eps, rule.weight_decay, rule.alpha
    l2, decay = _decay_modes(rule)

    def row(t: int) -> tuple[float, ...]:
        return (a, 1 - a, wd, 1 - lr * wd, eps, lr, rule.momentum)

    flags = _flags(
        rule.maximize, l2, decay, rule.centered, rule.eps_in_sqrt, rule.lr_in_momentum, rule.momentum > 0, eps == 0
    )
    return KernelPlan("rmsprop", ("square_avg", "momentum_buffer", "grad_avg"), flags, row)


def _adadelta(rule: rules.Adadelta) -> KernelPlan:
    lr, wd, rho = rule.lr, rule.weight_decay, rule.rho
    l2, decay = _decay_modes(rule)

    def row(t: int) -> tuple[float, ...]:
        return (rho, 1 - rho, wd, 1 - lr * wd, rule.eps, lr)

    return KernelPlan("adadelta", ("square_avg", "acc_delta"), _flags(rule.maximize, l2, decay), row)


#: plan builder per exact rule type
PLANS: dict[type, Callable[[Any], KernelPlan]] = {
    rules.Adam: _adam,
    rules.AdamW: _adam,
    rules.Adamax: _adamax,
    rules.NAdam: _nadam,
    rules.RAdam: _radam,
    rules.SGD: _sgd,
    rules.Adagrad: _adagrad,
    rules.RMSprop: _rmsprop,
    rules.Adadelta: _adadelta,
}
