"""Where runs execute: local processes (default), a Dask cluster, or any ``concurrent.futures.Executor``.

:func:`run_tasks` takes tasks (a module-level function, its picklable payload, and the configurations of the
records it produces), skips every task whose records are all in the :class:`~adamlab.lab.store.RunStore`,
sends the others to the executor, and stores each result as soon as it arrives (so an interrupted sweep
keeps what finished). A progress bar on stderr counts runs.

``executor`` may be:

- ``None`` or ``"local"``: a :class:`concurrent.futures.ProcessPoolExecutor` with one process per core
  (at most one per task), started with ``spawn`` (no torch state is forked), each on one thread;
- an integer n >= 1: n local processes;
- ``"serial"``: in this process, one task after another;
- a Dask scheduler address (``"tcp://10.0.0.5:8786"`` or ``"10.0.0.5:8786"``): a
  ``dask.distributed.Client`` connected to it (``pip install 'adamlab[lab]'``);
- a ``dask.distributed.Client`` (its ``get_executor()`` is used), or any ``concurrent.futures.Executor``:
  used as given and left running.

A task computes the same bytes wherever it runs, as long as the machines run the same adamlab and torch on
the same instruction set (torch picks its CPU kernels per machine: AVX2 and AVX-512 can round differently).
Workers must be able to import adamlab, and read the data directory when a figure reads one.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from adamlab.lab.store import RunStore

__all__ = ["RunCounts", "Task", "open_executor", "run_tasks"]


@dataclasses.dataclass(frozen=True)
class Task:
    """``function(payload)`` returns one ``{"result": ..., "meta": ...}`` per entry of ``configs``, in order."""

    function: Callable[[Any], list[dict[str, Any]]]
    payload: Any
    configs: tuple[dict[str, Any], ...]


@dataclasses.dataclass
class RunCounts:
    """How many runs were computed now and how many were found in the store."""

    computed: int = 0
    reused: int = 0

    def __iadd__(self, other: RunCounts) -> RunCounts:
        self.computed += other.computed
        self.reused += other.reused
        return self

    def to_dict(self) -> dict[str, int]:
        return {"computed": self.computed, "reused": self.reused}


def _init_worker() -> None:
    """Worker initializer: Ctrl-C is handled by the parent, which stops the workers itself; numba's kernels run
    on one thread (the pool runs one task per core: more threads per worker only fight over the cores, and
    measured here they made each worker's first run 2-3 times slower)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(1)
    else:
        os.environ["NUMBA_NUM_THREADS"] = "1"


def _is_dask_client(obj: Any) -> bool:
    return callable(getattr(obj, "get_executor", None)) and callable(getattr(obj, "scheduler_info", None))


@contextlib.contextmanager
def open_executor(executor: Any, tasks: int | None = None) -> Iterator[cf.Executor | None]:
    """The executor described by ``executor`` (None means serial), for at most ``tasks`` tasks when given.

    Pools and clients made here are shut down on exit; an executor or client passed in is left running, so
    a caller that runs several sweeps opens one pool for all of them.
    """
    if (isinstance(executor, str) and executor == "serial") or tasks == 0:
        yield None
        return
    local = executor is None or (isinstance(executor, str) and executor == "local")
    if local or (isinstance(executor, int) and not isinstance(executor, bool)):
        workers = (os.cpu_count() or 1) if local else executor
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"executor: a number of local processes must be >= 1; got {executor!r}")
        pool = cf.ProcessPoolExecutor(
            max_workers=workers if tasks is None else min(workers, tasks),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
        )
        try:
            yield pool
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
        return
    if isinstance(executor, str):
        client = _connect(executor)
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    if _is_dask_client(executor):
        yield executor.get_executor()
        return
    if isinstance(executor, cf.Executor):
        yield executor
        return
    raise ValueError(
        "executor must be None or 'local' (local processes), an integer number of processes, 'serial', a Dask "
        f"scheduler address, a dask.distributed.Client or a concurrent.futures.Executor; got {executor!r}"
    )


def _connect(address: str) -> Any:
    if ":" not in address:
        raise ValueError(f"executor: {address!r} is not one of local, serial or a Dask address such as tcp://HOST:8786")
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("a Dask scheduler needs dask.distributed: pip install 'adamlab[lab]'") from None
    try:
        return Client(address, timeout=20)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"could not reach the Dask scheduler at {address}: {exc}") from None


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the worker processes now (Ctrl-C should not wait for running runs)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=5)


def run_tasks(
    tasks: Sequence[Task],
    store: RunStore | None = None,
    executor: Any = None,
    *,
    description: str = "runs",
    progress: bool | None = None,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[list[dict[str, Any]]], RunCounts]:
    """Run ``tasks`` (see the module docstring); returns the results of each task and the run counts.

    Each entry of the returned list holds the results (dicts) of one task, in the order of its ``configs``,
    whether computed now or read from ``store``. ``progress``: show a bar on stderr (None: when stderr is a
    terminal). ``on_done(i)`` is called when task i is finished (found in the store, or computed).
    """
    counts = RunCounts()
    results: list[list[dict[str, Any]] | None] = [None] * len(tasks)
    todo = []
    for i, task in enumerate(tasks):
        found = [store.get(c) for c in task.configs] if store is not None else [None]
        if all(f is not None for f in found):
            results[i] = found  # type: ignore[assignment]
            counts.reused += len(found)
            if on_done is not None:
                on_done(i)
        else:
            todo.append(i)
    total = sum(len(t.configs) for t in tasks)
    with _bar(total, counts.reused, description, progress) as bar:

        def finish(i: int, out: list[dict[str, Any]]) -> None:
            task = tasks[i]
            if len(out) != len(task.configs):
                raise RuntimeError(f"a task returned {len(out)} results for {len(task.configs)} runs")
            for config, item in zip(task.configs, out, strict=True):
                if store is not None:
                    store.put(config, item["result"], item.get("meta"))
            results[i] = [item["result"] for item in out]
            counts.computed += len(out)
            bar.update(len(out))
            if on_done is not None:
                on_done(i)

        with open_executor(executor, len(todo)) as pool:
            if pool is None:
                for i in todo:
                    finish(i, tasks[i].function(tasks[i].payload))
            else:
                futures = {pool.submit(tasks[i].function, tasks[i].payload): i for i in todo}
                try:
                    for future in cf.as_completed(futures):
                        finish(futures[future], future.result())
                except BrokenProcessPool:
                    raise RuntimeError(
                        "a worker process died: out of memory, killed, or started from a script without the "
                        "`if __name__ == '__main__':` guard that spawned processes need (or use executor='serial')"
                    ) from None
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    return results, counts  # type: ignore[return-value]


@contextlib.contextmanager
def _bar(total: int, done: int, description: str, enabled: bool | None) -> Iterator[Any]:
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    with tqdm(total=total, initial=done, desc=description, unit="run", file=sys.stderr, disable=not show,
              leave=False, dynamic_ncols=True) as bar:  # fmt: skip
        yield bar


def timed(function: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``{"result": function(), "meta": {"seconds": wall time}}``: what a task returns for one run."""
    started = time.perf_counter()
    result = function()
    return {"result": result, "meta": {"seconds": round(time.perf_counter() - started, 3)}}
