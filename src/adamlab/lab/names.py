"""One display name per optimizer, used by every legend, title and table of the lab.

The names are the paper's (§6): Adam, AdaMax, AdaGrad, RMSProp, AdaDelta, SGD-Nesterov; a rule gets the
name of what it computes, so ``make_rule("nesterov")`` and ``SGD(momentum=0.9, nesterov=True)`` are both
"SGD-Nesterov" whether they come from ``minimize``, ``compare`` or ``paper``.
"""

from __future__ import annotations

from adamlab.rules import Averaged, Rule

__all__ = ["DISPLAY", "rule_label"]

DISPLAY = {"adam": "Adam", "adamw": "AdamW", "adamax": "AdaMax", "nadam": "NAdam", "radam": "RAdam", "sgd": "SGD",
           "momentum": "SGD-momentum", "nesterov": "SGD-Nesterov", "adagrad": "AdaGrad", "rmsprop": "RMSProp",
           "adadelta": "AdaDelta"}  # fmt: skip


def rule_label(rule: Rule | Averaged) -> str:
    """The display name of what ``rule`` computes (SGD with Nesterov momentum is "SGD-Nesterov")."""
    inner = rule.base
    name = inner.name
    if name == "sgd" and (getattr(inner, "momentum", 0) or 0) > 0:
        name = "nesterov" if getattr(inner, "nesterov", False) else "momentum"
    label = DISPLAY.get(name, type(inner).__name__)
    return f"{label} ({rule.mode} average)" if isinstance(rule, Averaged) else label
