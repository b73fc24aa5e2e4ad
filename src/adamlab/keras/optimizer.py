"""The Keras face: ``keras.optimizers.Optimizer`` subclasses whose ``update_step`` runs an adamlab rule.

Keras 3 drives everything around the step (``model.compile``/``fit``, ``apply_gradients``, clipping, EMA of
the weights, loss scaling, gradient accumulation, saving); this adapter only creates one Keras variable per
state entry of the rule and, for each variable, calls ``rule.step(θ, g, state, t)`` and assigns the results.
Weight decay is the rule's (decoupled in the keras preset), so Keras's ``exclude_from_weight_decay`` is
honoured but the base class's own decay is off. As Keras does, the step count t is passed in the
variable's dtype (so 1 − β^t is computed in float32 for float32 variables, exactly as Keras computes it);
the rules take that array path. Tested on the torch backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import numbers
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from adamlab.keywords import KERAS_NAMES, translate
from adamlab.rules import Rule

_KERAS_BASE_OPTIONS = (
    "name",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)


def _concrete(value: Any) -> Any:
    """The value as NumPy, or None when it is symbolic (traced by ``jax.jit`` or ``tf.function``)."""
    if isinstance(value, keras.Variable):
        value = value.value
    if hasattr(value, "detach"):  # torch: directly (np.array on a tensor warns under NumPy 2)
        return value.detach().cpu().numpy()
    try:
        return ops.convert_to_numpy(value)
    except Exception:  # tracer conversion errors differ by backend; a traced value stays symbolic
        return None


def _no_grad() -> Any:
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


class RuleOptimizer(keras.optimizers.Optimizer):
    """Base of the Keras face; subclasses only name their rule type.

    Args:
        learning_rate: a float, a ``keras.optimizers.schedules.LearningRateSchedule`` or a callable
            (default: the preset's lr).
        preset: ``"keras"`` (default) | ``"torch"`` | ``"optax"`` | ``"paper"``; explicit arguments win.
        **options: the rule's options by torch name (``betas``, ``eps``, ``weight_decay`` …) or Keras name
            (``beta_1``, ``beta_2``, ``epsilon``, ``rho``), and Keras's own optimizer arguments
            (``clipnorm``, ``use_ema``, ``gradient_accumulation_steps``, ``name`` …).

    Positional arguments are taken in the order of the Keras class of the same name
    (``Adam(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, ...)``).
    The resolved rule is ``optimizer.rule``.
    """

    rule_type: ClassVar[type[Rule]]
    #: the positional parameters of the Keras optimizer of the same name, in its order
    positional: ClassVar[tuple[str, ...]] = ("learning_rate",)

    def __init__(self, *args: Any, preset: str = "keras", **options: Any) -> None:
        name = type(self).__name__
        if len(args) > len(self.positional):
            raise TypeError(f"{name}() takes at most {len(self.positional)} positional arguments; {len(args)} given")
        for key, value in zip(self.positional, args, strict=False):
            if key in options:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            options[key] = value
        learning_rate = options.pop("learning_rate", None)
        base = {k: options.pop(k) for k in _KERAS_BASE_OPTIONS if k in options}
        schedule = None if learning_rate is None or isinstance(learning_rate, numbers.Real) else learning_rate
        if learning_rate is not None and schedule is None:
            options["learning_rate"] = float(learning_rate)
        rule = self.rule_type(preset=preset, **translate(self.rule_type, options, KERAS_NAMES, preset))
        super().__init__(learning_rate=schedule if schedule is not None else float(rule.lr), **base)
        self.rule = rule
        self.preset = preset
        self._rules: dict[tuple[Any, bool], Rule] = {}

    # --- variables: one per state entry of the rule, per model variable --------------------------------

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self._entries = []
        for var in variables:
            dtype = var.dtype if var.dtype in ("float16", "float32", "float64") else "float32"
            proto = self.rule.init(np.zeros(tuple(var.shape), dtype=dtype))
            entry = {}
            for key, value in proto.items():
                fill = keras.initializers.Constant(float(value.flat[0]) if value.size else 0.0)
                if np.ndim(value) == 0 and len(var.shape) > 0:
                    entry[key] = self.add_variable(shape=(), initializer=fill, dtype=var.dtype, name=key)
                else:
                    entry[key] = self.add_variable_from_reference(var, name=key, initializer=fill)
            self._entries.append(entry)

    # --- the step ----------------------------------------------------------------------------------------

    def _backend_update_step(self, grads: list[Any], trainable_variables: list[Any], learning_rate: Any) -> None:
        with _no_grad():
            for grad, var in zip(grads, trainable_variables, strict=True):
                self.update_step(grad, var, learning_rate)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        entry = self._entries[self._get_variable_index(variable)]
        rule = self._rule_for(learning_rate, self._use_weight_decay(variable))
        t = ops.cast(self.iterations + 1, variable.dtype)  # Keras counts steps in the variable's dtype
        grad = ops.cast(gradient, variable.dtype)
        state = {k: v.value for k, v in entry.items()}
        new_param, new_state = rule.step(variable.value, grad, state, t)
        for key, value in new_state.items():
            self.assign(entry[key], value)
        self.assign(variable, new_param)

    def _rule_for(self, learning_rate: Any, decay: bool) -> Rule:
        """The rule with this step's learning rate (and λ = 0 for variables excluded from weight decay)."""
        lr = _concrete(learning_rate)
        if lr is None:  # symbolic learning rate: build the rule for this trace only
            return dataclasses.replace(self.rule, lr=learning_rate, **_no_decay(self.rule, decay))
        key = (float(lr), decay)
        rule = self._rules.get(key)
        if rule is None:
            if len(self._rules) >= 256:  # a schedule gives a new lr every step: keep the cache small
                self._rules.clear()
            rule = self._rules[key] = dataclasses.replace(self.rule, lr=float(lr), **_no_decay(self.rule, decay))
        return rule

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("weight_decay", None)
        hyper = self.rule.hyperparameters()
        hyper.pop("lr")
        config.update({"preset": self.preset, **hyper})
        return config


def _no_decay(rule: Rule, decay: bool) -> dict[str, Any]:
    return {} if decay or not hasattr(rule, "weight_decay") else {"weight_decay": 0.0}


def make_keras_optimizer(rule_type: type[Rule], name: str) -> type[RuleOptimizer]:
    """Create the Keras face class ``name`` for ``rule_type``."""
    doc = (
        f'Keras 3 optimizer running :class:`adamlab.rules.{rule_type.__name__}` (``preset="keras"``).\n\n'
        f"{rule_type.__doc__}\n{RuleOptimizer.__doc__}"
    )
    attrs: dict[str, Any] = {"rule_type": rule_type, "__doc__": doc}
    like = getattr(keras.optimizers, name, None)
    if like is not None:
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        attrs["positional"] = tuple(
            p.name for p in inspect.signature(like.__init__).parameters.values() if p.kind in kinds and p.name != "self"
        )
    cls = type(name, (RuleOptimizer,), attrs)
    cls.__module__ = "adamlab.keras"
    return keras.saving.register_keras_serializable(package="adamlab")(cls)  # so saved models load again
