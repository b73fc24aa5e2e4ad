"""adamlab.torch on torch's distributed engines: 2 processes, gloo on 127.0.0.1, one spawn for every case.

- DDP: ranks stay bitwise in sync and equal torch.optim (fast path and plain);
- ZeroRedundancyOptimizer(optimizer_class=adamlab.torch.Adam): equal torch.optim; ``consolidate_state_dict``
  and loading the consolidated state work; the local optimizer knows it holds a shard;
- FSDP2 (``fully_shard``) and plain DTensor parameters: equal torch.optim bit for bit, state as DTensors;
- a NaN/inf in a gradient that one rank holds: every rank skips (``"skip"``) or raises (``"raise"``) together.

What each rank runs is in ``tests/torch_distributed_cases.py``.
"""

from __future__ import annotations

import pickle
import socket
import time

import pytest

dist = pytest.importorskip("torch.distributed")
if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import torch_distributed_cases as cases  # noqa: E402  (tests/ is on sys.path)

TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("distributed")
    context = mp.start_processes(cases.worker, args=(_free_port(), str(out)), nprocs=2, join=False,
                                 start_method="spawn")  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail(f"the 2-process run did not finish within {TIMEOUT_S} s")
    return [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(2)]


def _case(results, name):
    per_rank = [r[name] for r in results]
    for r in per_rank:
        assert "error" not in r, r.get("error")
    return per_rank


def test_ddp_ranks_in_sync_and_equal_torch(results):
    for rank in _case(results, "ddp"):
        for path, r in rank.items():
            assert r == {"equal_torch": True, "ranks_in_sync": True}, path


def test_zero_redundancy_optimizer(results):
    zero = _case(results, "zero")
    assert all(r["equal_torch"] and r["local_is_global"] for r in zero)
    assert zero[0]["consolidated_states"] == 4 and zero[0]["loaded"] is True


def test_fsdp2_matches_torch(results):
    for rank in _case(results, "fsdp2"):
        for case, r in rank.items():
            assert r["equal_torch"], case
            assert r["state_types"]["step"] == "Tensor" and "DTensor" in r["state_types"].values(), case


def test_dtensor_parameters_match_torch(results):
    for rank in _case(results, "dtensor"):
        assert rank == {"Adam": True, "RMSprop": True, "Adagrad": True}


def test_nonfinite_decision_is_global(results):
    for rank in _case(results, "nonfinite"):
        for engine in ("zero", "fsdp2"):
            assert rank[f"{engine} skip"] == {"unchanged": True, "raised": False, "skipped": 1}, engine
            assert rank[f"{engine} raise"] == {"unchanged": True, "raised": True, "skipped": 0}, engine
