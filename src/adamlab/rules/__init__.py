"""Update rules: the math of each optimizer, once, as pure functions over arrays."""

from __future__ import annotations

from typing import Any

from adamlab.rules.adadelta import Adadelta
from adamlab.rules.adafactor import Adafactor
from adamlab.rules.adagrad import Adagrad
from adamlab.rules.adam import Adam, AdamW
from adamlab.rules.adamax import Adamax
from adamlab.rules.averaging import AVERAGING_MODES, Averaged
from adamlab.rules.base import PRESETS, Rule, State, StateEntry, StateLayout
from adamlab.rules.lion import Lion
from adamlab.rules.nadam import NAdam
from adamlab.rules.radam import RAdam
from adamlab.rules.rmsprop import RMSprop
from adamlab.rules.sgd import SGD

#: rule classes by name
RULES: dict[str, type[Rule]] = {
    cls.name: cls for cls in (Adam, AdamW, Adamax, NAdam, RAdam, SGD, Adagrad, RMSprop, Adadelta, Lion, Adafactor)
}

#: names that are a rule with fixed options (the paper's "SGD with momentum" and "Nesterov" baselines)
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "momentum": ("sgd", {"momentum": 0.9}),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
}

OPTIMIZER_NAMES: tuple[str, ...] = (*RULES, *ALIASES)


def make_rule(name: str, **hyperparameters: Any) -> Rule:
    """Build a rule by name (``"adam"``, ``"momentum"``, ...); explicit hyperparameters override alias options.

    ``None`` values are dropped, so callers can pass optional CLI arguments straight through.
    """
    key = name.lower()
    if key in ALIASES:
        key, fixed = ALIASES[key]
        hyperparameters = {**fixed, **{k: v for k, v in hyperparameters.items() if v is not None}}
    if key not in RULES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}; got {name!r}")
    rule_type = RULES[key]
    given = {k: v for k, v in hyperparameters.items() if v is not None}
    known = (*rule_type.hyperparameter_names(), "preset")
    for k in given:
        if k not in known:
            raise ValueError(f"{name} has no option {k!r}; its options are: {', '.join(known)}")
    return rule_type(**given)


__all__ = [
    "ALIASES",
    "AVERAGING_MODES",
    "OPTIMIZER_NAMES",
    "PRESETS",
    "RULES",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Averaged",
    "Lion",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rule",
    "SGD",
    "State",
    "StateEntry",
    "StateLayout",
    "make_rule",
]
