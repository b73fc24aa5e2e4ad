"""The Keras face: ``keras.optimizers.Optimizer`` subclasses whose ``update_step`` runs an adamlab rule.

Keras 3 drives everything around the step (``model.compile``/``fit``, ``apply_gradients``, clipping, EMA of
the weights, loss scaling, gradient accumulation, saving); this adapter creates one Keras variable per
state entry of the rule and, for each variable, calls ``rule.step(θ, g, state, t)`` and assigns the results
with ``self.assign`` (so TensorFlow's distribution strategies and JAX's stateless scopes see them).

Weight decay is the rule's (decoupled in the keras preset, applied before the step as Keras applies it),
so the base class's own decay is off while ``weight_decay`` and ``exclude_from_weight_decay`` keep
Keras's meaning. As Keras does, the step count t is passed in the variable's dtype (1 − β^t is computed in
float32 for float32 variables); the rules take that array path. Sparse gradients (JAX's BCOO, TensorFlow's
IndexedSlices) are made dense first: the rule runs on dense arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from adamlab.keras.names import BASE_OPTIONS, KERAS_NAMES, rule_field
from adamlab.keywords import translate
from adamlab.ops.numpy import NUMPY_OPS
from adamlab.rules import Rule
from adamlab.rules.base import with_hyperparameters


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


def _read(variable: Any) -> Any:
    """The current value of a Keras variable, or of the backend variable TensorFlow's update path passes."""
    return variable.value if isinstance(variable, keras.Variable) else ops.convert_to_tensor(variable)


def _dense(gradient: Any) -> Any:
    """The gradient as a dense tensor: JAX's BCOO and TensorFlow's IndexedSlices are scattered into zeros."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            return tf.convert_to_tensor(gradient)
    return ops.convert_to_tensor(gradient, sparse=False)


def _no_grad() -> Any:
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


class RuleOptimizer(keras.optimizers.Optimizer):
    """Base of the Keras face; each subclass names its rule type and Keras's arguments.

    Args:
        learning_rate: a float, a ``keras.optimizers.schedules.LearningRateSchedule`` or a callable
            (default: the preset's lr).
        preset: ``"keras"`` (default) | ``"torch"`` | ``"optax"`` | ``"paper"``; explicit arguments win.
        **options: the Keras class's own arguments (``beta_1``, ``epsilon``, ``rho``, ``momentum`` …), the
            rule's options by torch name (``betas``, ``eps``, ``maximize`` …) and Keras's optimizer
            arguments (``clipnorm``, ``use_ema``, ``gradient_accumulation_steps``, ``name`` …).

    Positional arguments are taken in the order of the Keras class of the same name
    (``Adam(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clipnorm, ...)``).
    The resolved rule is ``optimizer.rule``; Keras's attribute names (``optimizer.beta_1``, ``.epsilon`` …)
    read and set it.
    """

    rule_type: ClassVar[type[Rule]]
    #: Keras's hyperparameter arguments of this class, in its positional order (before the base options)
    arguments: ClassVar[tuple[str, ...]] = ("learning_rate",)
    #: Keras's default of ``weight_decay`` (None: off)
    keras_weight_decay: ClassVar[float | None] = None

    def __new__(cls, *args: Any, **kwargs: Any) -> RuleOptimizer:
        # Keras's torch backend swaps the classes registered as keras.optimizers.Adam ... for its own
        # subclasses in TorchOptimizer.__new__; an adamlab class is always itself.
        return object.__new__(cls)

    def __init__(self, *args: Any, preset: str = "keras", **options: Any) -> None:
        options = self._named(args, options)
        base = {k: options.pop(k) for k in BASE_OPTIONS if k in options}
        learning_rate = options.pop("learning_rate", None)
        schedule = None
        if learning_rate is not None:
            if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
                options["learning_rate"] = float(learning_rate)
            elif callable(learning_rate):  # a LearningRateSchedule or a function of no arguments
                schedule = learning_rate
            else:
                raise ValueError(
                    "learning_rate must be a float, a keras.optimizers.schedules.LearningRateSchedule or a "
                    f"callable; got {learning_rate!r}"
                )
        self.check_arguments(options)
        given = translate(self.rule_type, options, KERAS_NAMES, preset)
        # set before Keras's __init__, which assigns weight_decay (a property reading and setting the rule)
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "_given", given)
        object.__setattr__(self, "rule", self._make_rule(given, options))
        super().__init__(
            learning_rate=schedule if schedule is not None else float(self.rule.lr),
            weight_decay=self._keras_value("weight_decay"),
            **base,
        )

    # --- Keras's arguments → the rule -------------------------------------------------------------------

    def _named(self, args: tuple[Any, ...], options: dict[str, Any]) -> dict[str, Any]:
        positional = (*self.arguments, *BASE_OPTIONS)
        name = type(self).__name__
        if len(args) > len(positional):
            raise TypeError(f"{name}() takes at most {len(positional)} positional arguments; {len(args)} given")
        for key, value in zip(positional, args, strict=False):
            if key in options:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            options[key] = value
        return options

    @classmethod
    def check_arguments(cls, options: dict[str, Any]) -> None:
        """Keras's own checks of this class's arguments, raising what Keras raises (the rule checks ranges too)."""

    def adapt(self, given: dict[str, Any]) -> dict[str, Any]:
        """The rule options for the options as given (torch names): the same unless Keras's meaning differs."""
        return given

    def _make_rule(self, given: dict[str, Any], options: dict[str, Any] | None = None) -> Rule:
        """The rule for the options as given; a bad value's error also shows the arguments as the user wrote them."""
        try:
            return self.rule_type(preset=self.preset, **self.adapt(given))
        except ValueError as error:
            shown = ", ".join(f"{k}={v!r}" for k, v in (options or given).items())
            raise ValueError(f"{type(self).__name__}: {error}" + (f" (given: {shown})" if shown else "")) from None

    def _keras_value(self, keras_name: str) -> Any:
        """The Keras attribute ``keras_name`` read from the rule (``weight_decay`` 0 reads as Keras's None)."""
        field, index = rule_field(self.rule_type, keras_name)
        value = getattr(self.rule, field)
        value = value if index is None else value[index]
        if keras_name == "weight_decay" and value == 0 and self.keras_weight_decay is None:
            return None
        return value

    def _set_keras_value(self, keras_name: str, value: Any) -> None:
        """Set the Keras attribute ``keras_name``: the rule is rebuilt (and checked) with the new value."""
        field, index = rule_field(self.rule_type, keras_name)
        given = dict(self._given)
        if index is not None:  # one beta: the other keeps its current value
            pair = list(getattr(self.rule, field))
            pair[index] = getattr(self.rule_type(preset=self.preset), field)[index] if value is None else value
            given[field] = tuple(pair)
        elif value is None:  # Keras's "off"/"default": the preset's value
            given.pop(field, None)
        else:
            given[field] = value
        rule = self._make_rule(given)
        if rule != self.rule and self.built and set(rule.init(np.zeros(2))) != set(self.rule.init(np.zeros(2))):
            raise ValueError(
                f"setting {keras_name} changes the optimizer's state variables: possible only before the "
                "optimizer is built (create a new optimizer instead)"
            )
        object.__setattr__(self, "_given", given)
        if rule != self.rule:
            object.__setattr__(self, "rule", rule)

    def _apply_weight_decay(self, variables: list[Any]) -> None:
        """Off: the rule applies the decay inside its step (the keras preset at the point where Keras applies it)."""

    # --- variables: one per state entry of the rule, per model variable --------------------------------

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self._entries = []
        for var in variables:
            dtype = keras.backend.standardize_dtype(var.dtype)  # a tf.Variable's dtype is a tf.DType
            dtype = dtype if dtype in ("float16", "float32", "float64") else "float32"
            shape = tuple(var.shape)
            entry = {}
            for declared in self.rule.layout().entries:  # the rule's layout: which entries, their kind and dtype
                key, fill = declared.name, keras.initializers.Constant(declared.fill)
                if declared.kind == "element":
                    entry[key] = self.add_variable_from_reference(var, name=key, initializer=fill)
                    continue
                own = dtype if declared.dtype == "param" else NUMPY_OPS.float_dtype(declared.dtype, np.zeros(()))
                entry[key] = self.add_variable(
                    shape=declared.shape_for(shape), initializer=fill, dtype=keras.backend.standardize_dtype(own),
                    name=key,
                )
            self._entries.append(entry)

    # --- the step ----------------------------------------------------------------------------------------

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        entry = self._entries[self._get_variable_index(variable)]
        rule = self._rule_for(learning_rate, self._use_weight_decay(variable))
        with _no_grad():
            param = _read(variable)
            t = ops.cast(self.iterations + 1, param.dtype)  # Keras counts steps in the variable's dtype
            grad = ops.cast(_dense(gradient), param.dtype)
            state = {k: v.value for k, v in entry.items()}
            new_param, new_state = rule.step(param, grad, state, t)
            for key, value in new_state.items():
                self.assign(entry[key], value)
            self.assign(variable, new_param)

    def _rule_for(self, learning_rate: Any, decay: bool) -> Rule:
        """The rule with this step's learning rate (and λ = 0 for variables excluded from weight decay)."""
        lr = _concrete(learning_rate)
        if lr is None:  # symbolic learning rate: build the rule for this trace only
            return dataclasses.replace(self.rule, lr=learning_rate, **_no_decay(self.rule, decay))
        rule = with_hyperparameters(self.rule, lr=float(lr), **_no_decay(self.rule, decay))  # the shared rule cache
        return rule

    # --- config ------------------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Keras's config of the class of the same name, plus adamlab's options where they are not Keras's.

        ``keras.optimizers.Adam.from_config(adamlab.keras.Adam(...).get_config())`` works whenever the
        optimizer is one Keras has: ``preset`` is written only when it is not ``"keras"``, and a rule option
        Keras has no argument for only when it differs from the preset's default. Keras's ``from_config``
        then rejects it (``Argument(s) not recognized``) instead of silently dropping it.
        """
        config = super().get_config()
        config.update({k: getattr(self, k) for k in self.arguments if k != "learning_rate"})
        covered = {rule_field(self.rule_type, k)[0] for k in self.arguments}
        default = self.rule_type(preset=self.preset)
        extras = {k: v for k, v in self.rule.hyperparameters().items() if k not in covered and v != getattr(default, k)}
        if self.preset != "keras":
            config["preset"] = self.preset
        config.update(extras)
        return config


def _no_decay(rule: Rule, decay: bool) -> dict[str, Any]:
    return {} if decay or not hasattr(rule, "weight_decay") else {"weight_decay": 0.0}


def keras_attribute(keras_name: str) -> property:
    """The Keras attribute ``keras_name`` of a face class (``optimizer.beta_1``), reading and setting its rule."""
    return property(
        lambda self: self._keras_value(keras_name),
        lambda self, value: self._set_keras_value(keras_name, value),
        doc=f"Keras's ``{keras_name}``, read from and written to ``self.rule``.",
    )
