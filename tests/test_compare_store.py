"""compare's runs in a store: reused when run again, the same bytes from local processes as in this process."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adamlab.lab.compare import compare
from adamlab.lab.store import RunStore


def _curves(cmp) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {k: r.losses.tobytes() + (b"" if r.path is None else r.path.tobytes()) for k, r in cmp.optimizers.items()}


def test_function_comparison_is_stored_and_reused(tmp_path: Path) -> None:
    grid = np.logspace(-3, -1, 4)
    first = compare("rosenbrock", ["adam", "sgd"], steps=50, grid=grid, store=tmp_path)
    assert first.runs == {"computed": 8, "reused": 0}  # 4 lrs × 2 optimizers; the best run is the shown one
    assert len(RunStore(tmp_path)) == 8
    again = compare("rosenbrock", ["adam", "sgd"], steps=50, grid=grid, store=tmp_path)
    assert again.runs == {"computed": 0, "reused": 8}
    assert _curves(again) == _curves(first)
    assert {k: r.lr for k, r in again.optimizers.items()} == {k: r.lr for k, r in first.optimizers.items()}
    other = compare("rosenbrock", ["adam", "sgd"], steps=60, grid=grid, store=tmp_path)  # another budget: new runs
    assert other.runs["computed"] == 8 and len(RunStore(tmp_path)) == 16


def test_learning_comparison_in_processes_matches_serial(tmp_path: Path) -> None:
    args = dict(epochs=1, grid=[0.01, 0.3], seeds=2)
    serial = compare("digits", ["adam", "nesterov"], executor="serial", **args)
    local = compare("digits", ["adam", "nesterov"], executor=2, store=tmp_path, **args)
    assert local.runs == {"computed": 8, "reused": 0}  # 2 lrs + 2 seeds per optimizer
    assert _curves(local) == _curves(serial)
    assert compare("digits", ["adam", "nesterov"], executor=2, store=tmp_path, **args).runs["reused"] == 8
