"""The PyTorch face's fast path: every eligible parameter in a flat buffer, one kernel call per param group.

Eligible: a dense, contiguous float32/float64 CPU parameter whose state dtype is its own dtype and whose
memory no other object shares (see :func:`~adamlab.torch.flat_buffer.movable`). Everything else
(other devices, low-precision or complex parameters, sparse gradients, ``state_dtype`` overrides) stays on
the plain path, parameter by parameter, with unchanged behaviour.

Per group, the math comes from one of two places, never from anywhere else:

- the kernel generated from the rule's own ``update`` (:func:`adamlab.kernels.kernel_for`), in the arithmetic
  of this process's torch CPU kernels (:mod:`adamlab.torch.arithmetic`), so that it computes torch's bits;
  its coefficient rows are the rule's ``coefficients``, per tensor where step counts or scalar state differ;
- otherwise the generic flat path: the rule's own ``step`` applied to the flat views in chunks (small
  enough that its temporaries stay within ~5% of the parameters), e.g. for ``averaging=`` or when numba is
  not installed.

The optimizer's ``state`` keeps torch.optim's per-parameter dicts; their tensors are views of the flat state.
Step counts live in an array and are written into the dicts only when ``optimizer.state`` is read; a dict
changed from outside (``import_state``, a user edit) is noticed at the next step and copied in.
"""

from __future__ import annotations

import dataclasses
import operator
import weakref
from typing import Any

import numpy as np
import torch

from adamlab.kernels import Kernel, kernel_for
from adamlab.kernels.threads import count_nonfinite_split
from adamlab.ops.torch import TORCH_OPS
from adamlab.torch.arithmetic import torch_arithmetic
from adamlab.torch.flat_buffer import DATA_PTR, GRAD, FlatBuffer, Segment, SparseGradient, movable, state_fits
from adamlab.torch.plain_path import SPARSE_MODES
from adamlab.torch.step_count import FLOAT32_EXACT, scalar_dtype

_FAST_DTYPES = (torch.float32, torch.float64)
#: plain tensors only: tensor subclasses (DTensor, FSDP2's sharded parameters ...) stay on the plain path
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def load_kernels() -> Any:
    """The kernels' arithmetic for this process, or None when numba is disabled or no kernel model reproduces
    torch's CPU rounding (then the generic flat path runs: torch's own operations on the flat buffers)."""
    try:
        import numba

        if numba.config.DISABLE_JIT:
            return None
    except ImportError:
        return None
    return torch_arithmetic()


@dataclasses.dataclass(frozen=True)
class RuleInfo:
    """What the fast path needs to know about one rule object."""

    state_names: tuple[str, ...]  # per-element state entries
    scalar_names: tuple[str, ...]  # 0-d per-tensor entries (NAdam's mu_product)
    scalar_dtypes: tuple[torch.dtype, ...]  # their dtypes, as the layout declares them
    kernels: dict[torch.dtype, Kernel | None]  # per dtype; no entry for a dtype: the generic flat path


@dataclasses.dataclass
class Work:
    """One segment's share of one step."""

    segment: Segment
    rule: Any
    info: RuleInfo
    grad_ptrs: np.ndarray
    has: np.ndarray | None  # tensors with a gradient (None: all)
    keep: list[torch.Tensor]  # contiguous copies of non-contiguous gradients, alive for the step


class FastPath:
    """Flat buffers and kernels behind one :class:`~adamlab.torch.optimizer.RuleOptimizer`."""

    def __init__(self, optimizer: Any) -> None:
        # a weak reference back: the optimizer owns this object, and `del optimizer` frees both at once
        # (with a strong one they would form a cycle, freed only by Python's cycle collector)
        self._opt = weakref.ref(optimizer)
        self.kernels = load_kernels()
        self.buffers: list[FlatBuffer] | None = None  # None: (re)build at the next step
        self.plain: list[list[torch.Tensor]] = []  # per group, the parameters left on the plain path
        self.snapshot: list[list[int]] = []  # per group, the data pointers the layout was built with
        self.members: list[list[torch.Tensor]] = []  # per group, the parameters it was built with
        self.state_read = False  # optimizer.state was handed out: check the dicts at the next step
        self.steps_synced = True  # the dicts' "step" entries are up to date
        self.excluded: set[int] = set()  # ids of parameters whose state could not be adopted
        self._infos: dict[int, tuple[Any, RuleInfo]] = {}
        self._slots: dict[tuple[int, tuple[str, ...]], tuple[np.ndarray, ...]] = {}
        self._retiring: list[FlatBuffer] = []  # the previous layout, kept until the next one has been built

    @property
    def opt(self) -> Any:
        opt = self._opt()
        if opt is None:  # pragma: no cover - the optimizer owns this object
            raise RuntimeError("the optimizer of this fast path is gone")
        return opt

    # --- layout ------------------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Rebuild the buffers at the next step (param groups, dtypes or state were changed)."""
        if self.buffers is not None:
            self._dissolve()
            self._retiring += self.buffers
        self.buffers = None

    def drop(self) -> None:
        """Forget the buffers without touching ``optimizer.state`` (it was replaced); the next step rebuilds."""
        if self.buffers is not None:
            self._retiring += self.buffers
        self.buffers = None
        self.excluded.clear()  # a new state may fit where the old one did not

    def info(self, rule: Any) -> RuleInfo:
        cached = self._infos.get(id(rule))
        if cached is None or cached[0] is not rule:
            layout = rule.layout()
            names, scalars = layout.of_kind("element"), layout.of_kind("scalar")
            like = torch.zeros((), dtype=torch.float64)
            dtypes = tuple(TORCH_OPS.float_dtype(layout.entry(n).dtype, like) for n in scalars)
            kernels: dict[torch.dtype, Kernel | None] = {}
            if self.kernels is not None and layout.elementwise and rule.elementwise:
                for dtype in _FAST_DTYPES:
                    kernels[dtype] = kernel_for(rule, str(dtype).removeprefix("torch."), self.kernels)
            if len(self._infos) > 256:  # a schedule makes a new rule per lr: keep the cache small
                self._infos.clear()
            cached = self._infos[id(rule)] = (rule, RuleInfo(names, scalars, dtypes, kernels))
        return cached[1]

    def _eligible(self, p: torch.Tensor, d: Any, info: RuleInfo, group: dict[str, Any]) -> bool:
        if type(p) not in _PLAIN_TYPES or p.device.type != "cpu" or p.dtype not in _FAST_DTYPES:
            return False
        if p.layout != torch.strided or not p.is_contiguous() or id(p) in self.excluded:
            return False
        if self.opt.compute_dtype(p, group) != p.dtype or group.get("differentiable") or group.get("capturable"):
            return False
        if d and not state_fits(d, tuple(p.shape), info.state_names, info.scalar_names):
            self.excluded.add(id(p))  # a malformed state: the plain path reports it as before
            return False
        return movable(p)

    def _build(self) -> None:
        groups = self.opt.param_groups
        state = self.opt._raw_state
        by_key: dict[tuple, list[tuple[int, list[torch.Tensor]]]] = {}
        self.plain, self.snapshot = [], []
        counts: dict[int, int] = {}
        for group in groups:
            for p in group["params"]:
                counts[id(p)] = counts.get(id(p), 0) + 1
        for i, group in enumerate(groups):
            rule = self.opt.rule_for(group)
            info = self.info(rule)
            flat = rule.elementwise and rule.layout().elementwise  # (Adafactor's factored state: plain path)
            plain, runs = [], {}
            for p in group["params"]:
                if flat and counts[id(p)] == 1 and self._eligible(p, state.get(p), info, group):
                    runs.setdefault((p.device, p.dtype), []).append(p)
                else:
                    plain.append(p)
            for key, params in runs.items():
                by_key.setdefault(key, []).append((i, params))
            self.plain.append(plain)
        self.buffers = [FlatBuffer(runs) for runs in by_key.values()]
        self.snapshot = [_data_ptrs(group["params"]) for group in groups]
        self.members = [list(group["params"]) for group in groups]
        for buffer in self.buffers:
            for segment in buffer.segments:
                info = self.info(self.opt.rule_for(groups[segment.group_index]))
                scalars = dict(zip(info.scalar_names, info.scalar_dtypes, strict=True))
                segment.allocate_state(info.state_names, scalars, scalar_dtype(groups[segment.group_index]))
                for j, p in enumerate(segment.params):
                    if state.get(p):
                        state[p] = segment.adopt(j, state[p])
                segment.all_started = bool(segment.started.all())
        self._slots.clear()
        self._retiring = []  # the old buffers go: parameters not moved into the new ones get their own memory

    def _dissolve(self) -> None:
        """Give every fast parameter's state its own tensors again (the buffers are about to go)."""
        state = self.opt._raw_state
        for buffer in self.buffers or ():
            for segment in buffer.segments:
                if not self.steps_synced:
                    segment.sync_steps()
                for j, p in enumerate(segment.params):
                    d = state.get(p)
                    if d is not None and d is segment.dicts[j]:
                        state[p] = self.copied_entry(d, int(segment.steps[j]))
        self.steps_synced = True

    def _layout_ok(self) -> bool:
        """True while every group lists the same parameter objects, each still at its address (an identity
        and a ``data_ptr`` check per parameter: catches ``.data`` reassignment and edits of
        ``group["params"]``, including new Parameter objects over the same memory)."""
        groups = self.opt.param_groups
        if self.buffers is None or len(groups) != len(self.snapshot):
            return False
        for group, ptrs, params in zip(groups, self.snapshot, self.members, strict=True):
            listed = group["params"]
            if len(listed) != len(params) or not all(map(operator.is_, listed, params)):
                return False
            if _data_ptrs(listed) != ptrs:
                return False
        return True

    # --- optimizer.state ------------------------------------------------------------------------------

    def live_counts(self) -> dict[int, int]:
        """id(state dict) → exact step count, for every state dict that lives in the flat arrays."""
        return {id(d): int(n) for b in self.buffers or () for seg in b.segments
                for d, n in zip(seg.dicts, seg.steps.tolist(), strict=True) if d is not None}  # fmt: skip

    def copied_entry(self, d: dict[str, Any], count: int) -> dict[str, Any]:
        """A state dict with tensors of its own, its step exact (float64 past 2^24, where float32 is not)."""
        out = {k: v.clone() if torch.is_tensor(v) else v for k, v in d.items()}
        step = d.get("step")
        dtype = step.dtype if torch.is_tensor(step) else scalar_dtype()
        if dtype == torch.float32 and count > FLOAT32_EXACT:
            dtype = torch.float64
        out["step"] = torch.tensor(float(count), dtype=dtype)
        return out

    @torch.compiler.disable
    def sync_state(self) -> None:
        """Bring the step counts of the state dicts up to date and watch for edits (``optimizer.state`` read)."""
        if self.steps_synced:  # (writing them again would undo an edit made since)
            self.state_read = self.buffers is not None
            return
        for buffer in self.buffers or ():
            for segment in buffer.segments:
                segment.sync_steps()
        self.steps_synced = True
        self.state_read = self.buffers is not None

    def _check_state(self) -> None:
        """Copy in state dicts that were replaced, edited or removed from outside since the last step."""
        state = self.opt._raw_state
        for buffer in self.buffers:
            for segment in buffer.segments:
                edited = segment.edited_steps()
                for j, p in enumerate(segment.params):
                    d = state.get(p)
                    if segment.started[j] and not edited[j] and segment.is_live(j, d):
                        continue
                    if not d:
                        if segment.started[j]:
                            segment.forget(j)
                    elif segment.adoptable(j, d):
                        state[p] = segment.adopt(j, d)
                    else:  # malformed: hand the parameter to the plain path, which reports it
                        self.excluded.add(id(p))
                        self.invalidate()
                        return

    # --- the step -------------------------------------------------------------------------------------

    def prepare(self) -> list[Work]:
        """Check the layout (rebuilding if needed) and collect each segment's gradients; changes nothing."""
        if not self._layout_ok():
            self.invalidate()
            self._build()
        if self.state_read:
            self.state_read = False
            self._check_state()
            if self.buffers is None:
                self._build()
        work = []
        groups = self.opt.param_groups
        owner = type(self.opt).__name__
        for buffer in self.buffers:
            for segment in buffer.segments:
                rule = self.opt.rule_for(groups[segment.group_index])
                info = self.info(rule)
                if (info.state_names, info.scalar_names) != (segment.state_names, segment.scalar_names):
                    self.invalidate()  # the group's options changed its state (e.g. amsgrad switched on)
                    return self.prepare()
                try:
                    ptrs, has, keep = segment.grad_table(owner)
                except SparseGradient as sparse:
                    if SPARSE_MODES.get(self.opt.entry.name) is None:
                        raise RuntimeError(f"{owner} does not support sparse gradients") from None
                    self.excluded.update(id(p) for p in sparse.params)  # from now on on the plain path
                    self.invalidate()
                    return self.prepare()
                if has is None or has.any():
                    work.append(Work(segment, rule, info, ptrs, has, keep))
        return work

    def all_finite(self, work: list[Work]) -> bool:
        """True when no gradient of the fast path holds a NaN or ±inf."""
        for w in work:
            seg = w.segment
            if self.kernels is not None:
                ptrs, starts = _as_one_tensor(w) or (w.grad_ptrs, seg.starts)
                bad = count_nonfinite_split(seg.flat_np, ptrs, starts, self._threads(seg))
                if bad:
                    return False
                continue
            for p in _stepped(seg.params, w.has):  # no numba: torch's check, tensor by tensor
                if not torch.isfinite(p.grad).all():
                    return False
        return True

    def run(self, work: list[Work]) -> None:
        """Apply each segment's step (after :meth:`prepare` and the non-finite check)."""
        self.steps_synced = not work
        for w in work:
            seg, has = w.segment, w.has
            if has is None:
                seg.steps += 1
            else:
                seg.steps[has] += 1
            if not seg.all_started:
                self._start(seg, w.rule, has)
            kernel = w.info.kernels.get(seg.flat.dtype)
            if kernel is not None:
                self._run_kernel(w, kernel)
            else:
                self._run_generic(w)
            torch.autograd.graph.increment_version(_stepped(seg.params, has))

    def _start(self, seg: Segment, rule: Any, has: np.ndarray | None) -> None:
        """Give tensors stepped for the first time the rule's initial state."""
        new = ~seg.started if has is None else has & ~seg.started
        index = np.flatnonzero(new)
        if index.size == 0:
            return
        state = self.opt._raw_state
        everything = index.size == len(seg.params)
        runs = [(0, len(seg.params))] if everything else [(int(j), int(j) + 1) for j in index]
        for ja, jb in runs:
            for a, b in _chunks(int(seg.starts[ja]), int(seg.starts[jb]), self._chunk(seg)):
                init = rule.init(seg.flat[a:b])
                for name in seg.state_names:
                    seg.state_rows[name][a:b].copy_(init[name])
            if seg.scalar_names:
                first = int(seg.starts[ja])
                init = rule.init(seg.flat[first : first + 1])
                for name in seg.scalar_names:
                    seg.scalars[name][ja:jb] = init[name]
        for j in index:
            state[seg.params[j]] = seg.start(int(j))
        seg.all_started = bool(seg.started.all())

    def _run_kernel(self, w: Work, kernel: Kernel) -> None:
        seg = w.segment
        coefs = coefficient_rows(w.rule, kernel, seg, w.has)
        states = self._slot_arrays(seg, kernel.state_names)
        one = _as_one_tensor(w) if coefs.shape[0] == 1 else None
        ptrs, starts = one or (w.grad_ptrs, seg.starts)
        kernel.run(seg.flat_np, states, ptrs, starts, coefs, self._threads(seg))

    def _slot_arrays(self, seg: Segment, slots: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        key = (id(seg), slots)
        arrays = self._slots.get(key)
        if arrays is None:
            arrays = self._slots[key] = tuple(seg.state_np[name] for name in slots)
        return arrays

    def _run_generic(self, w: Work) -> None:
        """The rule's own ``step`` on chunks of the flat views: runs of tensors at the same step count."""
        seg, rule = w.segment, w.rule
        next(b for b in self.buffers if seg in b.segments).ensure_grad()
        grads = list(map(GRAD, seg.params))
        for j in np.flatnonzero(w.has) if w.has is not None else range(len(seg.params)):
            if grads[j] is not seg.grad_views[j]:  # gather: the rule needs the gradient contiguous too
                seg.grad_views[j].copy_(grads[j])
        grad = seg.grad
        per_tensor = bool(seg.scalar_names)
        for ja, jb in _runs(seg.steps, w.has, per_tensor):
            t = int(seg.steps[ja])
            for a, b in _chunks(int(seg.starts[ja]), int(seg.starts[jb]), self._chunk(seg)):
                state = {name: row[a:b] for name, row in seg.state_rows.items()}
                state.update({name: t_[ja] for name, t_ in seg.scalars.items()})
                new_param, new_state = rule.step(seg.flat[a:b], grad[a:b], state, t)
                seg.flat[a:b].copy_(new_param)
                for name, value in new_state.items():
                    (seg.state_rows[name][a:b] if name in seg.state_rows else seg.scalars[name][ja]).copy_(value)

    def _chunk(self, seg: Segment) -> int:
        total = sum(int(b.flat.numel()) for b in self.buffers)
        return max(1 << 16, min(1 << 20, total // 200))

    def _threads(self, seg: Segment) -> int:
        return max(1, torch.get_num_threads())  # (kernels.threads leaves small segments on one thread)

    # --- zero_grad(set_to_none=False) -------------------------------------------------------------------

    def point_grads_to_flat(self) -> list[torch.Tensor] | None:
        """Zero the flat gradients and point ``.grad`` there; returns the plain-path params (None: not built)."""
        if not self._layout_ok():
            return None
        for buffer in self.buffers:
            buffer.point_grads_to_flat()
        return [p for plain in self.plain for p in plain]


def coefficient_rows(rule: Any, kernel: Kernel, seg: Segment, has: np.ndarray | None) -> np.ndarray:
    """The kernel's coefficient rows for one step of ``seg`` (one row when every stepped tensor shares its step
    count and scalar state, else one per tensor), from the rule's own ``coefficients``; writes each stepped
    tensor's new scalar state (NAdam's μ product) back into the segment."""
    live = np.arange(len(seg.params)) if has is None else np.flatnonzero(has)
    steps = seg.steps[live]
    scalars = {name: seg.scalars_np[name][live] for name in seg.scalar_names}
    uniform = steps.size == 0 or (steps == steps[0]).all() and all((v == v[0]).all() for v in scalars.values())
    if uniform:
        keys, inverse = (live[:1] if live.size else np.zeros(1, dtype=np.int64)), np.zeros(live.size, dtype=np.int64)
    else:
        table = np.stack([steps.astype(np.float64), *(v.astype(np.float64) for v in scalars.values())], axis=1)
        _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
        keys = live[first]
    ks = []
    for j in keys.tolist():
        t = int(seg.steps[j]) if live.size else 1
        ks.append(rule.coefficients(t, {name: seg.scalars_np[name][j : j + 1].reshape(()) for name in scalars}))
    for name in scalars:  # the new scalar state of every stepped tensor (rounded to its dtype, as torch does)
        values = np.array([np.asarray(k[name]) for k in ks], dtype=seg.scalars_np[name].dtype)
        seg.scalars_np[name][live] = values[inverse.reshape(-1)]
    rows = kernel.rows(ks)
    if uniform and has is None:
        return rows
    out = np.repeat(rows[:1], len(seg.params), axis=0)
    out[live] = rows[inverse.reshape(-1)]
    return out


def _as_one_tensor(w: Work) -> tuple[np.ndarray, np.ndarray] | None:
    """(gradient address, starts) that present the whole segment to a kernel as one tensor, when every
    gradient is its view of the flat gradient buffer (then the gradients are as contiguous as the
    parameters and the kernel needs no per-tensor walk); None otherwise. The caller checks that one row
    of coefficients serves every tensor."""
    seg = w.segment
    if w.has is not None or seg.flat_grad_ptrs is None or w.grad_ptrs is not seg.flat_grad_ptrs:
        return None
    return seg.flat_grad_ptrs[:1], seg.whole_starts


def _data_ptrs(params: list[torch.Tensor]) -> list[int]:
    try:
        return list(map(DATA_PTR, params))
    except RuntimeError:  # a tensor without storage (a sparse parameter): its identity stands in
        return [_data_ptr_or_id(p) for p in params]


def _data_ptr_or_id(p: torch.Tensor) -> int:
    try:
        return p.data_ptr()
    except RuntimeError:
        return -id(p)


def _stepped(params: list[torch.Tensor], has: np.ndarray | None) -> list[torch.Tensor]:
    return params if has is None else [p for p, h in zip(params, has.tolist(), strict=True) if h]


def _chunks(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(hi, a + size)) for a in range(lo, hi, size)]


def _runs(steps: np.ndarray, has: np.ndarray | None, per_tensor: bool) -> list[tuple[int, int]]:
    """Maximal runs [ja, jb) of consecutive stepped tensors with one step count (single tensors if per_tensor)."""
    runs: list[tuple[int, int]] = []
    start = None
    for j in range(len(steps)):
        live = has is None or bool(has[j])
        if start is not None and (not live or per_tensor or steps[j] != steps[start]):
            runs.append((start, j))
            start = None
        if live and start is None:
            start = j
    if start is not None:
        runs.append((start, len(steps)))
    return runs
