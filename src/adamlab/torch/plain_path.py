"""The plain path: each parameter stepped with torch's own operations, as torch.optim's for-loop path does.

Everything the fast path does not take runs here: other devices (CUDA, meta), low-precision and complex
parameters, sparse gradients, DTensor shards, ``differentiable=True``, and every step under ``torch.compile``.

A step is checked before anything changes (:func:`check`): sparse gradients where the optimizer has no sparse
path, gradients of another shape, device or kind (complex for a real parameter), complex parameters for rules
that cannot step them as pairs of reals, and ``capturable=True`` on a CPU, which torch rejects. The step
itself (:func:`step_group`) computes each parameter's new values out of place with the rule, then writes them
into the parameter and its state in place, as torch's in-place operations do.

Sparse gradients, as torch.optim takes them:

- SGD: without momentum and weight decay the sparse gradient goes into the rule as it is
  (``param.add_(grad, alpha=-lr)`` is torch's own sparse update); with momentum or weight decay it is made dense
  first, so the momentum buffer is dense (torch keeps a sparse one with the same values, and refuses weight
  decay: ``add(sparse, dense) is not supported``).
- Adagrad: the rule runs on the gradient's (coalesced) support only, which is torch's sparse update; other
  elements keep their values and accumulators, as with a zero gradient. Weight decay is refused, as torch does.
"""

from __future__ import annotations

from typing import Any

import torch

from adamlab.torch.distributed import is_dtensor, like_param, local
from adamlab.torch.step_count import advance, make_step, step_device

#: how each optimizer takes sparse gradients (registry name → mode); the others refuse them, as torch.optim does
SPARSE_MODES: dict[str, str] = {"sgd": "as_is", "adagrad": "support"}
#: torch.optim classes whose ``differentiable=True`` path computes its bias corrections from the step tensor
#: (torch 2.x: Adam and AdamW; the others take the step's value, as on their default path)
TENSOR_STEP_WHEN_DIFFERENTIABLE: frozenset[str] = frozenset({"adam", "adamw"})
_COMPLEX_OF = {torch.float16: torch.complex32, torch.float32: torch.complex64, torch.float64: torch.complex128}


def real(t: torch.Tensor) -> torch.Tensor:
    """Complex tensors are updated as pairs of reals, as torch.optim does."""
    return torch.view_as_real(t) if t.is_complex() else t


def stored(value: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """State is stored with the parameter's shape (complex again for complex parameters)."""
    return torch.view_as_complex(value.contiguous()) if p.is_complex() and value.ndim > 0 else value


def is_sparse(g: torch.Tensor) -> bool:
    return g.layout != torch.strided


def complex_ok(rule: Any) -> bool:
    """True when a rule can step complex parameters as pairs of reals (every state entry is per element or 0-d)."""
    return rule.layout().elementwise


def capturable_devices() -> list[str]:
    try:
        from torch.optim.optimizer import _get_capturable_supported_devices

        return list(_get_capturable_supported_devices())
    except ImportError:  # pragma: no cover - private helper gone in some torch version
        return ["cuda", "xpu", "hpu"]


def check(opt: Any, groups: list[dict[str, Any]], plain: list[list[torch.Tensor]], traced: bool) -> None:
    """Raise, before anything changes, for every gradient this step could not take."""
    name = type(opt).__name__
    sparse_mode = SPARSE_MODES.get(opt.entry.name)
    for group, params in zip(groups, plain, strict=True):
        rule = opt.rule_for(group)
        for p in params:
            g = p.grad
            if g is None:
                continue
            if is_sparse(g):
                if sparse_mode is None:
                    raise RuntimeError(f"{name} does not support sparse gradients")
                if sparse_mode == "support" and group.get("weight_decay", 0) != 0:
                    raise RuntimeError("weight_decay option is not compatible with sparse gradients")
            if tuple(g.shape) != tuple(p.shape):
                raise RuntimeError(f"{name}: a gradient of shape {tuple(g.shape)} for a parameter of shape "
                                   f"{tuple(p.shape)}")  # fmt: skip
            if g.device != p.device:
                raise RuntimeError(f"{name}: a gradient on {g.device} for a parameter on {p.device}")
            if g.is_complex() != p.is_complex():
                raise RuntimeError(f"{name}: a {g.dtype} gradient for a {p.dtype} parameter")
            if p.is_complex() and not complex_ok(rule):
                raise RuntimeError(f"{name} does not support complex parameters")
            if is_dtensor(p) and not rule.layout().elementwise:
                raise NotImplementedError(f"{name} cannot step DTensor parameters: its state is not elementwise")
            if group.get("capturable") and not traced and p.device.type not in capturable_devices():
                raise AssertionError(
                    f"If capturable=True, params and state_steps must be on supported devices: {capturable_devices()}."
                )


def finite_checks(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """One 0-d bool per gradient that has values here (meta gradients have none; a DTensor's own shard)."""
    checks = []
    for p in params:
        g = p.grad
        if g is None or g.device.type == "meta":
            continue
        g = local(g)
        if is_sparse(g):
            g = g.coalesce().values()  # (what the step adds up: duplicates may overflow only once summed)
        checks.append(torch.isfinite(g).all())
    return checks


def step_group(opt: Any, group: dict[str, Any], rule: Any, params: list[torch.Tensor], traced: bool) -> None:
    """Step every parameter of ``params`` that has a gradient (after :func:`check`)."""
    for p in params:
        if p.grad is not None:
            step_param(opt, group, rule, p, traced)


def init_state(opt: Any, group: dict[str, Any], rule: Any, p: torch.Tensor, state: dict[str, Any]) -> None:
    """The rule's initial state for ``p`` (DTensors laid out as ``p``), with ``step`` 0 in torch's format."""
    dtype = opt.compute_dtype(p, group)
    probe = real(local(p)).detach().to(dtype)
    state["step"] = make_step(0, p, group)
    layout = rule.layout()
    scalars = layout.of_kind("scalar")  # 0-d entries (NAdam's μ product) live with the step, as in torch
    if scalars:
        at_step = rule.init(torch.zeros((), dtype=dtype, device=step_device(p, group)))
    for k, v in rule.init(probe).items():
        state[k] = at_step[k] if k in scalars else like_param(stored(v, p), p)


def step_param(opt: Any, group: dict[str, Any], rule: Any, p: torch.Tensor, traced: bool) -> None:
    state = opt._raw_state[p]
    if not state:
        init_state(opt, group, rule, p, state)
    dtype = opt.compute_dtype(p, group)
    lp, grad = local(p), local(p.grad)
    if is_sparse(grad):
        if SPARSE_MODES[opt.entry.name] == "support":
            return _step_on_support(opt, group, rule, p, state, grad.coalesce(), dtype, traced)
        if rule.layout().of_kind("element") or group.get("weight_decay", 0) != 0:  # momentum, decay: dense
            grad = grad.coalesce().to_dense()
    param, grad = real(lp).to(dtype), real(grad).to(dtype)
    if torch.is_grad_enabled():  # differentiable=True: the rule must not read what is written below
        param = param.clone()
    t = _next_step(opt, state, p, group, traced)
    layout = rule.layout()
    inner = {}
    for k, v in state.items():
        if k == "step":
            continue
        if layout.entry(k).kind == "element":
            v = real(local(v)).to(dtype)
        inner[k] = v.clone() if torch.is_grad_enabled() and torch.is_tensor(v) else v
    new_param, new_state = rule.step(param, grad, inner, t)
    real(lp).copy_(new_param)
    for k, v in new_state.items():
        _write(state, k, v, p, layout.entry(k).kind)


def _next_step(opt: Any, state: dict[str, Any], p: torch.Tensor, group: dict[str, Any], traced: bool) -> Any:
    """The step number t of this step: a host int (torch's ``_get_value``), or the step tensor itself where
    torch computes with the tensor: under ``torch.compile``, with ``capturable``, and with ``differentiable`` in
    the classes whose differentiable path does (:data:`TENSOR_STEP_WHEN_DIFFERENTIABLE`)."""
    tensor_step = group.get("differentiable") and opt.entry.name in TENSOR_STEP_WHEN_DIFFERENTIABLE
    if traced or group.get("capturable") or tensor_step:
        state["step"] += 1
        return state["step"]
    return advance(state, p, group)


def _write(state: dict[str, Any], k: str, v: Any, p: torch.Tensor, kind: str) -> None:
    """Write a new state value into the existing entry in place (a new tensor if its dtype or shape changed)."""
    target = state.get(k)
    if not torch.is_tensor(v):
        v = torch.as_tensor(v)
    if kind != "element":  # 0-d state (NAdam's μ product) keeps its own dtype
        if torch.is_tensor(target) and target.shape == v.shape:
            target.copy_(v)
        else:
            state[k] = v.clone()
        return
    if torch.is_tensor(target):
        place = real(local(target))
        if place.shape == v.shape and place.dtype == v.dtype:
            place.copy_(v)
            return
    state[k] = like_param(stored(v, p), p)


def _step_on_support(opt: Any, group: dict[str, Any], rule: Any, p: torch.Tensor, state: dict[str, Any],
                     grad: torch.Tensor, dtype: torch.dtype, traced: bool) -> None:  # fmt: skip
    """The rule on the elements a coalesced sparse gradient holds (torch's sparse Adagrad); nothing else moves."""
    index = tuple(grad.indices())
    lp = local(p)
    param = lp[index].to(dtype)
    values = grad.values().to(dtype)
    t = _next_step(opt, state, p, group, traced)
    layout = rule.layout()
    inner = {k: (local(v)[index].to(dtype) if layout.entry(k).kind == "element" else v)
             for k, v in state.items() if k != "step"}  # fmt: skip
    new_param, new_state = rule.step(param, values, inner, t)
    lp[index] = new_param.to(lp.dtype)
    for k, v in new_state.items():
        if layout.entry(k).kind == "element":
            local(state[k])[index] = v.to(state[k].dtype)
        else:
            _write(state, k, v, p, "scalar")


def state_dtype_for(compute: torch.dtype, p: torch.Tensor) -> torch.dtype:
    """A per-element entry's dtype: the compute dtype, complex for complex parameters."""
    return _COMPLEX_OF[compute] if p.is_complex() else compute
