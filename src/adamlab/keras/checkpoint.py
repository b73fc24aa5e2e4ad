"""``export_state``/``import_state`` of the Keras face, over :mod:`adamlab.checkpoint`'s face-neutral format."""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.checkpoint import make_checkpoint, read_checkpoint, register_face
from adamlab.keras.optimizer import RuleOptimizer, _concrete


def export_state(optimizer: Any) -> dict[str, Any]:
    """Checkpoint of an ``adamlab.keras`` optimizer: its state variables in the order of the variables it was
    built for (``model.trainable_variables``), and ``iterations`` as the step count.

    Keras's own extras are not optimizer state in this format and are left out: the EMA of the weights
    (``use_ema``) and gradient-accumulation buffers (export raises in the middle of an accumulation cycle).
    """
    if not optimizer.built:
        raise ValueError("the optimizer is not built yet: call optimizer.build(model.trainable_variables) first")
    every = optimizer.gradient_accumulation_steps
    if every and int(_concrete(optimizer._iterations)) % every:
        raise ValueError(
            f"the optimizer is in the middle of a gradient accumulation cycle (every {every} calls): "
            "export after an update step"
        )
    states = [{k: _concrete(v) for k, v in entry.items()} for entry in optimizer._entries]
    shapes = [tuple(v.shape) for v in optimizer._trainable_variables]
    return make_checkpoint(optimizer.rule, int(_concrete(optimizer.iterations)), states, shapes)


def import_state(optimizer: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> None:
    """Load a checkpoint into a built ``adamlab.keras`` optimizer (``optimizer.build(model.trainable_variables)``
    first, or after one step): every state variable and ``iterations`` are assigned; accumulated gradients
    (``gradient_accumulation_steps``) are zeroed."""
    if not optimizer.built:
        raise ValueError("the optimizer is not built yet: call optimizer.build(model.trainable_variables) first")
    shapes = [tuple(v.shape) for v in optimizer._trainable_variables]
    step, states = read_checkpoint(checkpoint, optimizer.rule, shapes, strict=strict)
    for entry, state in zip(optimizer._entries, states, strict=True):
        for key, variable in entry.items():
            variable.assign(state[key].astype(variable.dtype))
    every = optimizer.gradient_accumulation_steps
    optimizer._iterations.assign(step * (every or 1))
    for buffer in getattr(optimizer, "_accumulated_gradients", None) or ():
        buffer.assign(np.zeros(tuple(buffer.shape), dtype=buffer.dtype))


register_face("keras", lambda obj: isinstance(obj, RuleOptimizer), export_state, import_state)
