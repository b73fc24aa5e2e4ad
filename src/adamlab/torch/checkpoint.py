"""``export_state``/``import_state`` of the PyTorch face, over :mod:`adamlab.checkpoint`'s face-neutral format."""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.checkpoint import make_checkpoint, one_rule, read_checkpoint, register_face
from adamlab.torch.optimizer import RuleOptimizer


def export_state(optimizer: Any) -> dict[str, Any]:
    """Checkpoint of an ``adamlab.torch`` optimizer (parameters in param-group order)."""
    rule = one_rule(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    started = [bool(optimizer.state.get(p)) for p in params]
    if any(started) and not all(started):
        missing = [i for i, s in enumerate(started) if not s]
        raise ValueError(f"parameters {missing} have no optimizer state yet (never had a gradient): cannot export")
    steps = {int(optimizer.state[p]["step"]) for p in params} if any(started) else {0}
    if len(steps) != 1:
        raise ValueError(f"parameters were stepped different numbers of times ({sorted(steps)}): cannot export")
    states = []
    for p in params:
        if optimizer.state.get(p):
            states.append({k: v for k, v in optimizer.state[p].items() if k != "step"})
        else:
            states.append(rule.init(np.zeros(tuple(p.shape))))
    return make_checkpoint(rule, steps.pop(), states, [tuple(p.shape) for p in params])


def import_state(optimizer: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> None:
    """Load a checkpoint into an ``adamlab.torch`` optimizer built over parameters of the same shapes."""
    import torch

    rule = one_rule(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    step, states = read_checkpoint(checkpoint, rule, [tuple(p.shape) for p in params], strict=strict)
    for p, state in zip(params, states, strict=True):
        optimizer.state.pop(p, None)
        if step == 0:
            continue
        loaded: dict[str, Any] = {"step": step}
        for key, value in state.items():
            loaded[key] = torch.as_tensor(value).to(device=p.device, dtype=optimizer.state_entry_dtype(rule, key, p))
        optimizer.state[p] = loaded


register_face("torch", lambda obj: isinstance(obj, RuleOptimizer), export_state, import_state)
