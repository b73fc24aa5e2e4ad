"""The two bounds behind issue 4's unmet CPU targets, measured side by side in one process.

1. **The gradient check.** ``nonfinite="raise"`` (the default) reads every gradient once before the step,
   so that a NaN changes nothing. If the step is bound by its *reads*, that extra read costs its full
   share, whatever the kernel does. Probes over ``--params`` elements (numba, in parallel):

   - ``step streams``: read g, a, b, c and write a, b, c: the step benchmark's Adam ceiling (28 B/param);
   - ``step reads only``: read g, a, b, c, write nothing (16 B/param). About the time of the full
     streams means the writes come free and the reads set the pace;
   - ``gradient check``: adamlab's own check (``kernels.runtime.count_nonfinite``) over g (4 B/param).

   Best reachable share of the ceiling for a checked step = t(step) / (t(step) + t(check)).

2. **Per-tensor work with 10,000 small tensors.** Each step touches every parameter object three times:
   its data pointer (a reassigned ``.data`` must be found), its ``.grad`` and its autograd version
   counter. Timed cold, like the step, over ``--tensors`` × 1k parameters. An estimate of the best time:
   the ceiling of the same bytes + those passes, against torch's fused Adam on the same tensors.

The last-level cache is flushed (1 GiB streamed) before every sample, as in ``adamlab bench step``; that
flush evicts the Python objects too, as a backward pass does in training.

Usage: ``python benchmarks/step_bounds.py [--params 50000000] [--tensors 10000] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from numba import njit, prange

from adamlab.kernels.runtime import count_nonfinite
from adamlab.kernels.threads import run_split
from adamlab.lab.step_benchmark import CacheFlush, Ceiling
from adamlab.torch.flat_buffer import DATA_PTR, GRAD


@njit(parallel=True, fastmath={"reassoc"}, error_model="numpy")
def reads_only(g, a, b, c):  # pragma: no cover - timed, not tested
    """Read four arrays, write nothing (the sum only keeps the loads alive)."""
    acc = g.dtype.type(0)
    for i in prange(g.shape[0]):
        acc += g[i] + a[i] + b[i] + c[i]
    return acc


def best_ms(fn: Callable[[], object], flush: CacheFlush, repeat: int) -> tuple[float, float]:
    """(best, median) milliseconds of ``fn`` over ``repeat`` cold samples, garbage collector off."""
    fn()
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            flush()
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e3)
    finally:
        gc.enable()
    return min(samples), statistics.median(samples)


def check_bound(n: int, flush: CacheFlush, repeat: int) -> list[tuple[str, float, float, str]]:
    ceiling = Ceiling(n, 3)
    g, a, b, c = ceiling.views[:4]
    reads_only(g[:16], a[:16], b[:16], c[:16])
    starts = np.array([0, n], dtype=np.int64)
    ptrs = np.array([g.ctypes.data], dtype=np.int64)
    threads = torch.get_num_threads()
    step = best_ms(ceiling.probe(3), flush, repeat)
    reads = best_ms(lambda: reads_only(g, a, b, c), flush, repeat)
    check = best_ms(lambda: run_split(count_nonfinite, int(starts[-1]), (g, ptrs, starts), threads), flush, repeat)
    gbs = lambda nbytes, ms: f"{nbytes * n / ms / 1e6:.1f} GB/s"  # noqa: E731
    bound = step[0] / (step[0] + check[0])
    return [
        ("step streams (28 B: 4 reads, 3 writes)", *step, gbs(28, step[0])),
        ("step reads only (16 B)", *reads, gbs(16, reads[0])),
        ("gradient check (4 B)", *check, gbs(4, check[0])),
        ("=> best checked Adam step, % of ceiling", step[0] + check[0], float("nan"), f"{100 * bound:.0f}%"),
    ]


def tensor_bound(count: int, flush: CacheFlush, repeat: int) -> list[tuple[str, float, float, str]]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(1000, generator=gen)) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(1000, generator=gen).mul_(1e-2)
    fused = torch.optim.Adam(params, lr=1e-3, fused=True)
    ceiling = Ceiling(count * 1000, 3)
    rows = [("torch.optim.Adam(fused=True)", *best_ms(fused.step, flush, repeat), "")]
    kernel = best_ms(ceiling.probe(3), flush, repeat)
    rows.append(("streaming ceiling, same bytes", *kernel, ""))
    passes = {
        "data pointers (find a reassigned .data)": lambda: list(map(DATA_PTR, params)),
        ".grad of every parameter": lambda: list(map(GRAD, params)),
        "version counters (autograd)": lambda: torch._C._increment_version(params),
    }
    for label, fn in passes.items():
        rows.append((label, *best_ms(fn, flush, repeat), ""))

    def all_three() -> None:
        list(map(DATA_PTR, params))
        list(map(GRAD, params))
        torch._C._increment_version(params)

    together = best_ms(all_three, flush, repeat)
    rows.append(("the three passes in one sample", *together, ""))
    floor = kernel[0] + together[0]
    ratio = rows[0][1] / floor
    rows.append(("=> ceiling + the passes (an estimate)", floor, float("nan"), f"{ratio:.1f}x torch fused"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=int, default=50_000_000)
    parser.add_argument("--tensors", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.params < 1_000_000 or args.tensors < 1 or args.repeat < 1:
        parser.error("--params must be >= 1,000,000 and --tensors, --repeat >= 1")
    flush = CacheFlush()
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads); best of {args.repeat}, cache flushed")
    for title, rows in (
        (f"1. the gradient check, 1 x {args.params:,} float32", check_bound(args.params, flush, args.repeat)),
        (f"2. per-tensor work, {args.tensors:,} x 1k float32", tensor_bound(args.tensors, flush, args.repeat)),
    ):
        print(f"\n{title}\n\n| probe | best ms | median ms | |\n|---|---:|---:|---|")
        for label, best, median, note in rows:
            med = "" if median != median else f"{median:.2f}"
            print(f"| {label} | {best:.2f} | {med} | {note} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
