"""Keyword names of other frameworks (optax's ``b1``, Keras's ``beta_1`` …) mapped onto the rules' torch names.

The rules take torch.optim's keyword names. The optax and Keras faces also accept their framework's names,
so code written for ``optax.adam(1e-3, b1=0.9)`` or ``keras.optimizers.Adam(beta_1=0.9)`` runs unchanged.
"""

from __future__ import annotations

from typing import Any

from adamlab.rules import Rule

#: framework keyword → rule keyword; ``("betas", i)`` sets one entry of the pair
OPTAX_NAMES: dict[str, Any] = {"learning_rate": "lr", "b1": ("betas", 0), "b2": ("betas", 1)}
KERAS_NAMES: dict[str, Any] = {
    "learning_rate": "lr",
    "beta_1": ("betas", 0),
    "beta_2": ("betas", 1),
    "epsilon": "eps",
}
#: per rule, names that mean a differently named option there (RMSprop's smoothing constant is torch's alpha;
#: Keras's Adafactor spells torch's beta2_decay, eps = (eps1, eps2) and d its own way)
RULE_NAMES: dict[str, dict[str, Any]] = {
    "rmsprop": {"decay": "alpha", "rho": "alpha"},
    "adafactor": {
        "beta_2_decay": "beta2_decay",
        "epsilon_1": ("eps", 0),
        "epsilon_2": ("eps", 1),
        "clip_threshold": "d",
    },
}
#: options of the framework that change nothing here when left at their default (they are dropped)
IGNORED_IF_NONE: tuple[str, ...] = ("mu_dtype", "accumulator_dtype")


def translate(rule_type: type[Rule], options: dict[str, Any], names: dict[str, Any], preset: str) -> dict[str, Any]:
    """Rewrite ``options`` into ``rule_type``'s torch keyword names; both spellings of one option raise."""
    out: dict[str, Any] = {}
    source: dict[str, str] = {}
    pairs: dict[str, dict[int, Any]] = {}  # one entry of a pair option (betas, Adafactor's eps) at a time
    per_rule = RULE_NAMES.get(rule_type.name, {})
    for key, value in options.items():
        if key in IGNORED_IF_NONE:
            if value is not None:
                raise ValueError(f"{key} is not supported by adamlab; leave it unset")
            continue
        if value is None:  # the framework's "default": the preset decides
            continue
        target = per_rule.get(key, names.get(key, key))
        if isinstance(target, tuple):
            pairs.setdefault(target[0], {})[target[1]] = value
            continue
        if target in out:
            raise ValueError(f"{source[target]!r} and {key!r} name the same option; pass only one")
        out[target], source[target] = value, key
    for field, given in pairs.items():
        if field in out:
            raise ValueError(f"pass either {field} or its individual values, not both")
        default = getattr(rule_type(preset=preset), field)
        out[field] = (given.get(0, default[0]), given.get(1, default[1]))
    for field in ("betas", "eps"):
        if isinstance(out.get(field), list):  # e.g. from a JSON config
            out[field] = tuple(out[field])
    known = set(rule_type.hyperparameter_names())
    for key in out:
        if key not in known:
            raise ValueError(f"{rule_type.__name__} has no option {key!r}; its options are: {', '.join(sorted(known))}")
    return out
