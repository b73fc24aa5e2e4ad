"""The optimizers adamlab has: one entry each, which every face and test iterates.

An entry names the rule and the class each framework has for it, nothing more; what a framework does
differently (torch's positional order, Keras's argument names, optax's options) each face reads from that
framework itself or keeps in its own small table keyed by the entry's name. Adding an optimizer is a rule file
and one line here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab import rules
from adamlab.rules import Rule


@dataclasses.dataclass(frozen=True)
class Entry:
    """One optimizer.

    Attributes:
        name: the registry and CLI name (``"adam"``), also the rule's ``name``.
        rule: the rule type.
        face: the class name of the torch, NumPy and Keras faces (``"NAdam"``).
        torch: torch.optim's class of this optimizer, if torch has one (the torch face takes its positional
            order and signature from it).
        keras: keras.optimizers' class, if Keras has one.
        optax: the optax aliases that run this rule.
    """

    name: str
    rule: type[Rule]
    face: str
    torch: str | None = None
    keras: str | None = None
    optax: tuple[str, ...] = ()


OPTIMIZERS: tuple[Entry, ...] = (
    Entry("adam", rules.Adam, "Adam", torch="Adam", keras="Adam", optax=("adam", "nadam", "amsgrad")),
    Entry("adamw", rules.AdamW, "AdamW", torch="AdamW", keras="AdamW", optax=("adamw", "nadamw")),
    Entry("adamax", rules.Adamax, "Adamax", torch="Adamax", keras="Adamax", optax=("adamax", "adamaxw")),
    Entry("nadam", rules.NAdam, "NAdam", torch="NAdam", keras="Nadam"),
    Entry("radam", rules.RAdam, "RAdam", torch="RAdam", optax=("radam",)),
    Entry("sgd", rules.SGD, "SGD", torch="SGD", keras="SGD", optax=("sgd",)),
    Entry("adagrad", rules.Adagrad, "Adagrad", torch="Adagrad", keras="Adagrad", optax=("adagrad",)),
    Entry("rmsprop", rules.RMSprop, "RMSprop", torch="RMSprop", keras="RMSprop", optax=("rmsprop",)),
    Entry("adadelta", rules.Adadelta, "Adadelta", torch="Adadelta", keras="Adadelta", optax=("adadelta",)),
    Entry("lion", rules.Lion, "Lion", keras="Lion", optax=("lion",)),
    Entry("adafactor", rules.Adafactor, "Adafactor", torch="Adafactor", keras="Adafactor", optax=("adafactor",)),
)

BY_NAME: dict[str, Entry] = {e.name: e for e in OPTIMIZERS}


def entry(name: str) -> Entry:
    """The entry of ``name`` (a registry name, a face class name or a rule type); ValueError if none."""
    for e in OPTIMIZERS:
        if name in (e.name, e.face) or name is e.rule:
            return e
    raise ValueError(f"optimizer must be one of {', '.join(e.name for e in OPTIMIZERS)}; got {name!r}")


def framework_class(e: Entry, framework: str) -> Any:
    """The framework's own class of ``e`` (``torch.optim.Adam`` ...), or None where it has none or is missing."""
    if framework == "torch" and e.torch:
        import torch.optim

        return getattr(torch.optim, e.torch, None)
    if framework == "keras" and e.keras:
        try:
            import keras
        except ImportError:
            return None
        return getattr(keras.optimizers, e.keras, None)
    return None
