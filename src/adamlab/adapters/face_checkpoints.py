"""``export_state``/``import_state`` of the PyTorch, NumPy and Keras faces, over :mod:`adamlab.checkpoint`'s
format.

(The optax face has its own pair in :mod:`adamlab.optax`.) torch and Keras are imported only by their functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.checkpoint import make_checkpoint, read_checkpoint, tree_names
from adamlab.rules import Averaged, Rule


def _inner(rule: Rule | Averaged) -> Rule:
    return rule.rule if isinstance(rule, Averaged) else rule


def _one_rule(optimizer: Any) -> Rule | Averaged:
    """The rule of the first param group; the others may differ from it only in lr."""
    rules = [optimizer.rule_for(group) for group in optimizer.param_groups]
    first = _inner(rules[0]).hyperparameters()
    for i, rule in enumerate(rules[1:], start=1):
        other = _inner(rule).hyperparameters()
        differ = [k for k in first if k != "lr" and first[k] != other[k]]
        if differ or type(rule) is not type(rules[0]):
            raise ValueError(
                f"param group {i} differs from group 0 in {', '.join(differ) or 'averaging'}: a face-neutral "
                "checkpoint holds one set of hyperparameters (groups may differ only in lr)"
            )
    return rules[0]


# --- PyTorch face -----------------------------------------------------------------------------------------


def torch_export_state(optimizer: Any) -> dict[str, Any]:
    """Checkpoint of an ``adamlab.torch`` optimizer (parameters in param-group order)."""
    rule = _one_rule(optimizer)
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


def torch_import_state(optimizer: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> None:
    """Load a checkpoint into an ``adamlab.torch`` optimizer built over parameters of the same shapes."""
    import torch

    rule = _one_rule(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    step, states = read_checkpoint(checkpoint, rule, [tuple(p.shape) for p in params], strict=strict)
    for p, state in zip(params, states, strict=True):
        optimizer.state.pop(p, None)
        if step == 0:
            continue
        dtype = optimizer.compute_dtype(p)
        loaded: dict[str, Any] = {"step": step}
        for key, value in state.items():
            complex_entry = p.is_complex() and value.ndim > 0 or np.iscomplexobj(value)
            want = torch.complex(dtype, dtype) if complex_entry else dtype
            loaded[key] = torch.as_tensor(value).to(device=p.device, dtype=want)
        optimizer.state[p] = loaded


# --- NumPy face -------------------------------------------------------------------------------------------


def numpy_export_state(optimizer: Any, params: Any = None) -> dict[str, Any]:
    """Checkpoint of an ``adamlab.numpy`` optimizer; pass ``params`` to record the leaf names (and to export
    an optimizer that has not stepped yet)."""
    from adamlab.adapters.numpy_optimizer import flatten, per_element_entries

    names = tree_names(params) if params is not None else None
    if optimizer.state is None:
        if params is None:
            raise ValueError("the optimizer has not taken a step: pass params to export its initial state")
        leaves = [np.asarray(p, dtype=np.promote_types(np.asarray(p).dtype, np.float32)) for p in flatten(params)[0]]
        states = [optimizer.rule.init(p) for p in leaves]
    else:
        states = optimizer.state
        if names is not None and len(names) != len(states):
            raise ValueError(f"params has {len(names)} arrays; the optimizer state was built for {len(states)}")
    per_element = per_element_entries(optimizer.rule)
    shapes = [next((np.shape(v) for k, v in s.items() if k in per_element), ()) for s in states]
    if params is not None:
        shapes = [np.shape(p) for p in flatten(params)[0]]
    return make_checkpoint(optimizer.rule, optimizer.t, states, shapes, names)


def numpy_import_state(optimizer: Any, checkpoint: dict[str, Any], params: Any = None, *, strict: bool = True) -> None:
    """Load a checkpoint into an ``adamlab.numpy`` optimizer (``params`` gives shapes, names and dtypes)."""
    from adamlab.adapters.numpy_optimizer import flatten

    if params is not None:
        leaves = [np.asarray(p) for p in flatten(params)[0]]
        shapes, names = [p.shape for p in leaves], tree_names(params)
        dtypes = [np.promote_types(p.dtype if p.dtype.kind == "f" else np.float64, np.float32) for p in leaves]
    else:
        entries = checkpoint.get("params", []) if isinstance(checkpoint, dict) else []
        shapes = [tuple(e.get("shape", ())) if isinstance(e, dict) else () for e in entries]
        names, dtypes = None, [None] * len(shapes)
    step, states = read_checkpoint(checkpoint, optimizer.rule, shapes, names, strict=strict)
    optimizer.t = step
    optimizer.state = [
        {k: v.astype(dtype) if dtype is not None else v for k, v in s.items()}
        for s, dtype in zip(states, dtypes, strict=True)
    ]


# --- Keras face -------------------------------------------------------------------------------------------


def keras_export_state(optimizer: Any) -> dict[str, Any]:
    """Checkpoint of an ``adamlab.keras`` optimizer: its state variables in the order of the variables it was
    built for (``model.trainable_variables``), and ``iterations`` as the step count.

    Keras's own extras are not optimizer state in this format and are left out: the EMA of the weights
    (``use_ema``) and gradient-accumulation buffers (export raises in the middle of an accumulation cycle).
    """
    from adamlab.adapters.keras_optimizer import _concrete

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


def keras_import_state(optimizer: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> None:
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
