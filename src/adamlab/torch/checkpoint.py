"""``export_state``/``import_state`` of the PyTorch face, over :mod:`adamlab.checkpoint`'s face-neutral format."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from adamlab.checkpoint import make_checkpoint, one_rule, read_checkpoint, register_face
from adamlab.torch.optimizer import STATE_AT_CONSTRUCTION, RuleOptimizer
from adamlab.torch.step_count import checked_count, count_of, make_step


def export_state(optimizer: Any) -> dict[str, Any]:
    """Checkpoint of an ``adamlab.torch`` optimizer (parameters in param-group order)."""
    rule = one_rule(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = optimizer.state
    started = [bool(state.get(p)) for p in params]
    if any(started) and not all(started):
        missing = [i for i, s in enumerate(started) if not s]
        raise ValueError(f"parameters {missing} have no optimizer state yet (never had a gradient): cannot export")
    counts = optimizer._fast.live_counts() if optimizer.__dict__.get("_fast") is not None else {}
    steps = {counts.get(id(state[p]), count_of(state[p]["step"])) for p in params} if any(started) else {0}
    if len(steps) != 1:
        raise ValueError(f"parameters were stepped different numbers of times ({sorted(steps)}): cannot export")
    states = []
    for p in params:
        if state.get(p):
            states.append({k: v for k, v in state[p].items() if k != "step"})
        else:
            states.append(rule.init(np.zeros(tuple(p.shape))))
    return make_checkpoint(rule, steps.pop(), states, [tuple(p.shape) for p in params])


def import_state(optimizer: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> None:
    """Load a checkpoint into an ``adamlab.torch`` optimizer built over parameters of the same shapes.

    All or nothing: the checkpoint is checked and every parameter's new state is built before any is replaced.
    """
    rule = one_rule(optimizer)
    pairs = [(p, group) for group in optimizer.param_groups for p in group["params"]]
    try:
        step, states = read_checkpoint(checkpoint, rule, [tuple(p.shape) for p, _ in pairs], strict=strict)
    except (TypeError, OverflowError) as error:  # malformed entries (a shape that is a number ...)
        raise ValueError(f"not a valid adamlab optimizer checkpoint: {error}") from None
    step = checked_count(step, "checkpoint")
    built = []
    for (p, group), saved in zip(pairs, states, strict=True):
        loaded: dict[str, Any] = {"step": make_step(step, p, group)}
        for key, value in saved.items():
            dtype = optimizer.state_entry_dtype(rule, key, p, group)
            array = np.asarray(value)
            if dtype.is_complex != np.iscomplexobj(array):
                kind = "complex" if np.iscomplexobj(array) else "real"
                raise ValueError(f"checkpoint state {key!r} is {kind}; this optimizer's parameter is {p.dtype}")
            device = p.device if rule.layout().entry(key).kind == "element" else torch.device("cpu")
            loaded[key] = torch.as_tensor(array).to(device=device, dtype=dtype)
        built.append(loaded)
    keep = step != 0 or optimizer.entry.name in STATE_AT_CONSTRUCTION  # (Adagrad has state before its first step)
    state = optimizer.state
    for (p, _), loaded in zip(pairs, built, strict=True):
        state.pop(p, None)
        if keep:
            state[p] = loaded


register_face("torch", lambda obj: isinstance(obj, RuleOptimizer), export_state, import_state)
