"""``load_state_dict`` of the PyTorch face: everything checked first, then the new state built, all or nothing."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from adamlab.torch.distributed import is_dtensor
from adamlab.torch.step_count import checked_count, make_step


def checked(opt: Any, state_dict: Any) -> tuple[list[dict[str, Any]], defaultdict]:
    """The param groups and state ``state_dict`` describes for ``opt``; ValueError (and nothing built into
    ``opt``) for anything that does not fit."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"state_dict must be a dict with 'state' and 'param_groups' entries; got {type(state_dict)}")
    saved_groups, saved_state = state_dict.get("param_groups"), state_dict.get("state")
    if not isinstance(saved_groups, list) or not isinstance(saved_state, dict):
        raise ValueError("state_dict must have 'state' (a dict) and 'param_groups' (a list) entries")
    if len(saved_groups) != len(opt.param_groups):
        raise ValueError(f"state_dict has {len(saved_groups)} param groups; this optimizer has {len(opt.param_groups)}")
    id_map: dict[Any, torch.Tensor] = {}
    new_groups = []
    for i, (saved, group) in enumerate(zip(saved_groups, opt.param_groups, strict=True)):
        if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)):
            raise ValueError(f"param group {i} of the state_dict must be a dict with a 'params' list")
        if len(saved["params"]) != len(group["params"]):
            counts = f"state_dict has {len(saved['params'])} params; the optimizer has {len(group['params'])}"
            raise ValueError(f"param group {i}: {counts}")
        try:
            id_map.update(zip(saved["params"], group["params"], strict=True))
        except TypeError:
            raise ValueError(f"param group {i}: the state_dict's parameter ids must be integers") from None
        merged = {**group, **{k: v for k, v in saved.items() if k != "params"}, "params": group["params"]}
        for k, v in {**opt.defaults, **opt.flags}.items():  # torch.optim's dicts lack our keys; older ones, newer flags
            merged.setdefault(k, v)
        try:
            opt.rule_for(merged)
        except (ValueError, TypeError) as error:
            raise ValueError(f"param group {i} of the state_dict: {error}") from None
        new_groups.append(merged)
    group_of = {id(p): g for g in new_groups for p in g["params"]}
    new_state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)  # as torch.optim
    for key, value in saved_state.items():
        if isinstance(key, str):  # not a parameter (a hook's note): kept as torch.optim keeps it
            new_state[key] = value
            continue
        try:
            p = id_map[key]
        except (KeyError, TypeError):
            raise ValueError(f"state_dict has state for parameter id {key!r}, which no param group lists") from None
        if not isinstance(value, dict):
            raise ValueError(f"state of parameter {key!r} must be a dict; got {type(value).__name__}")
        new_state[p] = param_state(opt, p, dict(value), group_of[id(p)], key)
    return new_groups, new_state


def kept_entries(layout: Any, shape: tuple[int, ...]) -> list[str]:
    """The entries a parameter of ``shape`` has: a "shaped" entry whose shape is None for it is not kept
    (Adafactor keeps ``row_var``/``col_var`` for a matrix, ``variance`` for a vector, as torch.optim does)."""
    return [e.name for e in layout.entries if not (e.kind == "shaped" and e.shape(shape) is None)]


def param_state(opt: Any, p: torch.Tensor, value: dict[str, Any], group: dict[str, Any], key: Any) -> dict:
    """One parameter's loaded state, checked against the group's rule and converted to where it is kept."""
    rule = opt.rule_for(group)
    layout = rule.layout()
    # torch's SGD keeps no step; its buffer exists only after a step
    step = value.pop("step") if "step" in value else (1 if value else 0)
    count = checked_count(step, f"state of parameter {key!r}")
    expected = set(kept_entries(layout, tuple(p.shape)))
    missing, extra = sorted(expected - set(value)), sorted(set(value) - expected)
    if missing or extra:
        raise ValueError(
            f"state of parameter {key!r} does not match {type(opt).__name__}"
            f"{' (missing ' + ', '.join(missing) + ')' if missing else ''}"
            f"{' (unexpected ' + ', '.join(extra) + ')' if extra else ''}"
        )
    loaded: dict[str, Any] = {"step": make_step(count, p, group)}
    for name, tensor in value.items():
        entry = layout.entry(name)
        want = entry.shape_for(tuple(p.shape))
        if not torch.is_tensor(tensor) or tuple(tensor.shape) != want:
            shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
            raise ValueError(f"state {name!r} of parameter {key!r} has shape {shape}; expected {want}")
        dtype = opt.state_entry_dtype(rule, name, p, group)
        if entry.kind == "element" and tensor.is_complex() != p.is_complex():
            raise ValueError(f"state {name!r} of parameter {key!r} is {tensor.dtype}; the parameter is {p.dtype}")
        if not (tensor.is_floating_point() or tensor.is_complex()):
            raise ValueError(f"state {name!r} of parameter {key!r} must be a floating tensor; got {tensor.dtype}")
        if entry.nonnegative and tensor.device.type != "meta":  # a second moment, as the rule declares it
            values = tensor.to_local() if is_dtensor(tensor) else tensor
            values = torch.view_as_real(values) if values.is_complex() else values
            if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
                raise ValueError(f"state {name!r} of parameter {key!r} must be finite and >= 0 (a second moment)")
        if is_dtensor(tensor) or is_dtensor(p):
            kept = tensor.to(dtype=dtype)
        else:
            kept = tensor.to(device=p.device if entry.kind == "element" else tensor.device, dtype=dtype)
        loaded[name] = kept.clone() if kept is tensor else kept  # the optimizer owns its state (steps write it)
    return loaded
