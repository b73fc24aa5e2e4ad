"""Side-by-side timing: every case runs once per round, rounds repeat, best-of-N per case.

On a shared, noisy machine interleaving the cases (instead of timing one case N times, then the
next) exposes them to the same background load; the minimum is the least-disturbed run.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable


def round_robin(
    cases: dict[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    inner: dict[str, int] | None = None,
    progress: str | None = None,
    before: Callable[[], object] | None = None,
) -> dict[str, dict[str, float]]:
    """Time each zero-argument callable; returns {name: {"best": s, "median": s, "faults": f}}
    per call, where ``faults`` is the median count of minor page faults per call (fresh pages
    for temporaries: a step that allocates full-size temporaries pays for them here).

    ``inner[name]`` calls are made per timing sample (for sub-millisecond cases).
    ``before`` runs untimed before every sample (e.g. a cache flush, so that no case inherits
    a warm last-level cache from the case before it).
    """
    inner = inner or {}
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    faults: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(repeats):
        if progress:
            print(f"  {progress}: round {r + 1}/{repeats}", flush=True)
        for name, fn in cases.items():
            k = inner.get(name, 1)
            if before is not None:
                before()
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
            faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / k)
    return {
        k: {"best": min(s), "median": statistics.median(s), "faults": statistics.median(faults[k])}
        for k, s in samples.items()
    }


def best_of(fn: Callable[[], object], repeats: int = 7, inner: int = 1, warmup: int = 1) -> float:
    return round_robin({"x": fn}, repeats=repeats, warmup=warmup, inner={"x": inner})["x"]["best"]


_FLUSH: list = []


def flush_caches() -> None:
    """Stream over 1 GiB (more than this host's 480 MiB L3) so the next sample starts from DRAM,
    as an optimizer step does in training (forward/backward evict the optimizer state)."""
    if not _FLUSH:
        import torch

        _FLUSH.append(torch.zeros(256 * 1024 * 1024))
    _FLUSH[0].add_(1.0)
