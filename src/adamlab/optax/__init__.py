"""The optax face: optax's optimizer aliases computed by adamlab's rules, with optax's own state.

    >>> import jax.numpy as jnp, optax, adamlab.optax
    >>> opt = adamlab.optax.adam(1e-3)                    # optax.adam's signature, results and state
    >>> params = {"w": jnp.ones(3)}
    >>> state = opt.init(params)                          # (ScaleByAdamState(count, mu, nu), EmptyState())
    >>> updates, state = opt.update({"w": jnp.full(3, 0.5)}, state, params)
    >>> params = optax.apply_updates(params, updates)

Each alias has optax's signature (positional order, every option and its default, read from the installed
optax) plus a keyword-only ``preset`` (``"optax"``; ``"torch"``, ``"keras"`` or ``"paper"`` give that
framework's conventions inside optax). Its state is optax's NamedTuples with optax's field names, laid out
as optax's ``chain``, so ``optax.inject_hyperparams``, ``optax.tree.get``/``set``, ``optax.tree.map_params``,
``optax.masked``, ``MultiSteps``, flax serialization and orbax checkpoints work as with optax's own;
``update`` accepts optax's extra arguments and ``init`` abstract shapes (``jax.ShapeDtypeStruct``).
:func:`transform` wraps any rule object (its state: :class:`RuleState`, the rule's own entry names).
docs/optax-face.md lists the options accepted only at optax's default and the known differences.
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

from adamlab.optax.aliases import ALIASES, make_alias
from adamlab.optax.checkpoint import export_state, import_state
from adamlab.optax.transform import RuleState, RuleTransformation, rule_transformation
from adamlab.rules import Rule


def transform(rule: Rule, learning_rate: float | Callable | None = None, *, mask: Any = None) -> RuleTransformation:
    """Any rule object as an optax transformation (its ``lr`` unless ``learning_rate`` is given).

    Its state is :class:`RuleState` (``count`` and the rule's entries by their own names); ``mask``
    selects the leaves that get weight decay, as optax's ``mask``.
    """
    return rule_transformation(rule, learning_rate, mask=mask)


#: the alias functions by name
OPTIMIZERS: dict[str, Callable[..., RuleTransformation]] = {alias.name: make_alias(alias) for alias in ALIASES}

adam = OPTIMIZERS["adam"]
nadam = OPTIMIZERS["nadam"]
adamw = OPTIMIZERS["adamw"]
nadamw = OPTIMIZERS["nadamw"]
adamax = OPTIMIZERS["adamax"]
adamaxw = OPTIMIZERS["adamaxw"]
amsgrad = OPTIMIZERS["amsgrad"]
radam = OPTIMIZERS["radam"]
sgd = OPTIMIZERS["sgd"]
adagrad = OPTIMIZERS["adagrad"]
rmsprop = OPTIMIZERS["rmsprop"]
adadelta = OPTIMIZERS["adadelta"]
lion = OPTIMIZERS["lion"]
adafactor = OPTIMIZERS["adafactor"]

__all__ = [
    "OPTIMIZERS",
    "RuleState",
    "RuleTransformation",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "export_state",
    "import_state",
    "lion",
    "nadam",
    "nadamw",
    "radam",
    "rmsprop",
    "sgd",
    "transform",
]
