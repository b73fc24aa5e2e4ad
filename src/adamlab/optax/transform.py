"""The optax face: any rule as an ``optax.GradientTransformation`` (pure ``init``/``update``, ``jax.jit``-able).

    init(params)                  -> RuleState(count=0, states=[rule.init(leaf) for each leaf])
    update(grads, state, params)  -> (updates, state'),   updates = rule.step(θ, g, s, t).θ − θ

The math is the rule's; this adapter only walks the pytree, counts steps (int32, saturating, as optax) and
reads an optax schedule for the learning rate. Under ``jit`` the step t is a traced int32, which the rules
handle (bias corrections are computed at the array's precision, as optax does). ``apply_updates(θ, u)`` then
gives back the rule's θ' exactly whenever θ'/θ lies in [½, 2] (Sterbenz), i.e. for every ordinary step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from adamlab.rules import Rule

Schedule = Callable[[jax.Array], jax.Array]


@jax.tree_util.register_pytree_node_class
class RuleState:
    """Optimizer state of the optax face: ``count`` (int32 steps taken) and one state dict per parameter leaf.

    ``rule``, ``names`` (``jax.tree_util.keystr`` of each leaf) and ``shapes`` are static metadata, used to
    export and validate checkpoints (:func:`adamlab.optax.export_state`).
    """

    def __init__(
        self, count: Any, states: list[dict[str, Any]], rule: Rule, names: tuple[str, ...], shapes: tuple
    ) -> None:
        self.count, self.states, self.rule, self.names, self.shapes = count, states, rule, names, shapes

    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return (self.count, self.states), (self.rule, self.names, self.shapes)

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: tuple[Any, ...]) -> RuleState:
        return cls(children[0], children[1], *aux)

    def replace(self, **changes: Any) -> RuleState:
        """A copy with some of ``count``/``states`` replaced."""
        fields = {"count": self.count, "states": self.states, **changes}
        return RuleState(fields["count"], fields["states"], self.rule, self.names, self.shapes)

    def __repr__(self) -> str:
        return f"RuleState(rule={self.rule.name!r}, count={self.count!r}, leaves={len(self.states)})"


def rule_transformation(
    rule: Rule,
    learning_rate: float | Schedule | None = None,
    *,
    mask: Any = None,
) -> optax.GradientTransformation:
    """Wrap ``rule`` as an optax transformation whose updates already include the −lr scale.

    Args:
        rule: an adamlab rule (its ``lr`` is used unless ``learning_rate`` is given).
        learning_rate: a float, or an optax schedule ``count -> lr`` (called with the steps taken so far,
            as ``optax.scale_by_schedule`` does).
        mask: which leaves get weight decay (optax's ``mask`` of ``adamw``): a pytree of bools with the
            structure of the params, or a callable ``params -> pytree``. Unmasked leaves use λ = 0.
    """
    schedule = learning_rate if callable(learning_rate) else None
    if learning_rate is not None and schedule is None:
        rule = dataclasses.replace(rule, lr=learning_rate)
    no_decay = dataclasses.replace(rule, weight_decay=0.0) if hasattr(rule, "weight_decay") else rule

    def init_fn(params: Any) -> RuleState:
        with_path, _ = jax.tree_util.tree_flatten_with_path(params)
        leaves = [jnp.asarray(leaf) for _, leaf in with_path]
        if any(jnp.iscomplexobj(leaf) for leaf in leaves):
            raise ValueError("the optax face does not support complex parameters")
        names = tuple(jax.tree_util.keystr(path) for path, _ in with_path)
        shapes = tuple(tuple(leaf.shape) for leaf in leaves)
        return RuleState(jnp.zeros([], jnp.int32), [rule.init(leaf) for leaf in leaves], rule, names, shapes)

    def update_fn(updates: Any, state: RuleState, params: Any = None) -> tuple[Any, RuleState]:
        grads, treedef = jax.tree.flatten(updates)
        if len(grads) != len(state.states):
            raise ValueError(f"updates have {len(grads)} leaves; the optimizer state was built for {len(state.states)}")
        if params is None:
            leaves: list[Any] = [None] * len(grads)
        else:
            leaves = treedef.flatten_up_to(params)
        decays = _mask_leaves(mask, params, treedef, len(grads))
        t = optax.safe_increment(state.count)
        step_rule, plain_rule = rule, no_decay
        if schedule is not None:
            lr = schedule(state.count)
            step_rule, plain_rule = dataclasses.replace(rule, lr=lr), dataclasses.replace(no_decay, lr=lr)
        new_updates, new_states = [], []
        for i, (g, p, s, decay) in enumerate(zip(grads, leaves, state.states, decays, strict=True)):
            leaf_rule = step_rule if decay else plain_rule
            if p is None:
                if getattr(leaf_rule, "weight_decay", 0) != 0:
                    raise ValueError(f"leaf {state.names[i]} has weight decay: pass params to update()")
                p = jnp.zeros_like(g)  # the rule's step from 0 is exactly −(its update)
            new_p, new_s = leaf_rule.step(p, g, s, t)
            new_updates.append((new_p - p).astype(p.dtype))
            new_states.append(new_s)
        return treedef.unflatten(new_updates), state.replace(count=t, states=new_states)

    return optax.GradientTransformation(init_fn, update_fn)


def _mask_leaves(mask: Any, params: Any, treedef: Any, n: int) -> list[bool]:
    """Per-leaf weight-decay switches from optax's ``mask`` (all True without one)."""
    if mask is None:
        return [True] * n
    if callable(mask):
        if params is None:
            raise ValueError("a callable weight-decay mask needs params: pass params to update()")
        mask = mask(params)
    flags = treedef.flatten_up_to(mask)
    if not all(isinstance(flag, bool) for flag in flags):
        raise ValueError("mask must be a pytree of Python bools with the structure of the params")
    return flags
