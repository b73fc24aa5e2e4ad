"""Run a kernel over a flat range in equal contiguous pieces, one per thread.

Where torch has loaded libgomp (:data:`adamlab.kernels.runtime.OPENMP`), the pieces run on OpenMP's threads,
the ones torch's own operations use: :func:`run_openmp` calls ``GOMP_parallel`` with the module's
``omp_entry`` (a numba ``cfunc``) and a block of int64 words (addresses and sizes), and each thread of the team
takes its piece. Threads of our own would share the cores with torch's OpenMP workers, which spin after each
torch operation before they sleep (runtime.py has the measurement). Elsewhere (no libgomp, or a process forked
after this module was imported: libgomp's team does not survive a fork), kernels compiled with ``nogil=True`` run
on a pool of Python threads. numba's ``prange`` would do either but makes every kernel several times slower to
compile, and kernels are generated per rule structure. A piece below :data:`MIN_PER_THREAD` elements is not
worth waking a thread for. The pieces are the same either way, and every kernel is elementwise, so the results
are too.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

#: fewest elements per thread (below it, waking a thread costs more than it saves)
MIN_PER_THREAD = 1 << 15

_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_LOCK = threading.Lock()
_PID = os.getpid()


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


def openmp() -> bool:
    """Whether :func:`run_openmp` can run here: libgomp was in the process when the runtime was imported, and
    this is that process, not a child forked from it."""
    from adamlab.kernels import runtime  # imported at first use: by then torch (and its libgomp) is loaded

    return runtime.OPENMP and os.getpid() == _PID


def run_openmp(entry: Any, words: np.ndarray, threads: int) -> None:
    """``entry(words)`` on a team of ``threads`` OpenMP threads (this one included); ``words`` is the entry's
    int64 argument block, and keeps the arrays it points to alive for the call (the caller holds them)."""
    from adamlab.kernels import runtime

    if words.dtype != np.int64 or not words.flags.c_contiguous:
        raise ValueError("words must be a contiguous int64 array")
    runtime.GOMP_PARALLEL(entry.address, words.ctypes.data, threads, 0)  # ctypes releases the GIL


def address(a: np.ndarray, dtype: Any) -> int:
    """The data address of ``a``, which must be C-contiguous and of ``dtype`` (kernels read it as such)."""
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous {np.dtype(dtype)} array; got {a.dtype}, shape {a.shape}")
    return a.ctypes.data


def count_nonfinite_split(flat: np.ndarray, grad_ptrs: np.ndarray, starts: np.ndarray, threads: int) -> int:
    """How many tensor pieces hold a NaN or ±inf (0 when every gradient is finite), on up to ``threads`` threads."""
    from adamlab.kernels import runtime

    n = int(starts[-1])
    count = len(pieces(n, threads))
    if count > 1 and openmp():
        if flat.dtype not in (np.float32, np.float64):
            raise ValueError(f"flat must be float32 or float64; got {flat.dtype}")
        grad_ptrs, starts = np.ascontiguousarray(grad_ptrs, np.int64), np.ascontiguousarray(starts, np.int64)
        out = np.zeros(count, dtype=np.int64)
        words = np.array([n, len(starts), address(grad_ptrs, np.int64), address(starts, np.int64),
                          out.ctypes.data, flat.itemsize], dtype=np.int64)  # fmt: skip
        run_openmp(runtime.count_nonfinite_entry, words, count)
        return int(out.sum())
    return sum(run_split(runtime.count_nonfinite, n, (flat, grad_ptrs, starts), threads))
