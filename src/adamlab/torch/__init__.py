"""PyTorch optimizers: drop-in ``torch.optim.Optimizer`` classes over adamlab's rules (``preset="torch"``).

    >>> import torch, adamlab.torch
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = adamlab.torch.Adam(model.parameters(), lr=1e-3)

Keyword names and defaults equal torch.optim's for the same option; see each rule in
:mod:`adamlab.rules` for the math and the extra options (``eps_hat``, ``bias_correction``, ...).
Dense float32/float64 CPU parameters take the fast path by default (a flat buffer per (device, dtype), one
numba kernel call per param group, checked against the rules; ``fast=False`` turns it off; see
docs/fast-path.md).
``export_state(opt)``/``import_state(opt, checkpoint)`` move the state to and from the other faces
(:mod:`adamlab.checkpoint`).

The package holds the whole face: :mod:`~adamlab.torch.optimizer` (the ``torch.optim.Optimizer`` subclass),
:mod:`~adamlab.torch.fast_path` and :mod:`~adamlab.torch.flat_buffer` (the CPU fast path) and
:mod:`~adamlab.torch.checkpoint` (its checkpoint pair).
"""

from __future__ import annotations

from adamlab import rules
from adamlab.torch.checkpoint import export_state, import_state
from adamlab.torch.optimizer import NonFiniteError, RuleOptimizer, make_torch_optimizer


def _doc(rule: type[rules.Rule]) -> str:
    head = f"torch.optim.Optimizer running :class:`adamlab.rules.{rule.__name__}`."
    return f"{head}\n\n{rule.__doc__}\n{RuleOptimizer.__doc__}"


#: torch.optim's positional parameters after ``params`` (torch 2.x), so that positional calls mean the same
_POSITIONAL: dict[str, tuple[str, ...]] = {
    "Adam": ("lr", "betas", "eps", "weight_decay", "amsgrad"),
    "AdamW": ("lr", "betas", "eps", "weight_decay", "amsgrad"),
    "Adamax": ("lr", "betas", "eps", "weight_decay", "foreach"),
    "NAdam": ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay"),
    "RAdam": ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay"),
    "SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    "Adagrad": ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "foreach"),
    "RMSprop": (
        "lr",
        "alpha",
        "eps",
        "weight_decay",
        "momentum",
        "centered",
        "capturable",
        "foreach",
        "maximize",
        "differentiable",
    ),  # fmt: skip
    "Adadelta": ("lr", "rho", "eps", "weight_decay", "foreach"),
}

Adam = make_torch_optimizer(rules.Adam, _doc(rules.Adam), _POSITIONAL["Adam"])
AdamW = make_torch_optimizer(rules.AdamW, _doc(rules.AdamW), _POSITIONAL["AdamW"])
Adamax = make_torch_optimizer(rules.Adamax, _doc(rules.Adamax), _POSITIONAL["Adamax"])
NAdam = make_torch_optimizer(rules.NAdam, _doc(rules.NAdam), _POSITIONAL["NAdam"])
RAdam = make_torch_optimizer(rules.RAdam, _doc(rules.RAdam), _POSITIONAL["RAdam"])
SGD = make_torch_optimizer(rules.SGD, _doc(rules.SGD), _POSITIONAL["SGD"])
Adagrad = make_torch_optimizer(rules.Adagrad, _doc(rules.Adagrad), _POSITIONAL["Adagrad"])
RMSprop = make_torch_optimizer(rules.RMSprop, _doc(rules.RMSprop), _POSITIONAL["RMSprop"])
Adadelta = make_torch_optimizer(rules.Adadelta, _doc(rules.Adadelta), _POSITIONAL["Adadelta"])

#: face class per rule name
OPTIMIZERS: dict[str, type[RuleOptimizer]] = {
    cls.rule_type.name: cls for cls in (Adam, AdamW, Adamax, NAdam, RAdam, SGD, Adagrad, RMSprop, Adadelta)
}

__all__ = [
    "OPTIMIZERS",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "NonFiniteError",
    "RAdam",
    "RMSprop",
    "RuleOptimizer",
    "SGD",
    "export_state",
    "import_state",
]
