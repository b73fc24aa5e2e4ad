"""Kernels run on the OpenMP threads torch uses (``GOMP_parallel`` of torch's libgomp), with the same results as
on one thread or on adamlab's own thread pool; without libgomp, or in a forked child, they take the pool."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamlab import rules
from adamlab.kernels import Arithmetic, kernel_for, runtime, threads

pytestmark = pytest.mark.skipif(not runtime.OPENMP, reason="torch's libgomp is not in this process")

N = 3 * threads.MIN_PER_THREAD + 12_345  # several pieces, none a multiple of the vector width


@pytest.fixture
def adam_case():
    rule = rules.Adam(preset="torch", weight_decay=0.01)
    kernel = kernel_for(rule, "float32", Arithmetic(fma=True, sqrt="exact"))
    rng = np.random.default_rng(0)
    sizes = [1, 7, 40_000, N - 40_008]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    ptrs = np.array([g.ctypes.data for g in grads], dtype=np.int64)
    ptrs[1] = 0  # a tensor without a gradient stays as it is
    p0 = rng.standard_normal(N).astype(np.float32)
    coefs = np.array([kernel.row(rule.coefficients(t, {})) for t in (1, 1, 2, 3)])
    return kernel, p0, grads, ptrs, starts, coefs


def _run(kernel, p0, ptrs, starts, coefs, n_threads):
    p = p0.copy()
    states = tuple(np.full(N, 0.25, np.float32) for _ in kernel.state_names)
    kernel.run(p, states, ptrs, starts, coefs, n_threads)
    return np.concatenate([p, *states])


def test_the_openmp_team_gives_the_bits_of_one_thread(adam_case, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel, p0, grads, ptrs, starts, coefs = adam_case
    one = _run(kernel, p0, ptrs, starts, coefs, 1)
    launched = []
    real = threads.run_openmp
    monkeypatch.setattr("adamlab.kernels.run_openmp", lambda *a: (launched.append(a[2]), real(*a))[1])
    monkeypatch.setattr("adamlab.kernels.run_split", lambda *a: pytest.fail("took the thread pool"))
    team = _run(kernel, p0, ptrs, starts, coefs, 3)
    assert launched == [3] and np.array_equal(one.view(np.uint32), team.view(np.uint32))
    assert np.array_equal(team[starts[1]:starts[2]], p0[starts[1]:starts[2]])  # no gradient: untouched
    assert not np.array_equal(team[: starts[1]], p0[: starts[1]])


def test_a_forked_child_takes_the_pool(adam_case, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel, p0, grads, ptrs, starts, coefs = adam_case
    one = _run(kernel, p0, ptrs, starts, coefs, 1)
    monkeypatch.setattr(threads, "_PID", -1)  # as in a child forked after the runtime was imported
    assert not threads.openmp()
    monkeypatch.setattr(threads, "run_openmp", lambda *a: pytest.fail("GOMP_parallel in a forked child"))
    assert np.array_equal(_run(kernel, p0, ptrs, starts, coefs, 2), one)


def test_wrong_sizes_are_refused_before_any_thread_starts(adam_case) -> None:
    kernel, p0, grads, ptrs, starts, coefs = adam_case
    p = p0.copy()
    states = tuple(np.zeros(N - 1, np.float32) for _ in kernel.state_names)
    with pytest.raises(ValueError, match="starts"):
        kernel.run(p, states, ptrs, starts, coefs, 2)
    assert np.array_equal(p, p0)
    wrong_dtype = tuple(np.zeros(N, np.float64) for _ in kernel.state_names)  # never read as float32
    with pytest.raises(ValueError, match="float32"):
        kernel.run(p, wrong_dtype, ptrs, starts, coefs, 2)
    assert np.array_equal(p, p0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [None, 5, N - 3, 40_003])
def test_the_nonfinite_count_on_the_team(dtype, bad) -> None:
    g = np.random.default_rng(1).standard_normal(N).astype(dtype)
    if bad is not None:
        g[bad] = np.nan if bad % 2 else np.inf
    starts = np.array([0, 40_000, N], dtype=np.int64)
    ptrs = np.array([g.ctypes.data, g.ctypes.data + 40_000 * g.itemsize], dtype=np.int64)
    flat = np.empty(N, dtype)
    on_team = threads.count_nonfinite_split(flat, ptrs, starts, 3)
    on_pool = sum(threads.run_split(runtime.count_nonfinite, N, (flat, ptrs, starts), 3))
    assert (on_team > 0) == (bad is not None) and on_team == on_pool


def test_torch_runs_after_the_team_with_its_own_threads() -> None:
    """The team is torch's: a torch operation after a kernel step still runs, on torch's thread count."""
    before = torch.get_num_threads()
    rule = rules.SGD(preset="torch", lr=0.1)
    kernel = kernel_for(rule, "float32", Arithmetic(fma=True, sqrt="exact"))
    g = np.ones(N, np.float32)
    p = np.zeros(N, np.float32)
    coefs = np.array([kernel.row(rule.coefficients(1, {}))])
    kernel.run(p, (), np.array([g.ctypes.data], np.int64), np.array([0, N], np.int64), coefs, 2)
    assert np.all(p == np.float32(-0.1))
    x = torch.arange(1_000_000, dtype=torch.float64)
    assert torch.get_num_threads() == before and float(x.sum()) == 999_999 * 1_000_000 / 2
