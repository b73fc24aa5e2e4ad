"""Flat buffers: one contiguous storage per (device, dtype) that the parameters are views into.

A :class:`FlatBuffer` holds the parameters of one (device, dtype) back to back; each param group owns a
contiguous :class:`Segment` of it, with the group's state (``exp_avg``, ...) in flat arrays of the same
layout and a step count per tensor. One kernel call then covers every tensor of a group.

Gradients are read where they are: a parameter's own ``.grad`` tensor (fresh after
``zero_grad(set_to_none=True)``), or a slot of the buffer's flat gradient once ``zero_grad(set_to_none=False)``
has pointed ``.grad`` there. Parameters are found out of place (``.data`` reassigned) by comparing data
pointers with the ones recorded at build time.

On the CPU each placed parameter gets a storage of its own that aliases its slot of the buffer (through the
buffer protocol, which keeps the buffer alive). To everything outside the optimizer it looks like an ordinary
parameter: ``torch.save`` of one parameter or of a sub-module's ``state_dict()`` writes only those bytes, and
tools that find tied weights by storage (safetensors, ``save_pretrained``) see no sharing. A plain view would
make every parameter carry the whole buffer's storage.
"""

from __future__ import annotations

import itertools
import operator
import weakref
from typing import Any

import numpy as np
import torch

DATA_PTR = torch.Tensor.data_ptr
GRAD = operator.attrgetter("grad")
NBYTES = operator.attrgetter("nbytes")
DTYPE = operator.attrgetter("dtype")


class SparseGradient(RuntimeError):
    """Some parameters of a segment have sparse gradients (the fast path hands them to the plain path)."""

    def __init__(self, owner: str, params: list[torch.Tensor]) -> None:
        super().__init__(f"{owner} does not support sparse gradients")
        self.params = params


#: parameters placed in a flat buffer: id(param) → (the placing buffer's token, the address it was placed at).
#: An entry goes when the parameter's slot storage goes (its ``.data`` was replaced, or the parameter died), so
#: an id is never reused while its entry exists. (No weak reference to the parameter itself:
#: torch.utils.swap_tensors refuses tensors that have one.) A parameter still at that address and viewed by
#: nothing else may move again.
_PLACED: dict[int, tuple[int, int]] = {}
_TOKENS = itertools.count()


def _use_count(t: torch.Tensor) -> int | None:
    try:
        return int(torch._C._storage_Use_Count(t.untyped_storage()._cdata))
    except (AttributeError, RuntimeError):  # pragma: no cover - private API gone in some torch version
        return None


def _sole_user(p: torch.Tensor) -> bool:
    count = _use_count(p)
    return count is None or count <= 2  # p and the temporary `storage` wrapper


def placed(p: torch.Tensor) -> bool:
    """True when ``p`` is in the slot of a flat buffer it was placed in (its ``.data`` was not reassigned)."""
    entry = _PLACED.get(id(p))
    return entry is not None and entry[1] == p.data_ptr()


def _forget(key: int, token: int) -> None:
    if _PLACED.get(key, (None,))[0] == token:
        del _PLACED[key]


def _retire(token: int, params: list[torch.Tensor]) -> None:
    """A flat buffer is no longer used by its optimizer (a rebuild, or the optimizer was deleted): parameters
    still in its slots get their own memory, else one of them would keep the whole buffer alive after the
    others moved on. A parameter that another tensor views stays, so that the other keeps seeing it."""
    with torch.no_grad():
        for p in params:
            if p.numel() and _PLACED.get(id(p)) == (token, p.data_ptr()) and _sole_user(p):
                p.data = p.data.clone()


def movable(p: torch.Tensor) -> bool:
    """True when ``p``'s memory can move into a flat buffer without another object noticing.

    That holds for a parameter owning its storage alone (the usual case) and for one still in the slot of an
    adamlab flat buffer it was placed in. A parameter sharing memory with another tensor (a view of it,
    ``Parameter(t)`` with ``t`` kept), with NumPy (``torch.from_numpy``: a storage that cannot be resized) or
    with other processes (``model.share_memory()``, as in Hogwild training) stays on the plain path, whose
    in-place updates those others see.
    """
    if not _sole_user(p):
        return False
    if placed(p):
        return True
    storage = p.untyped_storage()
    return (
        p.storage_offset() == 0
        and storage.nbytes() == p.numel() * p.element_size()
        and storage.resizable()
        and not storage.is_shared()
    )


def _own_slot(view: torch.Tensor, forget: tuple[int, int] | None = None) -> torch.Tensor:
    """``view`` (a slot of a CPU flat buffer) as a tensor with a storage of its own over the same memory.
    ``forget``: the ``_PLACED`` entry to remove when that storage goes."""
    if view.device.type != "cpu":
        return view
    if view.numel() == 0:  # nothing to alias (and a view would carry the buffer's storage)
        return torch.empty(view.shape, dtype=view.dtype)
    exporter = view.numpy().reshape(-1)  # a new array object, alive exactly as long as the new storage
    if forget is not None:
        weakref.finalize(exporter, _forget, *forget).atexit = False
    return torch.frombuffer(exporter, dtype=view.dtype).view(view.shape)


def state_fits(d: dict[str, Any], shape: tuple[int, ...], names: tuple[str, ...], scalars: tuple[str, ...]) -> bool:
    """True when a state dict has exactly ``step``, ``names`` (real tensors of ``shape``) and ``scalars``
    (numbers or one-element tensors): what the flat arrays can take."""
    if set(d) != {"step", *names, *scalars}:
        return False
    step = d["step"]
    if not isinstance(step, (int, float)) and not (torch.is_tensor(step) and step.numel() == 1 and step.is_cpu):
        return False
    for name in names:
        value = d[name]
        if not torch.is_tensor(value) or value.is_complex() or tuple(value.shape) != tuple(shape):
            return False
    return all(
        isinstance(d[name], (int, float)) or (torch.is_tensor(d[name]) and d[name].numel() == 1) for name in scalars
    )


class Segment:
    """One param group's tensors of one flat buffer, with the group's state in flat arrays."""

    def __init__(self, group_index: int, params: list[torch.Tensor], flat: torch.Tensor) -> None:
        self.group_index = group_index
        self.params = params
        self.shapes = [tuple(p.shape) for p in params]
        self.starts = np.cumsum([0, *(p.numel() for p in params)]).astype(np.int64)
        self.whole_starts = self.starts[[0, -1]]  # the segment as one tensor (see fast_step._as_one_tensor)
        self.nbytes = np.diff(self.starts) * flat.element_size()  # what each gradient must hold
        self.flat = flat  # this segment's slice of the buffer
        self.flat_np = flat.numpy() if flat.device.type == "cpu" else None
        self.steps = np.zeros(len(params), dtype=np.int64)
        self.started = np.zeros(len(params), dtype=bool)  # has state (a step with a gradient, or loaded)
        self.all_started = False
        self.dicts: list[dict[str, Any] | None] = [None] * len(params)  # the live optimizer.state[p]
        self.entries: list[dict[str, torch.Tensor] | None] = [None] * len(params)  # the views each dict holds
        self.state_names: tuple[str, ...] = ()
        self.scalar_names: tuple[str, ...] = ()
        self.grad: torch.Tensor | None = None  # this segment's slice of the flat gradient buffer
        self.grad_views: list[torch.Tensor] | None = None
        self.flat_grad_ptrs: np.ndarray | None = None
        self.step_values = torch.zeros(len(params), dtype=torch.float32)  # what the dicts' "step" tensors view
        self.step_views: list[torch.Tensor | None] = [None] * len(params)

    def allocate_state(self, state_names: tuple[str, ...], scalars: dict[str, torch.dtype],
                       step_dtype: torch.dtype = torch.float32) -> None:  # fmt: skip
        """Flat state arrays for per-element entries (one row each) and per-tensor arrays for 0-d ones, each of
        the dtype the rule's layout declares (``scalars``: name → dtype); ``step_dtype``: torch's dtype of the
        step tensors (float32, or float64 under a float64 default dtype)."""
        self.step_values = torch.zeros(len(self.params), dtype=step_dtype)
        n, dtype = self.flat.numel(), self.flat.dtype
        self.state_names, self.scalar_names = state_names, tuple(scalars)
        self.state = torch.zeros((len(state_names), n), dtype=dtype, device=self.flat.device)
        self.state_rows = {name: self.state[i] for i, name in enumerate(state_names)}
        self.state_np = {name: row.numpy() for name, row in self.state_rows.items()}
        self.scalars = {name: torch.zeros(len(self.params), dtype=d) for name, d in scalars.items()}
        self.scalars_np = {name: t.numpy() for name, t in self.scalars.items()}

    def tensor_slice(self, j: int) -> slice:
        return slice(int(self.starts[j]), int(self.starts[j + 1]))

    def start(self, j: int) -> dict[str, Any]:
        """Mark tensor j as having state; returns its state dict (views of the flat arrays; its ``step`` a 0-d
        view of :attr:`step_values`, in torch's format, written when the state is looked at)."""
        sl = self.tensor_slice(j)
        entries = {name: row[sl].view(self.shapes[j]) for name, row in self.state_rows.items()}
        entries.update({name: t[j] for name, t in self.scalars.items()})
        self.entries[j] = entries
        self.step_values[j] = float(self.steps[j])
        self.step_views[j] = self.step_values[j]
        self.dicts[j] = {"step": self.step_views[j], **entries}
        self.started[j] = True
        return self.dicts[j]

    def forget(self, j: int) -> None:
        """Tensor j has no state any more (its entry was removed from ``optimizer.state``)."""
        self.steps[j] = 0
        self.started[j] = False
        self.all_started = False
        self.dicts[j] = self.entries[j] = self.step_views[j] = None

    def is_live(self, j: int, d: Any) -> bool:
        """True when ``d`` is tensor j's own state dict holding its own tensors (see :meth:`edited_steps` for
        edits of a step tensor in place)."""
        own, entries = self.dicts[j], self.entries[j]
        if own is None or d is not own or d.get("step") is not self.step_views[j] or len(d) != len(entries) + 1:
            return False
        return all(d.get(k) is v for k, v in entries.items())

    def edited_steps(self) -> np.ndarray:
        """Which tensors' step tensors were changed in place since :meth:`sync_steps` (``state["step"] += 1``)."""
        synced = torch.from_numpy(self.steps).to(self.step_values.dtype)
        return (self.step_values != synced).numpy()

    def adoptable(self, j: int, d: dict[str, Any]) -> bool:
        """True when ``d`` has exactly this rule's entries with tensor j's shape (0-d for per-tensor ones)."""
        return state_fits(d, self.shapes[j], self.state_names, self.scalar_names)

    def adopt(self, j: int, d: dict[str, Any]) -> dict[str, Any]:
        """Copy a state dict (a loaded checkpoint, the plain path's) into tensor j's slots; returns the live dict."""
        step = d["step"]
        step = int(step.item() if torch.is_tensor(step) else step)  # (checked by state_fits and the loader)
        sl = self.tensor_slice(j)
        values = {name: d[name] for name in (*self.state_names, *self.scalar_names)}  # before d may be rebuilt
        for name in self.state_names:
            target = self.state_rows[name][sl]
            if target.data_ptr() != values[name].data_ptr() or not values[name].is_contiguous():
                target.copy_(values[name].reshape(-1))
        for name in self.scalar_names:
            value = values[name]
            self.scalars[name][j] = value.item() if torch.is_tensor(value) else value
        self.steps[j] = step
        return self.start(j)

    def sync_steps(self) -> None:
        """Write the step counts into the state dicts' step tensors (done lazily, when ``optimizer.state`` is
        read): one copy into :attr:`step_values`, which they view. Past 2^24, where float32 no longer holds every
        count, the step tensors become float64 (exact to 2^53)."""
        if self.step_values.dtype == torch.float32 and self.steps.size and int(self.steps.max()) > 2**24:
            self.step_values = self.step_values.to(torch.float64)
            for j, d in enumerate(self.dicts):
                if d is not None:
                    self.step_views[j] = d["step"] = self.step_values[j]
        self.step_values.copy_(torch.from_numpy(self.steps))

    def grad_table(self, owner: str) -> tuple[np.ndarray, np.ndarray | None, list[torch.Tensor]]:
        """(addresses of the gradients, which tensors have one (None: all), tensors to keep alive).

        Gradients already in the flat gradient buffer cost one identity check per tensor; fresh ones
        (after ``zero_grad(set_to_none=True)``) a contiguity, size and ``data_ptr`` check each. A gradient
        that is non-contiguous or of another dtype (``grad_dtype``, or ``.data`` changed under it) is converted
        like the plain path converts it; one of another shape raises, as the plain path and torch.optim do.
        The kernel never reads past a gradient.
        """
        grads = list(map(GRAD, self.params))
        if self.grad_views is not None and all(map(operator.is_, grads, self.grad_views)):
            return self.flat_grad_ptrs, None, []
        n = len(grads)
        try:
            # (no device check here: torch refuses a .grad, or a .grad.data, on another device than its
            # tensor, and a parameter that moved is found by the layout check; the dtype is checked, since
            # grad_dtype=None lets an int32 .grad of the same byte size through. Each test is one C-level pass
            # over the tensors, 55-90 ns a tensor on 10,000; list.count is cheaper than all() over an is_ map.)
            if (
                all(map(torch.Tensor.is_contiguous, grads))
                and list(map(DTYPE, grads)).count(self.flat.dtype) == n
                and np.array_equal(np.fromiter(map(NBYTES, grads), dtype=np.int64, count=n), self.nbytes)
            ):
                return np.fromiter(map(DATA_PTR, grads), dtype=np.int64, count=n), None, []
        except (TypeError, RuntimeError):  # a missing gradient (None), or a sparse one: one by one below
            pass
        keep: list[torch.Tensor] = []
        ptrs = np.zeros(len(grads), dtype=np.int64)
        has = np.ones(len(grads), dtype=bool)
        for j, g in enumerate(grads):
            if g is None:
                has[j] = False
                continue
            if g.is_sparse or g.layout != torch.strided:
                raise SparseGradient(owner, [p for p in self.params if p.grad is not None and p.grad.is_sparse])
            if tuple(g.shape) != self.shapes[j]:
                raise RuntimeError(
                    f"{owner}: a gradient of shape {tuple(g.shape)} for a parameter of shape {self.shapes[j]}"
                )
            if g.device != self.flat.device:
                raise RuntimeError(f"{owner}: a gradient on {g.device} for a parameter on {self.flat.device}")
            if g.is_complex():
                raise RuntimeError(f"{owner}: a {g.dtype} gradient for a {self.flat.dtype} parameter")
            if not g.is_contiguous() or g.dtype != self.flat.dtype:  # converted, never reinterpreted
                g = g.to(self.flat.dtype).contiguous()
                keep.append(g)
            ptrs[j] = g.data_ptr()
        return ptrs, (None if has.all() else has), keep


class FlatBuffer:
    """The parameters of one (device, dtype), back to back in one tensor, cut into per-group segments."""

    def __init__(self, groups: list[tuple[int, list[torch.Tensor]]]) -> None:
        first = groups[0][1][0]
        self.device, self.dtype = first.device, first.dtype
        total = sum(p.numel() for _, params in groups for p in params)
        self.flat = torch.empty(total, dtype=self.dtype, device=self.device)
        self.params: list[torch.Tensor] = []
        self.segments: list[Segment] = []
        self.grad: torch.Tensor | None = None
        offset = 0
        token = next(_TOKENS)
        with torch.no_grad():
            for group_index, params in groups:
                size = sum(p.numel() for p in params)
                segment = Segment(group_index, params, self.flat[offset : offset + size])
                for j, p in enumerate(params):
                    view = segment.flat[segment.tensor_slice(j)].view(p.shape)
                    view.copy_(p)
                    p.data = _own_slot(view, (id(p), token))  # the parameter now lives in the flat buffer
                    if p.numel():
                        _PLACED[id(p)] = (token, p.data_ptr())
                self.segments.append(segment)
                self.params.extend(params)
                offset += size
        self.ptrs = list(map(DATA_PTR, self.params))
        # when this buffer goes (a rebuild, the optimizer deleted), parameters left in it get their own memory;
        # not at interpreter exit, where that would only copy memory about to be freed
        weakref.finalize(self, _retire, token, self.params).atexit = False

    def ensure_grad(self) -> torch.Tensor:
        """The flat gradient buffer (allocated on first use), with per-tensor views for ``.grad``."""
        if self.grad is None:
            self.grad = torch.zeros_like(self.flat)
            offset = 0
            for segment in self.segments:
                n = int(segment.starts[-1])
                g = segment.grad = self.grad[offset : offset + n]
                views = [g[segment.tensor_slice(j)].view(s) for j, s in enumerate(segment.shapes)]
                segment.grad_views = [_own_slot(v) for v in views]  # torch.save of one .grad: only its bytes
                base, item = g.data_ptr(), g.element_size()
                segment.flat_grad_ptrs = base + segment.starts[:-1] * item
                offset += n
        return self.grad

    def point_grads_to_flat(self) -> None:
        """``zero_grad(set_to_none=False)``: zero the flat gradient and make every existing ``.grad`` a view of it.

        Parameters whose ``.grad`` is None keep None (as torch.optim); autograd then accumulates in place.
        """
        grad = self.ensure_grad()
        views = [v for segment in self.segments for v in segment.grad_views]
        grads = list(map(GRAD, self.params))
        grad.zero_()
        if all(map(operator.is_, grads, views)):
            return
        for p, g, view in zip(self.params, grads, views, strict=True):
            if g is None or g is view:
                continue
            if g.is_sparse:
                g.zero_()
            else:
                p.grad = view
