"""The optax face: adamlab's rules as ``optax.GradientTransformation`` objects (``preset="optax"`` by default).

    >>> import jax.numpy as jnp, optax, adamlab.optax
    >>> opt = adamlab.optax.adam(1e-3)                    # same signature and results as optax.adam
    >>> params = {"w": jnp.ones(3)}
    >>> state = opt.init(params)
    >>> updates, state = opt.update({"w": jnp.full(3, 0.5)}, state, params)
    >>> params = optax.apply_updates(params, updates)

Each alias takes optax's learning rate (a float or an optax schedule) first, then the rule's options under
torch.optim's names (``betas``, ``eps``, ``weight_decay`` …) or optax's (``b1``, ``b2``, ``decay`` …).
``preset="torch"`` (or ``"keras"``, ``"paper"``) gives that framework's conventions inside optax. The
transformations are pure: they work under ``jax.jit``, inside ``optax.chain`` and on any pytree.
Requires the ``jax`` extra: ``pip install "adamlab[jax]"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    import jax  # noqa: F401  (imported to fail early with a clear message)
    import optax as _optax  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "adamlab.optax needs JAX and optax, which are not installed: pip install 'adamlab[jax]'"
    ) from error

from adamlab.keywords import OPTAX_NAMES, translate
from adamlab.optax.checkpoint import export_state, import_state
from adamlab.optax.transform import RuleState, rule_transformation
from adamlab.rules import RULES, Rule


def transform(rule: Rule, learning_rate: float | Callable | None = None, *, mask: Any = None) -> Any:
    """Any rule object as an optax transformation (its ``lr`` unless ``learning_rate`` is given)."""
    return rule_transformation(rule, learning_rate, mask=mask)


def _alias(name: str, rule_name: str, fixed: dict[str, Any], default: dict[str, Any], like: str) -> Callable:
    rule_type = RULES[rule_name]

    def make(
        learning_rate: float | Callable | None = None, *, preset: str = "optax", mask: Any = None, **options: Any
    ) -> Any:
        schedule = learning_rate if callable(learning_rate) else None
        if learning_rate is not None and schedule is None:
            if options.get("lr") is not None:
                raise ValueError("pass the learning rate once: as learning_rate or as lr")
            options["lr"] = learning_rate
        chosen = translate(rule_type, options, OPTAX_NAMES, preset)
        for key, value in fixed.items():
            if key in chosen and chosen[key] != value:
                raise ValueError(f"{name}() always has {key}={value!r}; got {key}={chosen[key]!r}")
        given = {**default, **chosen, **fixed}
        return rule_transformation(rule_type(preset=preset, **given), schedule, mask=mask)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = (
        f'{like}, computed by :class:`adamlab.rules.{rule_type.__name__}` (preset ``"optax"`` unless given).\n\n'
        "Args: ``learning_rate`` (float or optax schedule), ``preset``, ``mask`` (weight-decay mask), and the\n"
        f"rule's options by torch or optax name.\n\n{rule_type.__doc__}"
    )
    return make


adam = _alias("adam", "adam", {}, {}, "optax.adam (``nesterov=True``: optax.nadam)")
adamw = _alias("adamw", "adamw", {}, {}, "optax.adamw")
adamax = _alias("adamax", "adamax", {}, {}, "optax.adamax")
adamaxw = _alias("adamaxw", "adamax", {}, {"weight_decay": 1e-4}, "optax.adamaxw")
amsgrad = _alias("amsgrad", "adam", {"amsgrad": True}, {}, "optax.amsgrad (max of the bias-corrected v̂)")
nadam = _alias("nadam", "nadam", {}, {}, "optax.nadam (Nesterov form, no μ schedule, in the optax preset)")
nadamw = _alias("nadamw", "nadam", {}, {"weight_decay": 1e-4}, "optax.nadamw")
radam = _alias("radam", "radam", {}, {}, "optax.radam (ε after correction; rectified when ρ_t ≥ 5)")
sgd = _alias("sgd", "sgd", {}, {}, "optax.sgd")
adagrad = _alias("adagrad", "adagrad", {}, {}, "optax.adagrad (accumulator from 0.1, ε inside the root)")
rmsprop = _alias("rmsprop", "rmsprop", {}, {}, "optax.rmsprop (ε inside the root; momentum on lr-scaled steps)")
adadelta = _alias("adadelta", "adadelta", {}, {}, "optax.adadelta")

#: the alias functions by name
OPTIMIZERS: dict[str, Callable] = {
    f.__name__: f
    for f in (adam, adamw, adamax, adamaxw, amsgrad, nadam, nadamw, radam, sgd, adagrad, rmsprop, adadelta)
}


__all__ = [
    "OPTIMIZERS",
    "RuleState",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "export_state",
    "import_state",
    "nadam",
    "nadamw",
    "radam",
    "rmsprop",
    "sgd",
    "transform",
]
