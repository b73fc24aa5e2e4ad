"""``export_state``/``import_state`` of the NumPy face, over :mod:`adamlab.checkpoint`'s face-neutral format."""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.checkpoint import claimed_shape, make_checkpoint, read_checkpoint, register_face, tree_names
from adamlab.numpy.optimizer import NumpyOptimizer, flatten, per_element_entries


def export_state(optimizer: Any, params: Any = None) -> dict[str, Any]:
    """Checkpoint of an ``adamlab.numpy`` optimizer; pass ``params`` to record the leaf names (and to export
    an optimizer that has not stepped yet)."""
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


def import_state(optimizer: Any, checkpoint: dict[str, Any], params: Any = None, *, strict: bool = True) -> None:
    """Load a checkpoint into an ``adamlab.numpy`` optimizer (``params`` gives shapes, names and dtypes)."""
    if params is not None:
        leaves = [np.asarray(p) for p in flatten(params)[0]]
        shapes, names = [p.shape for p in leaves], tree_names(params)
        dtypes = [np.promote_types(p.dtype if p.dtype.kind == "f" else np.float64, np.float32) for p in leaves]
    else:
        entries = checkpoint.get("params", []) if isinstance(checkpoint, dict) else []
        entries = entries if isinstance(entries, (list, tuple)) else []  # (read_checkpoint names the problem)
        shapes = [
            claimed_shape(e.get("shape", ()), f"parameter {i}") if isinstance(e, dict) else ()
            for i, e in enumerate(entries)
        ]
        names, dtypes = None, [None] * len(shapes)
    step, states = read_checkpoint(checkpoint, optimizer.rule, shapes, names, strict=strict)
    optimizer.t = step
    layout = optimizer.rule.layout()
    optimizer.state = [
        {k: v.astype(_entry_dtype(layout.entry(k), dtype)) if dtype is not None else v for k, v in s.items()}
        for s, dtype in zip(states, dtypes, strict=True)
    ]


def _entry_dtype(entry: Any, param_dtype: np.dtype) -> np.dtype:
    """The dtype a state entry is kept in: the parameter's, or the one the rule's layout declares."""
    from adamlab.ops.numpy import NUMPY_OPS

    return param_dtype if entry.dtype == "param" else NUMPY_OPS.float_dtype(entry.dtype, np.zeros((), param_dtype))


register_face("numpy", lambda obj: isinstance(obj, NumpyOptimizer), export_state, import_state)
