"""``export_state``/``import_state`` of the optax face, over :mod:`adamlab.checkpoint`'s face-neutral format.

An optax state is optax's NamedTuples and holds no rule, so both take the transformation with its state:
``export_state(opt, opt_state)``. Inside a chain, pass the sub-state that ``opt`` made.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from adamlab import checkpoint as _checkpoint
from adamlab.optax.transform import Moments, RuleTransformation, Scaling

INT32_MAX = 2**31 - 1


def _entries(opt: RuleTransformation, opt_state: Any, params: Any) -> tuple[list[Any], Any, dict[str, list], Any]:
    """(stages, count, per-entry leaf lists, (treedef, names, shapes)) of ``opt_state``."""
    if not isinstance(opt, RuleTransformation):
        raise ValueError(f"opt must be a transformation of adamlab.optax; got {type(opt).__name__}")
    layout = opt.layout
    stages = [opt_state] if layout.single else list(opt_state) if isinstance(opt_state, tuple) else None
    if stages is None or len(stages) != len(layout.stages):
        raise ValueError("opt_state is not the state this transformation made (opt.init(params) or its updates)")
    count, trees = None, {}
    for i, stage in layout.moments():
        stage_count, stage_trees = stage.unpack(stages[i])
        count = stage_count if stage.counted else count
        trees.update(stage_trees)
    shaped = [name for name in opt.rule.base.layout().of_kind("element") if name in trees]
    reference = params if params is not None else trees[shaped[0]] if shaped else None
    if reference is None:
        raise ValueError(f"this {opt.rule.name} keeps no per-parameter state: pass params to name the parameters")
    with_path, treedef = jax.tree_util.tree_flatten_with_path(reference)
    names = [jax.tree_util.keystr(path) for path, _ in with_path]
    shapes = [tuple(np.shape(leaf)) for _, leaf in with_path]
    leaves = {name: treedef.flatten_up_to(tree) for name, tree in trees.items()}
    return stages, count, leaves, (treedef, names, shapes)


def export_state(opt: RuleTransformation, opt_state: Any, *, params: Any = None, step: int | None = None) -> dict:
    """The face-neutral checkpoint (:mod:`adamlab.checkpoint`) of ``opt``'s state ``opt_state``.

    ``step`` is needed where optax's state keeps no count (sgd, adagrad, rmsprop, adadelta) and refused
    elsewhere; ``params`` only where the state has no per-parameter entry (sgd without momentum).
    """
    _, count, leaves, (_, names, shapes) = _entries(opt, opt_state, params)
    if count is None and step is None:
        raise ValueError(f"optax's {opt.rule.name} state keeps no step count: pass step=")
    if count is not None and step is not None:
        raise ValueError("step is read from the state's count; pass step= only for states without one")
    steps = int(count) if count is not None else step
    states = [{name: np.asarray(values[i]) for name, values in leaves.items()} for i in range(len(names))]
    return _checkpoint.make_checkpoint(opt.rule, steps, states, shapes, names)


def import_state(opt: RuleTransformation, opt_state: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> Any:
    """Return ``opt_state`` (from ``opt.init(params)``) with the checkpoint's step and state loaded.

    Raises ``ValueError`` naming the mismatch for another optimizer's state, missing or unexpected entries,
    wrong shapes or parameter count, complex values for real parameters, (``strict``) differing
    hyperparameters other than lr, and a step beyond optax's int32 count (2^31 − 1), which it never clamps.
    States without a count (sgd, adagrad, rmsprop, adadelta) do not keep the step: those rules do not use it.
    """
    stages, _, current, (treedef, names, shapes) = _entries(opt, opt_state, None)
    step, states = _checkpoint.read_checkpoint(checkpoint, opt.rule, shapes, names, strict=strict)
    if step > INT32_MAX:
        raise ValueError(f"checkpoint step {step} exceeds optax's int32 step count (at most {INT32_MAX})")
    trees = {}
    for name, old in current.items():
        new = []
        for i, (loaded, like) in enumerate(zip([s[name] for s in states], old, strict=True)):
            if np.iscomplexobj(loaded) and not jnp.iscomplexobj(like):
                raise ValueError(f"checkpoint state {name!r} of parameter {i} {names[i]} is complex; the state is real")
            new.append(jnp.asarray(loaded, dtype=like.dtype))
        trees[name] = treedef.unflatten(new)
    count = jnp.asarray(step, jnp.int32)
    for i, stage in enumerate(opt.layout.stages):
        if isinstance(stage, Moments):
            held = trees if stage.state_type is None else {e: trees[e] for e in stage.fields.values()}
            stages[i] = stage.pack(count if stage.counted else None, held)
        elif isinstance(stage, Scaling) and stage.schedule is not None:  # a schedule counts the same steps
            inner = type(stages[i].inner_state if stage.masked else stages[i])(count=count)
            stages[i] = type(stages[i])(inner_state=inner) if stage.masked else inner
    return stages[0] if opt.layout.single else tuple(stages)


def _claims(obj: Any) -> bool:
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], RuleTransformation)


_checkpoint.register_face(
    "optax",
    _claims,
    lambda pair: export_state(*pair),
    lambda pair, checkpoint, strict=True: import_state(pair[0], pair[1], checkpoint, strict=strict),
)
