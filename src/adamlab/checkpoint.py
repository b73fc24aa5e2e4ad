"""Face-neutral optimizer checkpoints: export the state of one face, load it into another.

A checkpoint is a plain dict of Python values and NumPy arrays (picklable; ``torch.save`` and ``pickle``
both work), the same whichever face wrote it::

    {"format": "adamlab.optimizer_state", "version": 1,
     "rule": "adam", "hyperparameters": {"lr": 0.001, "betas": (0.9, 0.999), ...},
     "step": 120,                                     # steps taken (t of the last step)
     "params": [{"name": "['w']", "shape": (3, 2),    # name: the leaf's path, or None
                 "state": {"exp_avg": ndarray, "exp_avg_sq": ndarray}}, ...]}

Parameters are listed in the face's order (torch: param groups in order; NumPy: the flattened structure;
optax: ``jax.tree.leaves``; Keras: the variables the optimizer was built for). When both sides know the
leaf names (NumPy ↔ optax), they are matched by name, so a dict's key order does not matter. Each face has
``export_state``/``import_state`` (:mod:`adamlab.torch`, :mod:`adamlab.numpy`, :mod:`adamlab.optax`,
:mod:`adamlab.keras`) and registers them here with :func:`register_face` when it is imported;
:func:`export_state` and :func:`import_state` dispatch to the registered face that claims the object. This
module never imports a face. Loading checks everything and names what is wrong: another
optimizer's state, missing or unexpected entries, wrong shapes, a different parameter count, and (with
``strict=True``, the default) hyperparameters other than ``lr`` that differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from adamlab.rules import Averaged, Rule

FORMAT = "adamlab.optimizer_state"
VERSION = 1
#: the largest step count a checkpoint may claim (every integer up to it is exact in float64)
MAX_STEP = 2**53


@dataclasses.dataclass(frozen=True)
class Face:
    """A face's checkpoint pair, registered by the face itself (see :func:`register_face`)."""

    name: str
    claims: Callable[[Any], bool]  # True for the face's optimizers (or, for optax, its states)
    export_state: Callable[..., dict[str, Any]]
    import_state: Callable[..., Any]


_FACES: dict[str, Face] = {}


def register_face(
    name: str,
    claims: Callable[[Any], bool],
    export: Callable[..., dict[str, Any]],
    load: Callable[..., Any],
) -> None:
    """Register a face's ``export_state``/``import_state``; ``claims(obj)`` tells whether ``obj`` is its own."""
    _FACES[name] = Face(name, claims, export, load)


def make_checkpoint(
    rule: Rule | Averaged,
    step: int,
    states: Sequence[dict[str, Any]],
    shapes: Sequence[tuple[int, ...]],
    names: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Build a checkpoint from one state dict per parameter (arrays of any face are copied to NumPy)."""
    inner = rule.base
    names = list(names) if names is not None else [None] * len(states)
    return {
        "format": FORMAT,
        "version": VERSION,
        "rule": inner.name,
        "hyperparameters": _plain(inner.hyperparameters()),
        "step": int(step),
        "params": [
            {"name": name, "shape": tuple(int(n) for n in shape), "state": {k: _to_numpy(v) for k, v in s.items()}}
            for name, shape, s in zip(names, shapes, states, strict=True)
        ],
    }


def read_checkpoint(
    checkpoint: Any,
    rule: Rule | Averaged,
    shapes: Sequence[tuple[int, ...]],
    names: Sequence[str | None] | None = None,
    *,
    strict: bool = True,
) -> tuple[int, list[dict[str, np.ndarray]]]:
    """Validate ``checkpoint`` for an optimizer running ``rule`` on parameters of ``shapes``.

    Returns ``(step, states)`` with the states in the target's parameter order; raises ``ValueError``
    naming the first thing that does not match.
    """
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"not an adamlab optimizer checkpoint (expected a dict with format {FORMAT!r})")
    if checkpoint.get("version") != VERSION:
        raise ValueError(f"checkpoint version {checkpoint.get('version')!r} is not supported (expected {VERSION})")
    for key in ("rule", "hyperparameters", "step", "params"):
        if key not in checkpoint:
            raise ValueError(f"checkpoint is missing {key!r}")
    inner = rule.base
    if checkpoint["rule"] != inner.name:
        raise ValueError(f"checkpoint holds the state of {checkpoint['rule']!r}; this optimizer runs {inner.name!r}")
    if strict:
        _check_hyperparameters(checkpoint["hyperparameters"], _plain(inner.hyperparameters()))
    step = checkpoint["step"]
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step <= MAX_STEP:
        raise ValueError(f"checkpoint step must be an integer in [0, 2**53]; got {step!r}")
    if not isinstance(checkpoint["params"], (list, tuple)):
        raise ValueError(f"checkpoint 'params' must be a list; got {type(checkpoint['params']).__name__}")
    entries = _in_target_order(list(checkpoint["params"]), len(shapes), names)
    states = []
    for i, (entry, shape) in enumerate(zip(entries, shapes, strict=True)):
        label = f"parameter {i}" + (f" {entry.get('name')}" if entry.get("name") else "")
        states.append(_checked_state(entry, tuple(shape), rule, label))
    return int(step), states


def export_state(optimizer_or_state: Any) -> dict[str, Any]:
    """Export a torch, NumPy or Keras face optimizer or an optax face state as a checkpoint."""
    return _face_of(optimizer_or_state).export_state(optimizer_or_state)


def import_state(target: Any, checkpoint: dict[str, Any], *, strict: bool = True) -> Any:
    """Load ``checkpoint`` into ``target`` (see each face's ``import_state``); returns what that face returns."""
    return _face_of(target).import_state(target, checkpoint, strict=strict)


# --- helpers ------------------------------------------------------------------------------------------


def _face_of(obj: Any) -> Face:
    for face in _FACES.values():
        if face.claims(obj):
            return face
    known = ", ".join(f"adamlab.{name}" for name in _FACES) or "none imported yet"
    raise ValueError(
        "expected an optimizer of an adamlab face (or an adamlab.optax state) whose face is imported "
        f"({known}); got {type(obj).__module__}.{type(obj).__name__}"
    )


def one_rule(optimizer: Any) -> Rule | Averaged:
    """The rule of a multi-group optimizer's first param group; the others may differ from it only in lr."""
    rules = [optimizer.rule_for(group) for group in optimizer.param_groups]
    first = rules[0].base.hyperparameters()
    for i, rule in enumerate(rules[1:], start=1):
        other = rule.base.hyperparameters()
        differ = [k for k in first if k != "lr" and first[k] != other[k]]
        if differ or type(rule) is not type(rules[0]):
            raise ValueError(
                f"param group {i} differs from group 0 in {', '.join(differ) or 'averaging'}: a face-neutral "
                "checkpoint holds one set of hyperparameters (groups may differ only in lr)"
            )
    return rules[0]


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch (np.array on a tensor warns under NumPy 2)
        value = value.detach().cpu().numpy()
    return np.array(value, copy=True)


def _plain(value: Any) -> Any:
    """Hyperparameters as plain Python values (tuples stay tuples; 0-d arrays become numbers)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def _check_hyperparameters(saved: Any, current: dict[str, Any]) -> None:
    if not isinstance(saved, dict):
        raise ValueError("checkpoint hyperparameters must be a dict")
    differ = [
        f"{k} {saved.get(k, '(missing)')!r} vs {v!r}"
        for k, v in current.items()
        if k != "lr" and not _same(saved.get(k), v)
    ]
    if differ:
        raise ValueError(
            "checkpoint hyperparameters differ from this optimizer's (checkpoint vs this): "
            + "; ".join(differ)
            + " (pass strict=False to load the state anyway)"
        )


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(_plain(a), dtype=object), np.asarray(_plain(b), dtype=object)))
    except (TypeError, ValueError):
        return a == b


def _in_target_order(entries: list[Any], count: int, names: Sequence[str | None] | None) -> list[dict]:
    if len(entries) != count:
        raise ValueError(f"checkpoint has state for {len(entries)} parameters; this optimizer has {count}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "state" not in entry or not isinstance(entry["state"], dict):
            raise ValueError(f"checkpoint parameter {i} must be a dict with a 'state' dict")
    saved_names = [entry.get("name") for entry in entries]
    if names is None or None in names or None in saved_names or list(names) == saved_names:
        return entries
    if sorted(saved_names) != sorted(names):
        missing = sorted(set(names) - set(saved_names))
        raise ValueError(f"checkpoint parameter names do not match this optimizer's; missing {', '.join(missing)}")
    by_name = dict(zip(saved_names, entries, strict=True))
    return [by_name[name] for name in names]


def claimed_shape(value: Any, label: str) -> tuple[int, ...]:
    """A checkpoint's ``shape`` claim as a tuple of ints ≥ 0 (checked before anything is allocated from it)."""
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in value
    ):
        raise ValueError(f"checkpoint {label} has shape {value!r}; expected a tuple of integers >= 0")
    return tuple(int(n) for n in value)


def _checked_state(entry: dict[str, Any], shape: tuple[int, ...], rule: Rule | Averaged, label: str) -> dict:
    saved_shape = entry.get("shape")
    if saved_shape is not None and claimed_shape(saved_shape, label) != shape:
        raise ValueError(f"checkpoint {label} has shape {tuple(saved_shape)}; this optimizer's has shape {shape}")
    layout = rule.layout()
    expected = layout.shapes(shape)  # from the declaration: nothing is allocated before the checks
    state = entry["state"]
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        raise ValueError(f"checkpoint state of {label} does not match {type(rule).__name__}: {'; '.join(parts)}")
    out = {}
    for key, value in state.items():
        want = expected[key]
        claimed = getattr(value, "shape", None)
        if claimed is not None and tuple(claimed) != want:  # refuse by the value's own shape before converting it
            raise ValueError(f"checkpoint state {key!r} of {label} has shape {tuple(claimed)}; expected {want}")
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"checkpoint state {key!r} of {label} is not an array ({error})") from None
        if array.shape != want:
            raise ValueError(f"checkpoint state {key!r} of {label} has shape {array.shape}; expected {want}")
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_):
            raise ValueError(f"checkpoint state {key!r} of {label} is not numeric (dtype {array.dtype})")
        if not np.isfinite(array).all():
            raise ValueError(f"checkpoint state {key!r} of {label} holds NaN or infinite values")
        if key in layout.nonnegative and bool((array.real < 0).any() or (array.imag < 0).any()):
            raise ValueError(f"checkpoint state {key!r} of {label} must be >= 0 (a second moment); it holds negatives")
        out[key] = array.copy()
    return out


def tree_names(tree: Any, prefix: str = "") -> list[str]:
    """Names of the leaves of a nested dict/list/tuple, in the NumPy face's order, spelled as
    ``jax.tree_util.keystr`` spells them (``['w']``, ``[0]``), so NumPy and optax checkpoints match by name."""
    if isinstance(tree, dict):
        return [name for key in tree for name in tree_names(tree[key], f"{prefix}[{key!r}]")]
    if isinstance(tree, (list, tuple)):
        return [name for i, value in enumerate(tree) for name in tree_names(value, f"{prefix}[{i}]")]
    return [prefix]
