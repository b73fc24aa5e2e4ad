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
"""

from __future__ import annotations

from adamlab import rules
from adamlab.adapters.face_checkpoints import torch_export_state as export_state
from adamlab.adapters.face_checkpoints import torch_import_state as import_state
from adamlab.adapters.torch_optimizer import NonFiniteError, RuleOptimizer, make_torch_optimizer


def _doc(rule: type[rules.Rule]) -> str:
    head = f"torch.optim.Optimizer running :class:`adamlab.rules.{rule.__name__}`."
    return f"{head}\n\n{rule.__doc__}\n{RuleOptimizer.__doc__}"


Adam = make_torch_optimizer(rules.Adam, _doc(rules.Adam))
AdamW = make_torch_optimizer(rules.AdamW, _doc(rules.AdamW))
Adamax = make_torch_optimizer(rules.Adamax, _doc(rules.Adamax))
NAdam = make_torch_optimizer(rules.NAdam, _doc(rules.NAdam))
RAdam = make_torch_optimizer(rules.RAdam, _doc(rules.RAdam))
SGD = make_torch_optimizer(rules.SGD, _doc(rules.SGD))
Adagrad = make_torch_optimizer(rules.Adagrad, _doc(rules.Adagrad))
RMSprop = make_torch_optimizer(rules.RMSprop, _doc(rules.RMSprop))
Adadelta = make_torch_optimizer(rules.Adadelta, _doc(rules.Adadelta))

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
