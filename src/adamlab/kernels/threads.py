"""Run a kernel over a flat range in equal contiguous pieces, one per thread.

Kernels are compiled with ``nogil=True``, so Python threads run their pieces at once; numba's ``prange`` would
do the same but makes every kernel several times slower to compile, and kernels are generated per rule
structure. A piece below :data:`MIN_PER_THREAD` elements is not worth waking a thread for.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

#: fewest elements per thread (below it, waking a thread costs more than it saves)
MIN_PER_THREAD = 1 << 15

_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_LOCK = threading.Lock()


def _pool(size: int) -> concurrent.futures.ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or size > _POOL_SIZE:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL, _POOL_SIZE = concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="adamlab"), size
        return _POOL


def pieces(n: int, threads: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into at most ``threads`` equal contiguous pieces of at least :data:`MIN_PER_THREAD`."""
    count = max(1, min(threads, n // MIN_PER_THREAD))
    per = (n + count - 1) // count
    return [(lo, min(n, lo + per)) for lo in range(0, n, per)] if n else [(0, 0)]


def run_split(kernel: Callable[..., Any], n: int, args: tuple[Any, ...], threads: int) -> list[Any]:
    """``kernel(*args, lo, hi)`` for each piece of ``range(n)``; returns the results in piece order."""
    parts = pieces(n, threads)
    if len(parts) == 1:
        return [kernel(*args, *parts[0])]
    pool = _pool(len(parts) - 1)
    futures = [pool.submit(kernel, *args, lo, hi) for lo, hi in parts[1:]]
    first = kernel(*args, *parts[0])  # this thread takes the first piece
    return [first, *(f.result() for f in futures)]
