"""One optimizer step, timed: adamlab's fast path against torch.optim and the machine's streaming ceiling.

Everything runs in one process, side by side: for each layout and rule the cases are timed round-robin
(best of N after a warm-up), with the last-level cache flushed before every sample, so that each step
starts from memory as it does in training, where forward and backward evict the optimizer's arrays.

Cases per (layout, rule):

- ``torch for-loop`` / ``torch foreach`` / ``torch fused``: torch.optim's own implementations (fused only
  where torch has one), over separate tensors as a model has them, sharing one state;
- ``adamlab``: ``adamlab.torch`` with its defaults, gradients fresh from autograd (what
  ``zero_grad()`` + ``backward()`` gives), ``nonfinite="raise"`` (one extra read of the gradients);
- ``adamlab, grads in flat buffer``: after ``zero_grad(set_to_none=False)`` the gradients live in the flat
  buffer (``nonfinite="raise"``);
- ``adamlab, grads in flat buffer, nonfinite=ignore``: the same semantics as torch.optim (no check);
- ``ceiling``: an in-place streaming pass over arrays of the same total size with the rule's pattern of
  streams (the gradient read; parameters and each state array read and written): Adam 28 B/param.

Reported: Mparam/s, GB/s (at the rule's bytes per parameter), percent of the ceiling, the ratio to torch
fused (to torch foreach for rules torch has no fused kernel for) and the peak extra memory of one step
(resident-set high-water mark above the resident set before the step, with large blocks returned to the
system on free).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from adamlab.lab.model_shapes import layout_shapes, total_params

DEFAULT_LAYOUTS = ("1x50M", "100x500k", "10000x1k", "resnet50", "gpt2-small")
#: the largest layout: each case holds ~20 float32 arrays of its size (parameters, gradients and state of
#: torch's and adamlab's optimizers, and the ceiling's arrays), so 300M parameters need ~24 GB; 1x256M
#: is the GPU target layout of issue 4
MAX_PARAMS = 300_000_000
MAX_TENSORS = 1_000_000
MAX_REPEAT = 1000


@dataclasses.dataclass(frozen=True)
class RuleCase:
    """A rule as the benchmark runs it: the adamlab and torch.optim classes with their options."""

    name: str
    adamlab: str
    torch: str
    options: dict[str, Any]
    arrays: int  # arrays read and written per element: the parameters and each state array
    fused: bool  # torch.optim has a fused CPU kernel for it

    @property
    def bytes_per_param(self) -> int:
        """float32: the gradient read, each array read and written."""
        return 4 * (1 + 2 * self.arrays)


RULES: dict[str, RuleCase] = {
    r.name: r
    for r in (
        RuleCase("adam", "Adam", "Adam", {}, 3, True),
        RuleCase("adamw", "AdamW", "AdamW", {}, 3, True),
        RuleCase("amsgrad", "Adam", "Adam", {"amsgrad": True}, 4, True),
        RuleCase("adamax", "Adamax", "Adamax", {}, 3, False),
        RuleCase("nadam", "NAdam", "NAdam", {}, 3, False),
        RuleCase("radam", "RAdam", "RAdam", {}, 3, False),
        RuleCase("sgd", "SGD", "SGD", {"lr": 0.01}, 1, True),
        RuleCase("momentum", "SGD", "SGD", {"lr": 0.01, "momentum": 0.9}, 2, True),
        RuleCase("nesterov", "SGD", "SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}, 2, True),
        RuleCase("adagrad", "Adagrad", "Adagrad", {}, 2, True),
        RuleCase("rmsprop", "RMSprop", "RMSprop", {}, 2, False),
        RuleCase("adadelta", "Adadelta", "Adadelta", {}, 3, False),
    )
}


# --- measurement helpers ------------------------------------------------------------------------------


class CacheFlush:
    """Stream over 1 GiB (more than any last-level cache here) so that the next sample starts from memory."""

    def __init__(self, enabled: bool = True) -> None:
        self.buffer = torch.zeros(256 * 1024 * 1024) if enabled else None

    def __call__(self) -> None:
        if self.buffer is not None:
            self.buffer.add_(1.0)


def _status_mib(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def return_freed_memory() -> bool:
    """Make glibc hand large blocks back to the system on free, so a step's temporaries show in the RSS."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 128 * 1024))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def peak_extra_mib(fn: Callable[[], Any]) -> float | None:
    """Resident-set high-water mark during ``fn()`` above the resident set before it (Linux), in MiB."""
    before = _status_mib("VmRSS:")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark to the current RSS
    except OSError:
        return None
    fn()
    peak = _status_mib("VmHWM:")
    return None if before is None or peak is None else max(0.0, peak - before)


def time_cases(
    cases: dict[str, tuple[Callable[[], Any] | None, Callable[[], Any]]],
    repeat: int,
    flush: Callable[[], None],
    warmup: int = 1,
) -> dict[str, dict[str, float]]:
    """Best and median seconds per case; each case is ``(setup or None, step)``, timed round-robin.

    Python's cyclic garbage collector is off while timing (as in ``timeit``): a collection triggered by one
    case's garbage would otherwise land in whichever case runs next.
    """
    for setup, fn in cases.values():
        for _ in range(warmup):
            if setup is not None:
                setup()
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, (setup, fn) in cases.items():
                if setup is not None:
                    setup()
                flush()
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return {name: {"best": min(s), "median": statistics.median(s)} for name, s in samples.items()}


# --- the streaming ceiling -------------------------------------------------------------------------------


def _stream_kernels() -> dict[int, Callable[..., None]] | None:
    """numba passes ``a[i] += g[i]`` over 1..4 read-write arrays and one read-only array, in parallel."""
    try:
        from numba import njit, prange
    except ImportError:
        return None

    @njit(parallel=True, error_model="numpy")
    def one(g, a):
        for i in prange(g.shape[0]):
            a[i] += g[i]

    @njit(parallel=True, error_model="numpy")
    def two(g, a, b):
        for i in prange(g.shape[0]):
            x = g[i]
            a[i] += x
            b[i] += x

    @njit(parallel=True, error_model="numpy")
    def three(g, a, b, c):
        for i in prange(g.shape[0]):
            x = g[i]
            a[i] += x
            b[i] += x
            c[i] += x

    @njit(parallel=True, error_model="numpy")
    def four(g, a, b, c, d):
        for i in prange(g.shape[0]):
            x = g[i]
            a[i] += x
            b[i] += x
            c[i] += x
            d[i] += x

    return {1: one, 2: two, 3: three, 4: four}


class Ceiling:
    """The streaming probes over ``n`` elements (numba; torch ``add_`` calls if numba is missing)."""

    def __init__(self, n: int, max_arrays: int) -> None:
        self.arrays = [torch.full((n,), 1e-6) for _ in range(max_arrays + 1)]
        self.views = [a.numpy() for a in self.arrays]
        self.kernels = _stream_kernels()
        if self.kernels is not None:
            for k in range(1, max_arrays + 1):
                self.kernels[k](*(v[:16] for v in self.views[: k + 1]))  # compile outside the timing

    def probe(self, arrays: int) -> Callable[[], None]:
        if self.kernels is not None:
            fn, views = self.kernels[arrays], self.views[: arrays + 1]
            return lambda: fn(*views)
        g, rest = self.arrays[0], self.arrays[1 : arrays + 1]
        return lambda: [a.add_(g) for a in rest]


# --- one (layout, rule) ------------------------------------------------------------------------------------


def _torch_optimizers(rule: RuleCase, params: list[torch.Tensor]) -> dict[str, torch.optim.Optimizer]:
    """torch.optim's for-loop, foreach and fused variants over the same tensors and one shared state."""
    cls = getattr(torch.optim, rule.torch)
    base = cls(params, foreach=True, **rule.options)
    base.step()  # creates the state, shared below (no extra copies)
    variants = {"torch for-loop": {"foreach": False}, "torch foreach": {"foreach": True}}
    if rule.fused:
        variants["torch fused"] = {"fused": True}
    out = {}
    for label, extra in variants.items():
        opt = cls(params, **rule.options, **extra)
        opt.state = base.state
        out[label] = opt
    return out


Cases = dict[str, tuple[Callable[[], Any] | None, Callable[[], Any]]]


def make_cases(layout: str, rule: RuleCase, ceiling: Ceiling) -> tuple[Cases, float]:
    """The cases of one (layout, rule), each ``(setup or None, step)``, and adamlab's first-step seconds."""
    import adamlab.torch

    gen = torch.Generator().manual_seed(0)
    ref = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in layout_shapes(layout)]
    for p in ref:
        p.grad = torch.randn(p.shape, generator=gen).mul_(1e-2)
    cases: Cases = {label: (None, opt.step) for label, opt in _torch_optimizers(rule, ref).items()}

    ours_params = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    fresh = [p.grad.clone() for p in ref]
    ours = getattr(adamlab.torch, rule.adamlab)(ours_params, **rule.options)

    def fresh_grads() -> None:  # what zero_grad() + backward() leave: new gradient tensors
        for p, g in zip(ours_params, fresh, strict=True):
            p.grad = g
        ours.nonfinite = "raise"

    def flat_grads(nonfinite: str) -> Callable[[], None]:
        def setup() -> None:
            if ours_params[0].grad is fresh[0]:
                ours.zero_grad(set_to_none=False)  # gradients become views of the flat gradient buffer
                for buffer in ours._fast.buffers:
                    buffer.grad.fill_(1e-3)
            ours.nonfinite = nonfinite

        return setup

    fresh_grads()
    t0 = time.perf_counter()
    ours.step()  # moves the parameters into the flat buffer; loads (or compiles) the kernel
    first_step = time.perf_counter() - t0
    cases["adamlab"] = (fresh_grads, ours.step)
    cases["adamlab, grads in flat buffer"] = (flat_grads("raise"), ours.step)
    cases["adamlab, grads in flat buffer, nonfinite=ignore"] = (flat_grads("ignore"), ours.step)
    cases["ceiling"] = (None, ceiling.probe(rule.arrays))
    return cases, first_step


def time_one(layout: str, rule: RuleCase, repeat: int, flush: Callable[[], None], ceiling: Ceiling) -> dict[str, Any]:
    """Time the cases of one (layout, rule); returns its result (rows without memory yet)."""
    n = total_params(layout_shapes(layout))
    cases, first_step = make_cases(layout, rule, ceiling)
    times = time_cases(cases, repeat, flush)
    ceiling_rate = n / times["ceiling"]["best"] / 1e6
    reference = "torch fused" if rule.fused else "torch foreach"
    reference_rate = n / times[reference]["best"] / 1e6
    rows = []
    for label, t in times.items():
        rate = n / t["best"] / 1e6
        rows.append(
            {
                "case": label,
                "ms": t["best"] * 1e3,
                "median ms": t["median"] * 1e3,
                "Mparam/s": rate,
                "GB/s": rate * rule.bytes_per_param / 1e3,
                "% ceiling": 100 * rate / ceiling_rate,
                "x torch": rate / reference_rate,
                "peak extra MiB": None,
                "peak extra % of params": None,
            }
        )
    return {
        "layout": layout,
        "rule": rule.name,
        "tensors": len(layout_shapes(layout)),
        "params": n,
        "bytes per param": rule.bytes_per_param,
        "x torch is relative to": reference,
        "adamlab first step s": first_step,
        "ceiling Mparam/s": ceiling_rate,
        "rows": rows,
    }


def measure_memory(result: dict[str, Any], ceiling: Ceiling) -> None:
    """Fill in the peak extra memory of one step per case (after a warm-up step), in MiB and % of params."""
    cases, _ = make_cases(result["layout"], RULES[result["rule"]], ceiling)
    param_mib = result["params"] * 4 / 2**20
    for row in result["rows"]:
        setup, fn = cases[row["case"]]
        if setup is not None:
            setup()
        fn()  # warm: the first step allocates state
        if setup is not None:
            setup()
        extra = peak_extra_mib(fn)
        row["peak extra MiB"] = extra
        row["peak extra % of params"] = None if extra is None else 100 * extra / param_mib


def run_benchmark(
    layouts: Iterable[str] = DEFAULT_LAYOUTS,
    rules: Iterable[str] = tuple(RULES),
    repeat: int = 5,
    flush: bool = True,
    memory: bool = True,
    on_pair: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Time every (layout, rule) pair, then measure each step's peak extra memory in a second pass (it
    changes how malloc returns memory, which must not touch the timings); returns
    ``{"meta": ..., "results": [...]}`` (see the module doc). ``on_pair(phase, result)`` is called after each
    pair of each phase ("time", then "memory")."""
    layouts, rules = list(layouts), list(rules)
    for name in rules:
        if name not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}; got {name!r}")
    for name in layouts:
        check_layout(name)  # validate before anything runs
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise ValueError(f"repeat must be an integer from 1 to {MAX_REPEAT:,}; got {repeat!r}")
    with _out_of_memory_as_memory_error():
        return _run_benchmark(layouts, rules, repeat, flush, memory, on_pair)


def _run_benchmark(
    layouts: list[str],
    rules: list[str],
    repeat: int,
    flush: bool,
    memory: bool,
    on_pair: Callable[[str, dict[str, Any]], None] | None,
) -> dict[str, Any]:
    meta = _machine()
    flusher = CacheFlush(flush)
    results = []
    for phase in ("time", "memory") if memory else ("time",):
        if phase == "memory":
            meta["memory returned on free"] = return_freed_memory()
        for layout in layouts:
            ceiling = Ceiling(total_params(layout_shapes(layout)), max(RULES[r].arrays for r in rules))
            for name in rules:
                if phase == "time":
                    result = time_one(layout, RULES[name], repeat, flusher, ceiling)
                    results.append(result)
                else:
                    result = next(r for r in results if (r["layout"], r["rule"]) == (layout, name))
                    measure_memory(result, ceiling)
                gc.collect()  # free this pair's tensors (optimizers hold reference cycles) before the next
                if on_pair is not None:
                    on_pair(phase, result)
            del ceiling
    meta["load average at end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {"meta": meta, "results": results}


def check_layout(name: str) -> int:
    """Validate a layout name and its size (at most :data:`MAX_TENSORS` tensors and :data:`MAX_PARAMS`
    parameters) without building a huge list of shapes; returns its number of parameters."""
    count = re.fullmatch(r"\s*(\d+)x.*", name)
    if count is not None and int(count.group(1)) > MAX_TENSORS:
        raise ValueError(f"layout {name!r} has more than {MAX_TENSORS:,} tensors (the most the benchmark takes)")
    n = total_params(layout_shapes(name))
    if n > MAX_PARAMS:
        raise ValueError(f"layout {name!r} has {n:,} parameters; the benchmark takes at most {MAX_PARAMS:,}")
    return n


@contextlib.contextmanager
def _out_of_memory_as_memory_error() -> Iterator[None]:
    """torch reports a failed CPU allocation as a RuntimeError: make it a MemoryError with a short message."""
    try:
        yield
    except RuntimeError as error:
        if "can't allocate memory" not in str(error) and "DefaultCPUAllocator" not in str(error):
            raise
        raise MemoryError("the benchmark's arrays do not fit in this machine's memory: use smaller --layouts") from None


def _machine() -> dict[str, Any]:
    from adamlab.torch.fast_path import load_kernels

    kernels = load_kernels()
    numba_info = None
    if kernels is not None:
        import numba

        numba_info = {"version": numba.__version__, "threads": numba.get_num_threads()}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "numba": numba_info,
        "numpy": np.__version__,
        "cpu count": os.cpu_count(),
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "load average at start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# --- the table ---------------------------------------------------------------------------------------------


def format_table(report: dict[str, Any]) -> str:
    """A markdown table of every row, one block per (layout, rule)."""
    meta = report["meta"]
    numba_text = f"numba {meta['numba']['version']}" if meta["numba"] else "no numba (generic flat path)"
    lines = [
        f"torch {meta['torch']} ({meta['torch threads']} threads), {numba_text}, {meta['cpu count']} CPUs, "
        f"{meta['date']}; best of N, cache flushed before every sample",
        "",
        "| layout | rule | case | ms | Mparam/s | GB/s | % of ceiling | × torch fused (foreach) "
        "| peak extra MiB (% of params) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in report["results"]:
        layout = f"{result['layout']} ({result['tensors']:,} tensors)"
        for r in result["rows"]:
            extra = r["peak extra MiB"]
            extra_text = "n/a" if extra is None else f"{extra:.1f} ({r['peak extra % of params']:.1f}%)"
            rule = f"{result['rule']} ({result['bytes per param']} B)"
            ratio = (
                f"{r['x torch']:.2f}" if result["x torch is relative to"] == "torch fused" else f"({r['x torch']:.2f})"
            )
            lines.append(
                f"| {layout} | {rule} | {r['case']} | {r['ms']:.2f} | {r['Mparam/s']:.0f} | {r['GB/s']:.1f} "
                f"| {r['% ceiling']:.0f}% | {ratio} | {extra_text} |"
            )
    return "\n".join(lines)
