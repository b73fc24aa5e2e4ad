"""Lion (Chen et al. 2023): the sign of an interpolation of momentum and gradient, with decoupled weight decay."""

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
    check_flag,
    check_number,
    like_step,
    nonzero,
    per_element,
)
from adamlab.rules.moments import decay_weights, keras_keep


@dataclasses.dataclass(frozen=True)
class Lion(Rule):
    r"""Lion: EvoLved Sign Momentum (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023,
    arXiv:2302.06675, Algorithm 2).

    With g the gradient of step t::

        c ← β1·m + (1−β1)·g                 (the interpolation whose sign is the step)
        θ ← θ − lr·(sign(c) + λ·θ)          (decoupled weight decay)
        m ← β2·m + (1−β2)·g                 (the momentum, with its own β2)

    Every coordinate moves by exactly ±lr (plus the decay), so the update has the same size for every
    parameter; the paper uses an lr 3–10× smaller and a λ 3–10× larger than for AdamW.

    The preset fixes defaults and the order of arithmetic: ``paper`` and ``torch`` (torch has no Lion) are
    Algorithm 2 as printed; ``optax``: u = sign((1−β1)·g + β1·m), u + λθ, then −lr·u (``optax.lion``);
    ``keras``: θ·(1 − λ·lr) first, then ``θ − lr·sign(m·β1 + g·(1−β1))`` with β in the variable's dtype
    (``keras.optimizers.Lion``), or, on Keras's torch backend, its ``torch._foreach_`` ops (torch_lion.py).

    Args:
        lr: step size ≥ 0 (paper, torch 1e-4; keras 1e-3; optax: required, 1e-4 here).
        betas: (β1, β2), each in [0, 1]: β1 interpolates the step, β2 is the momentum's decay (0.9, 0.99).
        weight_decay: λ ≥ 0 (paper, torch, keras 0; optax 1e-3).
        maximize: ascend instead of descend (g ← −g).

    State: ``exp_avg`` (m).

    Example:
        >>> import numpy as np
        >>> rule = Lion(lr=0.1)
        >>> p = np.array([1.0, -1.0]); s = rule.init(p)
        >>> p, s = rule.step(p, np.array([3.0, -0.5]), s, t=1)
        >>> p.tolist()   # each coordinate moved by lr against the sign of its gradient
        [0.9, -0.9]
    """

    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    maximize: bool | None = None

    name = "lion"
    defaults = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False)
    preset_defaults = {
        "paper": {},
        "torch": {},
        "keras": dict(lr=1e-3),
        "optax": dict(weight_decay=1e-3),
    }

    def validate(self) -> None:
        check_number("lr", self.lr)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), each in [0, 1]; got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            check_number(f"betas[{i}]", beta, low=0.0, high=1.0, high_open=False)
        check_number("weight_decay", self.weight_decay)
        check_flag("maximize", self.maximize)

    def layout(self) -> StateLayout:
        return StateLayout(per_element("exp_avg"))

    def coefficients(self, t: Any, state: State) -> Coefficients:
        b1, b2 = self.betas
        lr, wd = self.lr, self.weight_decay
        k: Coefficients = {"b1": b1, "w1": 1 - b1, "b2": b2, "w2": 1 - b2, "lr": lr, "wd": wd}
        # Keras's torch backend: θ·(1 − λ·lr) with 1 − λ·lr computed in float32 (its learning-rate variable's dtype)
        k["keep"] = keras_keep(lr, wd, t) if self.preset == "keras" else 1 - lr * wd
        if self.preset == "keras":  # Keras's update_step: β cast to the variable's dtype, 1 − β computed there
            k["b1_cast"], k["b2_cast"] = like_step(b1, t), like_step(b2, t)
            k["w1_cast"], k["w2_cast"] = 1.0 - k["b1_cast"], 1.0 - k["b2_cast"]
        return k

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        g = -grad if self.maximize else grad
        m = state["exp_avg"]
        if self.preset == "optax":  # scale_by_lion, add_decayed_weights, scale_by_learning_rate
            u = ops.sign(k["w1"] * g + k["b1"] * m)
            if nonzero(self.weight_decay):
                u = u + k["wd"] * param
            return apply_increment(param, -k["lr"] * u), {"exp_avg": k["w2"] * g + k["b2"] * m}
        if self.preset == "keras":
            if nonzero(self.weight_decay):
                param = decay_weights(ops, "keras", param, k)
            if ops.name == "torch":  # Keras's torch backend (torch_lion.py): _foreach_mul, then add_(alpha=1 − β)
                c = ops.axpy(m * k["b1"], g, k["w1"])
                new_param = ops.axpy(param, ops.sign(c) * k["lr"], -1)
                return new_param, {"exp_avg": ops.axpy(m * k["b2"], g, k["w2"])}
            c = m * k["b1_cast"] + g * k["w1_cast"]
            return param - k["lr"] * ops.sign(c), {"exp_avg": m * k["b2_cast"] + g * k["w2_cast"]}
        # Algorithm 2 as printed (the paper and the torch preset)
        c = k["b1"] * m + k["w1"] * g
        step = ops.sign(c) + k["wd"] * param if nonzero(self.weight_decay) else ops.sign(c)
        return param - k["lr"] * step, {"exp_avg": k["b2"] * m + k["w2"] * g}
