"""The classes of the Keras face: one entry per Keras optimizer, each naming its rule and Keras's arguments.

The face has a class per :data:`adamlab.registry.OPTIMIZERS` entry that Keras has: its arguments, in Keras's
positional order (they become the constructor's positional order, the attributes and the config keys), and
Keras's default ``weight_decay`` are read from Keras's own class. What differs is kept here: a face class where
Keras checks an argument itself (:class:`SGDFace`, :class:`AdamWFace`), and the arguments of an optimizer Keras
lacks (RAdam).
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from typing import Any

import keras

from adamlab.keras.names import BASE_OPTIONS
from adamlab.keras.optimizer import RuleOptimizer, keras_attribute
from adamlab.registry import OPTIMIZERS
from adamlab.rules import Rule


class SGDFace(RuleOptimizer):
    """Keras's SGD checks 0 ≤ momentum ≤ 1, and runs ``nesterov=True`` with momentum 0 as plain SGD."""

    @classmethod
    def check_arguments(cls, options: dict[str, Any]) -> None:
        momentum = options.get("momentum", 0.0)
        if (
            not isinstance(momentum, numbers.Real)
            or isinstance(momentum, bool)
            or not 0 <= momentum <= 1  # NaN fails too
        ):
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum!r}")

    def adapt(self, given: dict[str, Any]) -> dict[str, Any]:
        momentum = given.get("momentum", self.rule_type(preset=self.preset).momentum)
        if given.get("nesterov") and momentum == 0:  # the rule, like torch, wants momentum > 0 for Nesterov
            return {**given, "nesterov": False}
        return given

    def _keras_value(self, keras_name: str) -> Any:
        if keras_name == "nesterov":  # as given: True stays True with momentum 0
            return bool(self._given.get("nesterov", self.rule.nesterov))
        return super()._keras_value(keras_name)


class AdamWFace(RuleOptimizer):
    """Keras's AdamW requires a weight decay (``weight_decay=None`` raises)."""

    @classmethod
    def check_arguments(cls, options: dict[str, Any]) -> None:
        if "weight_decay" in options and options["weight_decay"] is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")


@dataclasses.dataclass(frozen=True)
class KerasClass:
    """One class of the Keras face: a registry entry, with what Keras does differently."""

    name: str
    rule: type[Rule]
    #: Keras's hyperparameter arguments, in its positional order (``learning_rate`` first)
    arguments: tuple[str, ...]
    #: Keras's default weight decay (None: off)
    weight_decay: float | None = None
    #: the face class to derive from, for classes whose Keras arguments need checks or a different meaning
    base: type[RuleOptimizer] = RuleOptimizer


def keras_arguments(keras_class: type) -> tuple[str, ...]:
    """A Keras optimizer class's own hyperparameter arguments, in its positional order (its base class's options
    and ``**kwargs`` left out), read from its signature so that they cannot drift from Keras."""
    params = inspect.signature(keras_class.__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in params if p.kind in kinds and p.name != "self" and p.name not in BASE_OPTIONS)


def keras_default(keras_class: type, argument: str) -> Any:
    """The default value Keras's class gives ``argument``."""
    return inspect.signature(keras_class.__init__).parameters[argument].default


#: what differs per registry entry: the face class with Keras's checks; the argument list of an optimizer
#: Keras lacks (RAdam, in Adam's names)
_BASES: dict[str, type[RuleOptimizer]] = {"sgd": SGDFace, "adamw": AdamWFace}
_NOT_IN_KERAS: dict[str, tuple[str, ...]] = {
    "radam": ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"),
}


def _classes() -> tuple[KerasClass, ...]:
    out = []
    for e in OPTIMIZERS:
        like = getattr(keras.optimizers, e.keras, None) if e.keras else None
        if like is not None:
            arguments = keras_arguments(like)
            decay = keras_default(like, "weight_decay") if "weight_decay" in arguments else None
        elif e.name in _NOT_IN_KERAS:
            arguments, decay = _NOT_IN_KERAS[e.name], None
        else:
            continue  # no Keras class and no argument list of ours: not in this face
        out.append(KerasClass(e.keras or e.face, e.rule, arguments, decay, _BASES.get(e.name, RuleOptimizer)))
    return tuple(out)


#: one class per registry entry Keras has (and RAdam, which it lacks)
CLASSES: tuple[KerasClass, ...] = _classes()


def make_keras_optimizer(spec: KerasClass) -> type[RuleOptimizer]:
    """Create the face class for ``spec``: a ``keras.optimizers.Optimizer`` with Keras's arguments and attributes."""
    doc = (
        f'Keras 3 optimizer running :class:`adamlab.rules.{spec.rule.__name__}` (``preset="keras"``), with the '
        f"arguments of ``keras.optimizers.{spec.name}``: {', '.join(spec.arguments)} and {', '.join(BASE_OPTIONS)}."
        f"\n\n{spec.rule.__doc__}\n{RuleOptimizer.__doc__}"
    )
    attrs: dict[str, Any] = {
        "rule_type": spec.rule,
        "arguments": spec.arguments,
        "keras_weight_decay": spec.weight_decay,
        "__doc__": doc,
        "__module__": "adamlab.keras",
        "__qualname__": spec.name,
    }
    for keras_name in spec.arguments[1:]:  # learning_rate is Keras's own property
        attrs[keras_name] = keras_attribute(keras_name)
    cls = type(spec.name, (spec.base,), attrs)
    return keras.saving.register_keras_serializable(package="adamlab")(cls)  # so saved models load again
