"""``export_state``/``import_state`` of the optax face, over :mod:`adamlab.checkpoint`'s face-neutral format."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from adamlab import checkpoint as _checkpoint
from adamlab.optax.transform import RuleState


def _rule_state(opt_state: Any) -> tuple[RuleState, list[Any], Any]:
    leaves, treedef = jax.tree.flatten(opt_state, is_leaf=lambda x: isinstance(x, RuleState))
    found = [i for i, leaf in enumerate(leaves) if isinstance(leaf, RuleState)]
    if len(found) != 1:
        raise ValueError(f"opt_state must hold exactly one adamlab optax-face state; it holds {len(found)}")
    return leaves[found[0]], leaves, (treedef, found[0])


def export_state(opt_state: Any) -> dict[str, Any]:
    """The face-neutral checkpoint (:mod:`adamlab.checkpoint`) of an optax-face state (also inside a chain)."""
    state, _, _ = _rule_state(opt_state)
    states = [{k: np.asarray(v) for k, v in s.items()} for s in state.states]
    return _checkpoint.make_checkpoint(state.rule, int(state.count), states, state.shapes, state.names)


def import_state(opt_state: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> Any:
    """Return ``opt_state`` (from ``opt.init(params)``) with the checkpoint's step and state loaded.

    Raises ``ValueError`` naming the mismatch for another optimizer's state, missing or unexpected entries,
    wrong shapes or parameter count, and (``strict``) differing hyperparameters other than lr.
    """
    state, leaves, (treedef, index) = _rule_state(opt_state)
    step, states = _checkpoint.read_checkpoint(checkpoint, state.rule, state.shapes, state.names, strict=strict)
    new_states = [
        {k: jnp.asarray(v, dtype=current[k].dtype) for k, v in loaded.items()}
        for loaded, current in zip(states, state.states, strict=True)
    ]
    leaves[index] = state.replace(count=jnp.asarray(min(step, 2**31 - 1), jnp.int32), states=new_states)
    return jax.tree.unflatten(treedef, leaves)


def _holds_rule_state(obj: Any) -> bool:
    if isinstance(obj, RuleState):
        return True
    if isinstance(obj, (tuple, list, dict)):
        leaves = jax.tree.leaves(obj, is_leaf=lambda x: isinstance(x, RuleState))
        return any(isinstance(leaf, RuleState) for leaf in leaves)
    return False


_checkpoint.register_face("optax", _holds_rule_state, export_state, import_state)
