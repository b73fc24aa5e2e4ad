"""``torch.compile`` of ``opt.step`` and of a whole training step, on the default (fast) path, against compiled
torch.optim (CPU inductor).

Under compilation the face takes its plain path (torch operations, traceable) with the step count as a tensor,
as torch.optim's compiled step does; a fast path built by earlier eager steps is left first. Inductor fuses and
reorders the arithmetic of both sides, so the bound is torch's own: compiled torch.optim against eager
torch.optim on the same run (measured here), at least 4 ulp of float32.
"""

from __future__ import annotations

import shutil

import pytest
import torch

import adamlab.torch

pytestmark = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("cc") is None,
                                reason="torch.compile's CPU inductor needs a C++ compiler")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def inductor_works():
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(3))
    except Exception as error:  # noqa: BLE001 - any failure to compile means: skip, with the reason
        pytest.skip(f"torch.compile does not work on this machine: {type(error).__name__}: {error}")
    yield
    torch._dynamo.reset()


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))


X = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))


def train(cls, mode, steps=4, eager_first=False, **kw):
    model = net()
    opt = cls(model.parameters(), lr=0.01, **kw)
    step = torch.compile(opt.step) if mode == "step" else opt.step

    def eager_train_step():
        opt.zero_grad()
        model(X).pow(2).sum().backward()
        step()

    @torch.compile
    def compiled_train_step():
        loss = model(X).pow(2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    for i in range(steps):
        if mode == "train" and not (eager_first and i == 0):
            compiled_train_step()
        elif eager_first and i == 0:
            opt.zero_grad()
            model(X).pow(2).sum().backward()
            opt.step()
        else:
            eager_train_step()
    return [p.detach().clone() for p in model.parameters()], opt


def distance(a, b):
    return max((x - y).abs().max().item() / max(y.abs().max().item(), 1e-30) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("name", "mode", "eager_first"),
    [("Adam", "step", False), ("Adam", "step", True), ("Adam", "train", False), ("NAdam", "step", False)],
)
def test_compiled_step_matches_compiled_torch(name, mode, eager_first):
    torch._dynamo.reset()
    ref, _ = train(getattr(torch.optim, name), mode, eager_first=eager_first)
    eager, _ = train(getattr(torch.optim, name), "none")
    ours, opt = train(getattr(adamlab.torch, name), mode, eager_first=eager_first)
    bound = max(distance(eager, ref), 4 * torch.finfo(torch.float32).eps)
    assert distance(ours, ref) <= bound, (distance(ours, ref), bound)
    assert distance(ours, eager) > 0 or distance(ref, eager) == 0  # (it did compile: inductor rounds differently)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert torch.is_tensor(state["step"]) and state["step"].dtype == torch.float32 and int(state["step"]) == 4
