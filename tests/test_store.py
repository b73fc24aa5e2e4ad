"""The run store and the executors: exact records, atomic writes, resumed sweeps, local processes and Dask."""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adamlab.lab.executor import Task, open_executor, run_tasks
from adamlab.lab.paper import Budget, run_figure
from adamlab.lab.store import RunStore, canonical_json, config_key, decode, encode

OPTIMIZERS = ("adam", "adagrad", "rmsprop", "nesterov", "adadelta")
#: Fig. 2 at toy size: 10 tuning runs and 5 re-runs of 2 epochs of 3 minibatches on a 32-32 network
TINY = Budget("test", epochs=2, seeds=2, examples=400, scale={"hidden": [32, 32]},
              grids={k: (1e-3, 1e-2) for k in OPTIMIZERS})  # fmt: skip
SRC = str(Path(__file__).resolve().parents[1] / "src")


def results_of(folder: Path) -> dict[str, object]:
    """{record file name: its "result" entry} (the part that must be bitwise identical; "meta" holds timings)."""
    return {p.name: json.loads(p.read_text())["result"] for p in sorted((folder / "runs").glob("*.json"))}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    run_figure("fig2", TINY, out=out, executor="serial")
    return out


# --- records --------------------------------------------------------------------------------------------


def test_arrays_round_trip_bit_for_bit() -> None:
    values = np.array([0.1, -0.0, np.nan, np.inf, -np.inf, 5e-324, np.nextafter(1.0, 2.0)])
    back = decode(json.loads(json.dumps(encode({"a": values, "b": np.float32([1.5, np.nan]), "n": math.nan}))))
    assert back["a"].tobytes() == values.tobytes()
    assert back["b"].dtype == np.float32 and back["b"].tobytes() == np.float32([1.5, np.nan]).tobytes()
    assert math.isnan(back["n"])
    with pytest.raises(ValueError, match="a record holds arrays of"):
        encode(np.zeros(2, dtype=np.complex128))
    with pytest.raises(ValueError, match="a record holds arrays of"):
        decode({"__array__": "object", "shape": [1], "data": ""})


def test_key_is_canonical_and_refuses_nan() -> None:
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 1.5})
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    with pytest.raises(ValueError, match="finite numbers"):
        config_key({"lr": math.nan})


def test_store_put_get_and_invalid_files(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    config = {"run": 1, "lr": 0.1}
    assert store.get(config) is None
    path = store.put(config, {"cost": np.arange(3.0), "final": 2.0}, {"seconds": 1.0})
    assert path.name == f"{config_key(config)}.json" and len(store) == 1
    assert store.get(config)["cost"].tolist() == [0.0, 1.0, 2.0]
    assert store.meta(config) == {"seconds": 1.0}
    assert not list((tmp_path / "runs").glob(".tmp-*"))  # nothing left of the temporary file
    path.write_text(path.read_text()[:-20])  # a damaged record counts as missing and is recomputed
    assert store.get(config) is None
    record = {"format": 1, "config": {"run": 2}, "result": {}}
    path.write_text(json.dumps(record))  # a file under the key of another configuration is not trusted
    assert store.get(config) is None



def test_a_record_being_written_is_not_a_json_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a record is written, ``runs/*.json`` lists only finished records: a sweep's progress (or a test
    counting records) never counts a temporary file that an interrupt then removes."""
    store = RunStore(tmp_path / "runs")
    store.put({"run": 0}, {"final": 1.0})
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def fsync_and_look(fd: int) -> None:  # called with the temporary file written, before it is moved
        real_fsync(fd)
        seen.append(sorted(p.name for p in (tmp_path / "runs").glob("*.json")))
        assert any(p.name.startswith(".tmp-") for p in (tmp_path / "runs").iterdir())

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    store.put({"run": 1}, {"final": 2.0})
    assert seen == [[f"{config_key({'run': 0})}.json"]] and len(store) == 2

# --- executors ------------------------------------------------------------------------------------------


def test_bad_executor_is_a_value_error() -> None:
    for bad in ("nonsense", 0, object()):
        with pytest.raises(ValueError, match="executor"), open_executor(bad):
            pass


def test_local_processes_give_the_serial_bytes(uninterrupted: Path, tmp_path: Path) -> None:
    result = run_figure("fig2", TINY, out=tmp_path, executor=2)
    assert result.counts.to_dict() == {"computed": 15, "reused": 0}
    assert results_of(tmp_path) == results_of(uninterrupted)


def test_second_run_reuses_every_record(uninterrupted: Path) -> None:
    before = results_of(uninterrupted)
    again = run_figure("fig2", TINY, out=uninterrupted, executor="serial")
    assert again.counts.to_dict() == {"computed": 0, "reused": 15}
    assert results_of(uninterrupted) == before
    assert set(again.to_dict()["optimizers"]) == set(OPTIMIZERS)


def _interrupt() -> None:
    time.sleep(0.5)  # the runs before it are finished and stored first
    raise KeyboardInterrupt


class _InterruptAfter(cf.ThreadPoolExecutor):
    """Runs n tasks (one at a time), then KeyboardInterrupt, as Ctrl-C in the middle of a sweep."""

    def __init__(self, n: int) -> None:
        super().__init__(max_workers=1)
        self.left = n

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.left -= 1
        return super().submit(fn if self.left >= 0 else _interrupt, *(args if self.left >= 0 else ()), **kwargs)


def test_interrupted_sweep_resumes_to_the_same_bytes(uninterrupted: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_figure("fig2", TINY, out=tmp_path, executor=_InterruptAfter(4))
    kept = len(list((tmp_path / "runs").glob("*.json")))
    assert 1 <= kept < 15
    resumed = run_figure("fig2", TINY, out=tmp_path, executor="serial")
    assert resumed.counts.reused == kept and resumed.counts.computed == 15 - kept
    assert results_of(tmp_path) == results_of(uninterrupted)


def test_killed_sweep_resumes_to_the_same_bytes(uninterrupted: Path, tmp_path: Path) -> None:
    """SIGKILL a real sweep once it has written records, start it again: the same bytes as never stopped."""
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import time\nfrom test_store import TINY\nfrom adamlab.lab.paper import protocol, run_figure\n"
        "run = protocol.train_task\n"
        "protocol.train_task = lambda payload: (time.sleep(0.3), run(payload))[1]  # slow enough to kill part way\n"
        "run_figure('fig2', TINY, out=sys.argv[3], executor='serial')\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    child = subprocess.Popen([sys.executable, "-c", script, SRC, str(Path(__file__).parent), str(tmp_path)], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((tmp_path / "runs").glob("*.json"))) < 3 and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = list((tmp_path / "runs").glob("*.json"))
    assert 3 <= len(kept) < 15, "the sweep should have been killed part way"
    for p in kept:
        json.loads(p.read_text())  # every file that is there is a whole record
    resumed = run_figure("fig2", TINY, out=tmp_path, executor="serial")
    assert resumed.counts.reused == len(kept)
    assert results_of(tmp_path) == results_of(uninterrupted)


def test_ctrl_c_stops_local_workers_at_once(tmp_path: Path) -> None:
    """SIGINT to the process group (what Ctrl-C sends) during `adamlab paper` with local worker processes: exit
    130 at once, no worker left running, whole records only."""
    slow = f"Budget('ctrl-c', epochs=150, seeds=2, examples=400, scale={{'hidden': [32, 32]}}, grids={TINY.grids!r})"
    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "from adamlab.lab.paper import Budget, fig2\nfrom adamlab.cli.main import main\n"
        f"fig2.BUDGETS['quick'] = {slow}\n"
        "sys.exit(main(['paper', 'fig2', '--quick', '--workers', '2', '--out', sys.argv[2], '--json']))\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    child = subprocess.Popen([sys.executable, "-c", script, SRC, str(tmp_path)], env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None and len(list(runs.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGINT)
    started = time.monotonic()
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130 and err.decode().strip().endswith("adamlab: interrupted")
    assert time.monotonic() - started < 10  # the workers were stopped, not waited for
    time.sleep(0.5)
    listed = subprocess.run(["pgrep", "-a", "-g", str(child.pid)], capture_output=True, text=True).stdout
    left = [line for line in listed.splitlines() if "<defunct>" not in line]  # exited; reaped by init, or not
    assert left == [], f"processes outlived the interrupted command: {left}"
    kept = list(runs.glob("*.json"))
    assert 2 <= len(kept) < 15
    for p in kept:
        assert json.loads(p.read_text())["result"]  # whole records (resuming them is tested above)


def test_dask_local_cluster_by_address(uninterrupted: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        result = run_figure("fig2", TINY, out=tmp_path, executor=cluster.scheduler_address)
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        with distributed.Client(cluster) as client:  # a Client passed in is used as given
            tasks = [Task(_double, x, ({"x": x},)) for x in range(3)]
            out, counts = run_tasks(tasks, None, client)
            assert [o[0]["y"] for o in out] == [0, 2, 4] and counts.computed == 3
    assert result.counts.computed == 15
    assert results_of(tmp_path) == results_of(uninterrupted)


def _double(x: int) -> list[dict[str, object]]:
    return [{"result": {"y": 2 * x}}]


def test_one_torch_thread_holds_in_every_thread_that_enters() -> None:
    """torch's count is per thread once a thread has used torch: each entering thread must set its own."""
    import threading

    import torch

    from adamlab.lab.digits import one_torch_thread

    before = torch.get_num_threads()
    inside, ready, go = [], threading.Barrier(2), threading.Event()

    def work(first: bool) -> None:
        torch.ones(3).sum()  # this thread now has its own count
        ready.wait()
        if first:
            with one_torch_thread():
                go.set()
                inside.append(torch.get_num_threads())
                time.sleep(0.2)  # the other thread enters while this one is still inside
        else:
            go.wait()
            with one_torch_thread():
                inside.append(torch.get_num_threads())

    threads = [threading.Thread(target=work, args=(f,)) for f in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside == [1, 1]
    with one_torch_thread():
        with one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
