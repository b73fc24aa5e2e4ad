"""What each rank of ``tests/test_torch_distributed.py`` runs (gloo on 127.0.0.1, 2 processes).

Every case builds the same model twice (the same seed), trains one copy with torch.optim's class and one with
adamlab's, and reports per rank whether they ended bit for bit equal, plus what the case checks besides.
"""

from __future__ import annotations

import os
import pickle
import traceback
from typing import Any

import torch
import torch.distributed as dist


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))


def batch(rank: int, i: int) -> torch.Tensor:
    return torch.randn(5, 4, generator=torch.Generator().manual_seed(100 * i + rank))


def full(p: torch.Tensor) -> torch.Tensor:
    return (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def ddp(rank: int) -> dict[str, Any]:
    from torch.nn.parallel import DistributedDataParallel

    import adamlab.torch

    out = {}
    for fast in (True, False):
        ends = []
        for cls, kw in ((torch.optim.Adam, {}), (adamlab.torch.Adam, {"fast": fast})):
            net = DistributedDataParallel(model())
            opt = cls(net.parameters(), lr=0.01, **kw)
            for i in range(3):
                opt.zero_grad()
                net(batch(rank, i)).sum().backward()
                opt.step()
            ends.append([full(p) for p in net.parameters()])
        gathered = [None, None]
        dist.all_gather_object(gathered, ends[1])
        out[f"fast={fast}"] = {"equal_torch": same(*ends), "ranks_in_sync": same(*gathered)}
    return out


def zero(rank: int) -> dict[str, Any]:
    from torch.distributed.optim import ZeroRedundancyOptimizer

    import adamlab.torch

    ends = []
    for cls in (torch.optim.Adam, adamlab.torch.Adam):
        net = model()
        opt = ZeroRedundancyOptimizer(net.parameters(), optimizer_class=cls, lr=0.01)
        for i in range(3):
            opt.zero_grad()
            net(batch(0, i)).sum().backward()
            opt.step()
        ends.append([full(p) for p in net.parameters()])
    opt.consolidate_state_dict(to=0)
    consolidated = opt.state_dict() if rank == 0 else None
    loaded = True
    if rank == 0:
        fresh = ZeroRedundancyOptimizer(model().parameters(), optimizer_class=adamlab.torch.Adam, lr=0.01)
        try:
            fresh.load_state_dict(consolidated)
        except Exception:  # noqa: BLE001 - reported
            loaded = traceback.format_exc()
        del fresh
    else:  # the other rank's part of the collective the fresh optimizer's constructor makes
        ZeroRedundancyOptimizer(model().parameters(), optimizer_class=adamlab.torch.Adam, lr=0.01)
    return {
        "equal_torch": same(*ends),
        "local_is_global": opt.optim._zero,
        "consolidated_states": len(consolidated["state"]) if consolidated else None,
        "loaded": loaded,
    }


def fsdp2(rank: int) -> dict[str, Any]:
    from torch.distributed.fsdp import fully_shard

    import adamlab.torch

    out = {}
    for name in ("Adam", "NAdam", "SGD"):
        for fast in (True, False):
            ends, types = [], None
            for cls, kw in ((getattr(torch.optim, name), {}), (getattr(adamlab.torch, name), {"fast": fast})):
                net = model()
                fully_shard(net)
                extra = {"momentum": 0.9} if name == "SGD" else {}
                opt = cls(net.parameters(), lr=0.01, **extra, **kw)
                for i in range(3):
                    opt.zero_grad()
                    net(batch(rank, i)).sum().backward()
                    opt.step()
                ends.append([full(p) for p in net.parameters()])
                types = {k: type(v).__name__ for k, v in opt.state[net[0].weight].items()}
            out[f"{name} fast={fast}"] = {"equal_torch": same(*ends), "state_types": types}
    return out


def dtensor(rank: int) -> dict[str, Any]:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    import adamlab.torch

    mesh = init_device_mesh("cpu", (2,))
    out = {}
    for name in ("Adam", "RMSprop", "Adagrad"):
        ends = []
        for cls in (getattr(torch.optim, name), getattr(adamlab.torch, name)):
            gen = torch.Generator().manual_seed(3)
            params = [torch.nn.Parameter(distribute_tensor(torch.randn(6, 3, generator=gen), mesh, [Shard(0)]))]
            opt = cls(params, lr=0.01)
            for i in range(3):
                g = torch.randn(6, 3, generator=torch.Generator().manual_seed(i))
                params[0].grad = distribute_tensor(g, mesh, [Shard(0)])
                opt.step()
            ends.append([full(p) for p in params])
        out[name] = same(*ends)
    return out


def nonfinite(rank: int) -> dict[str, Any]:
    """A NaN in the gradient of a parameter that one rank holds: every rank decides the same."""
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.optim import ZeroRedundancyOptimizer

    import adamlab
    import adamlab.torch

    out = {}
    for policy in ("skip", "raise"):
        net = model()
        opt = ZeroRedundancyOptimizer(net.parameters(), optimizer_class=adamlab.torch.Adam, lr=0.01, nonfinite=policy)
        net(batch(0, 0)).sum().backward()
        last = list(net.parameters())[-1]
        last.grad[0] = float("nan")  # (the same on both ranks; only its owner's optimizer sees it)
        out[f"zero {policy}"] = _step_outcome(net, opt, opt.optim)
        net = model()
        fully_shard(net)
        opt = adamlab.torch.Adam(net.parameters(), lr=0.01, nonfinite=policy)
        net(batch(rank, 0)).sum().backward()
        if rank == 1:
            net[0].weight.grad.to_local()[0, 0] = float("inf")  # only rank 1's shard
        out[f"fsdp2 {policy}"] = _step_outcome(net, opt, opt)
    return out


def _step_outcome(net: torch.nn.Module, opt: Any, face: Any) -> dict[str, Any]:
    """One step of ``opt`` on a non-finite gradient: did it raise, leave the parameters unchanged, count a skip
    (``face``: the adamlab optimizer, inside ZeRO's wrapper or not)."""
    import adamlab

    before = [full(p) for p in net.parameters()]
    raised = False
    try:
        opt.step()
    except adamlab.NonFiniteError:
        raised = True
    return {"unchanged": same(before, [full(p) for p in net.parameters()]), "raised": raised,
            "skipped": face.skipped_steps}  # fmt: skip


CASES = {"ddp": ddp, "zero": zero, "fsdp2": fsdp2, "dtensor": dtensor, "nonfinite": nonfinite}


def worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    results = {}
    try:
        for name, case in CASES.items():
            try:
                results[name] = case(rank)
            except Exception:  # noqa: BLE001 - reported to the test
                results[name] = {"error": traceback.format_exc()}
            dist.barrier()
    finally:
        with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(results, f)
        dist.destroy_process_group()
