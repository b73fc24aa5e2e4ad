"""A step or a load that raises changes nothing; gradients and checkpoints are converted or refused, never
reinterpreted; an optimizer is freed as soon as it is deleted.

Each case was reproduced on the code before this module: earlier groups already stepped when a later one
raised (and a retry stepped them twice), an int32 gradient read as float bits on the fast path, loads that
accepted negative or huge steps, import_state writing half a checkpoint, ``del opt`` waiting for the cycle
collector.
"""

from __future__ import annotations

import copy
import gc
import weakref

import numpy as np
import pytest
import torch

import adamlab
import adamlab.torch

PATHS = [True, False]


def two_groups(name="Adam", fast=True, **kw):
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.Parameter(torch.randn(4, 3, generator=gen))
    b = torch.nn.Parameter(torch.randn(5, generator=gen))
    opt = getattr(adamlab.torch, name)([{"params": [a]}, {"params": [b], "lr": 0.01}], fast=fast, **kw)
    return a, b, opt


def grads(*params, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)


def snapshot(opt, params):
    return [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict()["state"])


def assert_unchanged(opt, params, snap):
    values, state = snap
    assert all(torch.equal(p, v) for p, v in zip(params, values, strict=True))
    now = opt.state_dict()["state"]
    assert now.keys() == state.keys()
    for k, entry in state.items():
        for name, v in entry.items():
            assert torch.equal(now[k][name], v), (k, name)


# --- steps ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", PATHS)
def test_a_bad_lr_in_a_later_group_changes_nothing_and_a_retry_steps_once(fast):
    a, b, opt = two_groups(fast=fast)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda i: 1.0, lambda i: -1.0 if i == 2 else 1.0])
    for _ in range(2):
        grads(a, b)
        opt.step()
        sched.step()
    assert opt.param_groups[1]["lr"] < 0
    grads(a, b, seed=5)
    snap = snapshot(opt, [a, b])
    with pytest.raises(ValueError, match="^lr must be"):
        opt.step()
    assert_unchanged(opt, [a, b], snap)
    opt.param_groups[1]["lr"] = 0.01
    opt.step()
    assert int(opt.state[a]["step"]) == int(opt.state[b]["step"]) == 3


@pytest.mark.parametrize("nonfinite", ["raise", "ignore"])
@pytest.mark.parametrize("fast", PATHS)
def test_a_sparse_gradient_is_refused_before_anything_changes(fast, nonfinite):
    a, b, opt = two_groups(fast=fast, nonfinite=nonfinite)
    grads(a, b)
    opt.step()
    grads(a, b, seed=2)
    b.grad = b.grad.to_sparse()
    snap = snapshot(opt, [a, b])
    with pytest.raises(RuntimeError, match="^Adam does not support sparse gradients$"):
        opt.step()
    assert_unchanged(opt, [a, b], snap)


@pytest.mark.parametrize("fast", PATHS)
def test_a_gradient_of_another_shape_in_a_later_group_changes_nothing(fast):
    a, b, opt = two_groups(fast=fast)
    grads(a, b)
    opt.step()
    grads(a, b, seed=2)
    with torch.no_grad():
        b.data = torch.zeros(7)  # (torch refuses to assign a .grad of another shape; this makes one)
    snap = snapshot(opt, [a, b])
    with pytest.raises(RuntimeError, match=r"a gradient of shape \(5,\) for a parameter of shape \(7,\)"):
        opt.step()
    assert_unchanged(opt, [a, b], snap)


@pytest.mark.parametrize("fast", PATHS)
def test_gradients_of_another_dtype_are_converted_not_reinterpreted(fast):
    """An int32 .grad on a float32 parameter (same byte size): the fast path used to read its bits as floats."""
    results = []
    for cls, kw in ((torch.optim.SGD, {}), (adamlab.torch.SGD, {"fast": fast})):
        p = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
        p.grad_dtype = None  # (torch refuses a gradient of another dtype unless told)
        opt = cls([p], lr=0.1, **kw)
        p.grad = torch.tensor([1, 2, 3], dtype=torch.int32)
        opt.step()
        results.append(p.detach().clone())
    assert torch.equal(results[1], results[0])
    torch.testing.assert_close(results[1], torch.tensor([0.9, 1.8, 2.7]))


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam", "RMSprop", "Adadelta", "AdamW"])
@pytest.mark.parametrize("fast", PATHS)
def test_sparse_gradients_give_the_clear_error_on_every_path(name, fast):
    p = torch.nn.Parameter(torch.ones(3))
    opt = getattr(adamlab.torch, name)([p], fast=fast)
    p.grad = torch.eye(3)[0].to_sparse()
    with pytest.raises(RuntimeError, match=f"^{name} does not support sparse gradients$"):
        opt.step()
    assert torch.equal(p, torch.ones(3))


def _sparse_grad(step: int) -> torch.Tensor:
    """An uncoalesced sparse gradient (a repeated index), as torch's own sparse tests torture with."""
    rows = torch.tensor([[step % 4, step % 4, (step + 2) % 4]])
    return torch.sparse_coo_tensor(rows, torch.tensor([0.3, -0.1, 0.2 * (step + 1)]), (4,))


@pytest.mark.parametrize(
    ("name", "kw"),
    [("SGD", {}), ("SGD", {"momentum": 0.9}), ("SGD", {"maximize": True}), ("Adagrad", {}),
     ("Adagrad", {"lr_decay": 0.1, "maximize": True}), ("Adagrad", {"initial_accumulator_value": 0.5})],
)  # fmt: skip
@pytest.mark.parametrize("fast", PATHS)
def test_sgd_and_adagrad_take_sparse_gradients_as_torch(name, kw, fast):
    ref = torch.nn.Parameter(torch.linspace(-1, 1, 4, dtype=torch.float64))
    dense = torch.nn.Parameter(ref.detach().clone())
    ours = torch.nn.Parameter(ref.detach().clone())
    opt_ref = getattr(torch.optim, name)([ref], lr=0.1, **kw)
    opt_dense = getattr(adamlab.torch, name)([dense], lr=0.1, fast=fast, **kw)
    opt_ours = getattr(adamlab.torch, name)([ours], lr=0.1, fast=fast, **kw)
    for step in range(6):
        g = _sparse_grad(step).double()
        ref.grad, ours.grad, dense.grad = g.clone(), g.clone(), g.to_dense()
        opt_ref.step()
        opt_ours.step()
        opt_dense.step()
    torch.testing.assert_close(ours, ref, rtol=1e-14, atol=1e-15)  # torch's sparse path rounds on its own
    torch.testing.assert_close(ours, dense, rtol=1e-14, atol=1e-15)  # (uncoalesced values are added one by one)
    assert int(opt_ours.state[ours]["step"]) == 6
    if name == "Adagrad":
        torch.testing.assert_close(opt_ours.state[ours]["sum"], opt_ref.state[ref]["sum"], rtol=1e-14, atol=0)
    with pytest.raises(RuntimeError, match="weight_decay option is not compatible with sparse gradients"):
        adamlab.torch.Adagrad([ours], weight_decay=0.1).step()  # ours.grad is sparse: refused, as torch does


# --- loads ------------------------------------------------------------------------------------------------------


def trained(fast=True, name="Adam", **kw):
    a, b, opt = two_groups(name, fast=fast, **kw)
    for i in range(3):
        grads(a, b, seed=i)
        opt.step()
    return a, b, opt


HOSTILE_STEPS = [-1, -1.0, 2**63, 2.0**64, float("inf"), float("nan"), 1.5, "3", None, torch.tensor([1.0, 2.0])]


@pytest.mark.parametrize("step", HOSTILE_STEPS, ids=str)
@pytest.mark.parametrize("fast", PATHS)
def test_load_refuses_an_impossible_step_and_loads_nothing(fast, step):
    a, b, opt = trained(fast)
    saved = opt.state_dict()
    bad = copy.deepcopy(saved)
    bad["state"][1]["step"] = step if not torch.is_tensor(step) else step.clone()
    bad["param_groups"][0]["lr"] = 0.5
    snap = snapshot(opt, [a, b])
    with pytest.raises(ValueError, match=r"state of parameter 1: step must be"):
        opt.load_state_dict(bad)
    assert_unchanged(opt, [a, b], snap)
    assert opt.param_groups[0]["lr"] == 1e-3
    grads(a, b)
    opt.step()  # still usable, at its own count
    assert int(opt.state[b]["step"]) == 4


@pytest.mark.parametrize("entry", ["exp_avg_sq", "max_exp_avg_sq"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_load_refuses_a_negative_or_nonfinite_second_moment(entry, value):
    a, b, opt = trained(amsgrad=True)
    bad = copy.deepcopy(opt.state_dict())
    bad["state"][0][entry][1, 2] = value
    snap = snapshot(opt, [a, b])
    with pytest.raises(ValueError, match=f"state '{entry}' of parameter 0 must be finite and >= 0"):
        opt.load_state_dict(bad)
    assert_unchanged(opt, [a, b], snap)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda sd: sd["param_groups"][0].pop("params"),
        lambda sd: sd["param_groups"].__setitem__(0, "group"),
        lambda sd: sd["param_groups"][1].__setitem__("lr", -1.0),
        lambda sd: sd["param_groups"][1].__setitem__("betas", (1.5, 0.9)),
        lambda sd: sd.__setitem__("state", [1, 2]),
        lambda sd: sd["state"].__setitem__(0, "not a dict"),
        lambda sd: sd["state"][0].__setitem__("exp_avg", torch.zeros(4, 3, dtype=torch.int64)),
        lambda sd: sd["param_groups"][0].__setitem__("params", [[0]]),
    ],
    ids=["no params", "group not a dict", "bad lr", "bad betas", "state a list", "entry not a dict", "int state",
         "unhashable id"],
)  # fmt: skip
@pytest.mark.parametrize("fast", PATHS)
def test_load_refuses_hostile_state_dicts_with_value_error(fast, corrupt):
    a, b, opt = trained(fast)
    bad = copy.deepcopy(opt.state_dict())
    corrupt(bad)
    snap = snapshot(opt, [a, b])
    with pytest.raises(ValueError):
        opt.load_state_dict(bad)
    assert_unchanged(opt, [a, b], snap)


@pytest.mark.parametrize("fast", PATHS)
def test_complex_parameters_state_loads_both_ways(fast):
    z = torch.nn.Parameter(torch.randn(3, 2, dtype=torch.complex64))
    twin = torch.nn.Parameter(z.detach().clone())
    opt = adamlab.torch.Adam([z], lr=0.1, fast=fast)
    for i in range(3):
        z.grad = torch.full_like(z, 0.5 + 1j * i)
        opt.step()
    with torch.no_grad():
        twin.copy_(z)
    loaded = adamlab.torch.Adam([twin], lr=0.1, fast=fast)
    loaded.load_state_dict(opt.state_dict())
    imported = adamlab.torch.Adam([torch.nn.Parameter(z.detach().clone())], lr=0.1, fast=fast)
    adamlab.torch.import_state(imported, adamlab.torch.export_state(opt))
    for other in (loaded, imported):
        p = other.param_groups[0]["params"][0]
        assert other.state[p]["exp_avg"].dtype == torch.complex64
        assert torch.equal(other.state[p]["exp_avg_sq"], opt.state[z]["exp_avg_sq"])
    reference = torch.optim.Adam([torch.nn.Parameter(z.detach().clone())], lr=0.1)
    reference.load_state_dict(opt.state_dict())  # and torch.optim takes adamlab's complex state


def test_import_state_is_all_or_nothing():
    a, b, opt = trained()
    checkpoint = adamlab.torch.export_state(opt)
    checkpoint["params"][0]["state"]["exp_avg"] = checkpoint["params"][0]["state"]["exp_avg"] * 2
    checkpoint["params"][1]["state"]["exp_avg"] = checkpoint["params"][1]["state"]["exp_avg"] + 1j  # complex
    snap = snapshot(opt, [a, b])
    with pytest.raises(ValueError, match="complex"):
        adamlab.torch.import_state(opt, checkpoint, strict=False)
    assert_unchanged(opt, [a, b], snap)


@pytest.mark.parametrize(
    ("where", "value"),
    [("shape", 3), ("shape", "abc"), ("shape", (-1,)), ("shape", (10**6, 10**6)), ("step", float("inf")),
     ("step", float("nan")), ("step", -1), ("step", 2**63)],
)  # fmt: skip
def test_import_state_refuses_hostile_checkpoints_with_value_error(where, value):
    a, b, opt = trained()
    checkpoint = adamlab.torch.export_state(opt)
    if where == "shape":
        checkpoint["params"][0]["shape"] = value
    else:
        checkpoint["step"] = value
    snap = snapshot(opt, [a, b])
    with pytest.raises(ValueError):
        adamlab.torch.import_state(opt, checkpoint, strict=False)
    assert_unchanged(opt, [a, b], snap)


# --- memory ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", PATHS)
def test_del_optimizer_frees_it_at_once(fast):
    """No reference cycle between the optimizer and its fast path: with the cycle collector off, the optimizer,
    its flat buffers and their memory go when the last reference does (as torch.optim's do)."""
    p = torch.nn.Parameter(torch.ones(1 << 16))
    opt = adamlab.torch.Adam([p], fast=fast)
    p.grad = torch.ones_like(p)
    opt.step()
    alive = [weakref.ref(opt)] + ([weakref.ref(opt._fast), weakref.ref(opt._fast.buffers[0])] if fast else [])
    was = gc.isenabled()
    gc.disable()
    try:
        del opt
        assert all(ref() is None for ref in alive)
    finally:
        if was:
            gc.enable()
    assert p.untyped_storage().nbytes() == p.numel() * 4  # the parameter kept (only) its own memory
    np.testing.assert_array_less(p.detach().numpy(), 1.0)
