"""Keras's argument names (``beta_1``, ``epsilon``, ``rho`` …) and the rule options they set.

The rules take torch.optim's names; :func:`adamlab.keywords.translate` rewrites Keras's spelling into them
for the constructors, and :func:`rule_field` tells the Keras attributes (``optimizer.beta_1``) which rule
option they read and write.
"""

from __future__ import annotations

from typing import Any

from adamlab.keywords import RULE_NAMES
from adamlab.rules import Rule

#: Keras keyword → rule keyword; ``("betas", i)`` is one entry of the pair
KERAS_NAMES: dict[str, Any] = {
    "learning_rate": "lr",
    "beta_1": ("betas", 0),
    "beta_2": ("betas", 1),
    "epsilon": "eps",
}

#: the arguments of Keras's ``Optimizer`` base class, in its positional order: they go to Keras, not to the rule
BASE_OPTIONS: tuple[str, ...] = (
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "name",
)


def rule_field(rule_type: type[Rule], keras_name: str) -> tuple[str, int | None]:
    """The rule option a Keras argument sets, and the index into it for one beta of ``betas``.

    >>> from adamlab import rules
    >>> rule_field(rules.Adam, "beta_2"), rule_field(rules.RMSprop, "rho"), rule_field(rules.SGD, "momentum")
    (('betas', 1), ('alpha', None), ('momentum', None))
    """
    target = RULE_NAMES.get(rule_type.name, {}).get(keras_name, KERAS_NAMES.get(keras_name, keras_name))
    return target if isinstance(target, tuple) else (target, None)
