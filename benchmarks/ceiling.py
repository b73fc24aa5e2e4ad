"""Streaming-bandwidth ceiling for an optimizer step's byte pattern.

An fp32 Adam step reads theta, g, m, v and writes theta, m, v: 4 reads + 3 writes of 4 bytes =
28 B/param, in one pass. The most honest ceiling is a pass with the same shape: seven
concurrent in-place streams, nothing else. Three probes, timed side by side:

* ``numba 4R3W``: one prange pass ``x = b[i]; a[i] += x; c[i] += x; d[i] += x`` over four
  arrays (reads a, b, c, d; writes a, c, d) - the Adam pattern with trivial arithmetic. This is
  the reference ceiling: same stream count, same read/write mix, same in-place (no
  write-allocate) behaviour.
* ``torch add_``: ``a.add_(b)`` (2 reads + 1 write, 12 B/elem), torch's own vectorised,
  multi-threaded streaming loop; converted to params/s by bytes (x 12/28). A cross-check that
  numba's loop is not the bottleneck; its 2:1 read/write mix flatters it slightly.
* ``numpy add 1 thread``: ``np.add(a, b, out=a)`` is single-threaded - what one core streams.

Numbers are Mparam/s at ``bytes_per_param`` (28 for fp32 Adam; AMSGrad 36, SGD momentum 20).
Note: this host's L3 is large (480 MiB), so a 10M-param layout (4 x 40 MB) would stay in cache
between samples; by default the cache is flushed (1 GiB streamed) before every sample, as
``kernel_choice.py`` does, and the ceiling is measured at the same total size as the kernel.

Usage: ``python benchmarks/ceiling.py [--params 50000000] [--repeats 7] [--no-flush]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _timing import flush_caches, round_robin

READS, WRITES = 4, 3


def _numba_kernels():
    from numba import njit, prange

    @njit(parallel=True, fastmath=False, cache=False)
    def stream_4r3w(a, b, c, d):
        for i in prange(a.shape[0]):
            x = b[i]
            a[i] += x
            c[i] += x
            d[i] += x

    return stream_4r3w


def ceiling_cases(n: int, dtype=torch.float32) -> tuple[dict, dict, list]:
    """Callables for the probes over n-element arrays, and bytes each moves per element.

    Returns (cases, bytes_per_elem, keepalive). Values grow by +1 per call; harmless.
    """
    stream_4r3w = _numba_kernels()
    arrays = [torch.full((n,), 1e-3, dtype=dtype) for _ in range(4)]
    a, b, c, d = (t.numpy() for t in arrays)
    ta, tb = arrays[0], arrays[1]
    item = arrays[0].element_size()
    cases = {
        "ceiling numba 4R3W": lambda: stream_4r3w(a, b, c, d),
        "ceiling torch add_": lambda: ta.add_(tb),
        "ceiling numpy add 1 thread": lambda: np.add(c, d, out=c),
    }
    bytes_per_elem = {
        "ceiling numba 4R3W": (READS + WRITES) * item,
        "ceiling torch add_": 3 * item,
        "ceiling numpy add 1 thread": 3 * item,
    }
    stream_4r3w(a[:16], b[:16], c[:16], d[:16])  # compile outside the timing
    return cases, bytes_per_elem, arrays


def mparams_per_s(seconds: float, n: int, bytes_per_elem: float, bytes_per_param: float) -> float:
    """Convert one probe's time to Mparam/s of a kernel that moves bytes_per_param."""
    gbytes_per_s = n * bytes_per_elem / seconds / 1e9
    return gbytes_per_s * 1e9 / bytes_per_param / 1e6


def measure(n: int, repeats: int = 7, bytes_per_param: float = 28.0, flush: bool = True) -> dict[str, dict[str, float]]:
    cases, bpe, _keep = ceiling_cases(n)
    times = round_robin(cases, repeats=repeats, warmup=1, before=flush_caches if flush else None)
    out = {}
    for name, t in times.items():
        out[name] = {
            "seconds": t["best"],
            "GB/s": n * bpe[name] / t["best"] / 1e9,
            "Mparam/s": mparams_per_s(t["best"], n, bpe[name], bytes_per_param),
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", type=int, default=50_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--bytes-per-param", type=float, default=28.0)
    ap.add_argument("--no-flush", action="store_true", help="keep the L3 cache warm between samples")
    args = ap.parse_args(argv)
    import numba

    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), numba {numba.__version__} "
        f"({numba.get_num_threads()} threads), {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    print(
        f"{args.params:,d} elements per array, best of {args.repeats}, "
        f"{'warm L3' if args.no_flush else 'L3 flushed before each sample'}",
        flush=True,
    )
    res = measure(args.params, args.repeats, args.bytes_per_param, flush=not args.no_flush)
    print(f"| probe | ms | GB/s | Mparam/s at {args.bytes_per_param:g} B/param |")
    print("|---|---|---|---|")
    for name, r in res.items():
        print(f"| {name} | {r['seconds'] * 1e3:.2f} | {r['GB/s']:.1f} | {r['Mparam/s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
