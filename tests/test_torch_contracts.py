"""The torch.optim contracts code written for torch relies on, each checked against torch.optim itself.

What torch's own TestOptimRenewed checks (hooks, param groups, tensor lr, deepcopy, state_dict determinism and
format, named parameters, older state dicts), written here for adamlab's classes: every class of the registry
that torch has, next to torch's class, on the fast and the plain path.
"""

from __future__ import annotations

import copy
import inspect
import io

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

import adamlab.torch
from adamlab import registry

PAIRS = [(e.face, e.torch) for e in registry.OPTIMIZERS if e.torch and hasattr(torch.optim, e.torch)]
NAMES = [face for face, _ in PAIRS]


def classes(name):
    return getattr(adamlab.torch, name), getattr(torch.optim, dict(PAIRS)[name])


def params_pair(seed=0, dtype=torch.float32, shapes=((2, 3), (2,))):
    gen = torch.Generator().manual_seed(seed)
    a = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in shapes]
    return a, [torch.nn.Parameter(p.detach().clone()) for p in a]


def feed(params_a, params_b, seed):
    gen = torch.Generator().manual_seed(seed)
    for p, q in zip(params_a, params_b, strict=True):
        g = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
        p.grad, q.grad = g.clone(), g.clone()


def assert_equal_trees(a, b, where="state_dict"):
    """Equal nested dicts/lists: tensors bit for bit with the same dtype, everything else with ==."""
    if torch.is_tensor(b):
        assert torch.is_tensor(a) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(b, dict):
        assert isinstance(a, dict) and a.keys() == b.keys(), where
        for k in b:
            assert_equal_trees(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal_trees(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_same(params_a, params_b, opt_a, opt_b):
    for p, q in zip(params_a, params_b, strict=True):
        assert torch.equal(p, q)
        for k, v in opt_b.state[q].items():
            if torch.is_tensor(v):
                assert torch.equal(opt_a.state[p][k], v), k
                assert opt_a.state[p][k].dtype == v.dtype, k


# --- signatures, defaults, param-group keys, state format --------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_signature_is_torchs(name):
    ours, ref = classes(name)
    mine = inspect.signature(ours).parameters
    for p in inspect.signature(ref).parameters.values():
        assert p.name in mine, p.name
        assert mine[p.name].kind == p.kind, p.name
        if p.default is not inspect.Parameter.empty:
            assert mine[p.name].default == p.default, (p.name, mine[p.name].default, p.default)
    assert all(p.default is not None for n, p in mine.items() if n not in ("foreach", "fused", "averaging",
                                                                            "state_dtype"))  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_carry_torchs_keys_and_defaults(name):
    ours, ref = classes(name)
    a, b = params_pair()
    opt_a, opt_b = ours(a), ref(b)
    group_a, group_b = opt_a.param_groups[0], opt_b.param_groups[0]
    assert set(group_b) <= set(group_a)
    for k, v in group_b.items():
        if k != "params":
            assert group_a[k] == v, (k, group_a[k], v)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_step_is_a_float32_tensor_as_torchs(name, fast):
    ours, ref = classes(name)
    a, b = params_pair()
    opt_a, opt_b = ours(a, fast=fast), ref(b)
    for i in range(3):
        feed(a, b, i)
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b, strict=True):
        step = opt_a.state[p]["step"]
        assert torch.is_tensor(step) and step.dtype == torch.float32 and step.shape == () and step.device.type == "cpu"
        assert step.item() == 3.0
        if "step" in opt_b.state[q]:
            assert step.dtype == opt_b.state[q]["step"].dtype
        saved = opt_a.state_dict()["state"]
        assert all(torch.is_tensor(s["step"]) and s["step"].dtype == torch.float32 for s in saved.values())
    assert_same(a, b, opt_a, opt_b)


@pytest.mark.parametrize("fast", [True, False])
def test_step_tensor_follows_the_default_dtype(fast, request):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    request.addfinalizer(lambda: torch.set_default_dtype(previous))
    a, b = params_pair()
    opt_a, opt_b = adamlab.torch.Adam(a, fast=fast), torch.optim.Adam(b)
    feed(a, b, 0)
    opt_a.step()
    opt_b.step()
    assert opt_a.state[a[0]]["step"].dtype == opt_b.state[b[0]]["step"].dtype == torch.float64


@pytest.mark.parametrize("fast", [True, False])
def test_count_behind_bias_correction_is_exact_past_2_to_the_24(fast):
    """torch's float32 step stops at 2^24; adamlab's count goes on (the step tensor becomes float64 there),
    so steps 2^24 + 1 and 2^24 + 2 use their own bias corrections and a state dict carries the exact count."""
    big = 2**24
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = adamlab.torch.Adam([p], lr=0.1, betas=(1 - 1e-7, 1 - 1e-8), fast=fast)
    p.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    start = p.detach().clone()
    saved = opt.state_dict()
    saved["state"][0]["step"] = torch.tensor(float(big), dtype=torch.float32)
    opt.load_state_dict(saved)
    for expected in (big + 1, big + 2):
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        assert int(opt.state[p]["step"]) == expected
        assert opt.state_dict()["state"][0]["step"].item() == expected
    # the same two steps by hand with the exact count: the rule's own step, t = 2^24 + 1 then 2^24 + 2
    rule = opt.rule_for(opt.param_groups[0])
    state = {k: v.clone() for k, v in saved["state"][0].items() if k != "step"}
    q = start
    for t in (big + 1, big + 2):
        q, state = rule.step(q, torch.ones(3, dtype=torch.float64), state, t)
    assert torch.equal(p.detach(), q)


def test_nadam_mu_product_in_torchs_dtype_and_float64_without_drift():
    """NAdam keeps mu_product in the default dtype, as torch does; float64 parameters under the default float32
    dtype then follow torch.optim bit for bit (no drift from a float64 μ product)."""
    a, b = params_pair(dtype=torch.float64)
    opt_a, opt_b = adamlab.torch.NAdam(a, lr=0.01), torch.optim.NAdam(b, lr=0.01)
    for i in range(30):
        feed(a, b, i)
        opt_a.step()
        opt_b.step()
    assert opt_a.state[a[0]]["mu_product"].dtype == opt_b.state[b[0]]["mu_product"].dtype == torch.float32
    assert_same(a, b, opt_a, opt_b)


# --- hooks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_step_hooks_fire_in_torchs_order(name):
    ours, _ = classes(name)
    p = torch.nn.Parameter(torch.ones(2))
    opt, other = ours([p]), torch.optim.SGD([torch.nn.Parameter(torch.ones(2))])
    seen = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: seen.append(("global pre", o))),
        register_optimizer_step_post_hook(lambda o, a, k: seen.append(("global post", o))),
        opt.register_step_pre_hook(lambda o, a, k: seen.append(("pre", o))),
        opt.register_step_post_hook(lambda o, a, k: seen.append(("post", o))),
    ]
    try:
        p.grad = torch.ones(2)
        opt.step()
        other.step()
        assert [s for s, _ in seen] == ["global pre", "pre", "post", "global post", "global pre", "global post"]
        assert all(o is opt for _, o in seen[:4])
    finally:
        for h in handles:
            h.remove()
    opt.step()
    assert len(seen) == 6  # removed


def test_state_dict_and_load_hooks():
    p = torch.nn.Parameter(torch.ones(2))
    opt = adamlab.torch.Adam([p])
    opt.register_state_dict_pre_hook(lambda o: o.state.__setitem__("note", 1))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "seen": sd["state"].pop("note", None)})
    saved = opt.state_dict()
    assert saved["seen"] == 1 and "note" not in saved["state"]
    opt.register_load_state_dict_pre_hook(lambda o, sd: sd["param_groups"][0].__setitem__("lr", 0.002))

    def replace(o, sd):
        sd = copy.deepcopy(sd)
        sd["param_groups"][0]["lr"] = 0.003
        return sd

    opt.register_load_state_dict_pre_hook(replace, prepend=True)
    opt.register_load_state_dict_post_hook(lambda o: o.state.__setitem__("loaded", o.param_groups[0]["lr"]))
    opt.load_state_dict({k: v for k, v in saved.items() if k != "seen"})
    assert opt.param_groups[0]["lr"] == 0.002 and opt.state["loaded"] == 0.002  # the prepended hook ran first


# --- param groups, tensor lr, named parameters ---------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_groups_equal_separate_optimizers_and_add_param_group(name, fast):
    ours, _ = classes(name)
    a, b = params_pair(3)
    both = ours([{"params": [a[0]]}, {"params": [a[1]], "lr": 0.05}], fast=fast)
    one, two = ours([b[0]], fast=fast), ours([b[1]], lr=0.05, fast=fast)
    for i in range(4):
        feed(a, b, i)
        both.step()
        one.step()
        two.step()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    extra = torch.nn.Parameter(torch.ones(3))
    both.add_param_group({"params": [extra], "lr": 0.1})
    assert both.param_groups[-1]["lr"] == 0.1 and set(both.param_groups[-1]) == set(both.param_groups[0])
    extra.grad = torch.ones(3)
    both.step()
    assert not torch.equal(extra, torch.ones(3)) and int(both.state[extra]["step"]) == 1


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_tensor_lr_matches_float_lr(name, fast):
    ours, ref = classes(name)
    a, b = params_pair(4)
    opt_a = ours(a, lr=torch.tensor(0.01), fast=fast)
    opt_b = ours(b, lr=0.01, fast=fast)
    for i in range(5):
        feed(a, b, i)
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b, strict=True):  # torch's own bound for this (TestOptimRenewed.test_tensor_lr)
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        ours(a, lr=torch.tensor([0.01, 0.02]))


def test_lr_mixes_raise_torchs_errors():
    p = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match="lr as a Tensor is not supported for capturable=False and foreach=True"):
        adamlab.torch.Adam(p, lr=torch.tensor(0.01), foreach=True)
    with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
        adamlab.torch.Adam(p, betas=(0.9, torch.tensor(0.99)))
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        adamlab.torch.Adam(p, foreach=True, fused=True)
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        adamlab.torch.Adam(p, fused=True, differentiable=True)


@pytest.mark.parametrize("fast", [True, False])
def test_named_parameters_are_kept_in_state_dict(fast):
    model = torch.nn.Linear(3, 2)
    opt = adamlab.torch.Adam(model.named_parameters(), fast=fast)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    plain = adamlab.torch.Adam(model.parameters(), fast=fast)
    plain.load_state_dict(opt.state_dict())
    assert plain.param_groups[0]["param_names"] == ["weight", "bias"]
    with pytest.raises(ValueError, match="all optimizer params should be with/without names"):
        adamlab.torch.Adam([("w", model.weight), model.bias])


# --- state_dict: determinism, older formats, weights_only, deepcopy --------------------------------------------


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_is_deterministic_and_survives_torch_save(name, fast):
    ours, _ = classes(name)
    a, b = params_pair(5)
    opt = ours(a, fast=fast)
    for i in range(3):
        feed(a, a, i)
        opt.step()
    with torch.no_grad():
        for p, q in zip(a, b, strict=True):
            q.copy_(p)
    twin = ours(b, fast=fast)
    twin.load_state_dict(copy.deepcopy(opt.state_dict()))
    for i in range(3, 6):
        feed(a, b, i)
        opt.step()
        twin.step()
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    first, second = opt.state_dict(), twin.state_dict()
    assert_equal_trees(first, second)
    buffer = io.BytesIO()
    torch.save(first, buffer)
    buffer.seek(0)
    assert_equal_trees(torch.load(buffer, weights_only=True), first)


@pytest.mark.parametrize("name", NAMES)
def test_older_state_dicts_load(name):
    """Without the newer switches (foreach, maximize, capturable, differentiable ...) and with a number step."""
    ours, _ = classes(name)
    a, _ = params_pair(6)
    opt = ours(a)
    feed(a, a, 0)
    opt.step()
    old = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:
        for flag in ("foreach", "differentiable", "maximize", "capturable", "fused"):
            group.pop(flag, None)
    for state in old["state"].values():
        state["step"] = state["step"].item()
    opt.load_state_dict(old)
    assert opt.param_groups[0]["maximize"] is False and torch.is_tensor(opt.state[a[0]]["step"])
    feed(a, a, 1)
    opt.step()
    assert int(opt.state[a[0]]["step"]) == 2


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_copies_public_attributes_and_state(name, fast):
    ours, _ = classes(name)
    a, _ = params_pair(7)
    opt = ours(a, fast=fast, nonfinite="skip")
    for i in range(2):
        feed(a, a, i)
        opt.step()
    twin = copy.deepcopy(opt)
    assert {k for k in vars(opt) if not k.startswith("_")} == {k for k in vars(twin) if not k.startswith("_")}
    assert twin.nonfinite == "skip"
    for p, q in zip(opt.param_groups[0]["params"], twin.param_groups[0]["params"], strict=True):
        for k, v in opt.state[p].items():
            assert torch.equal(twin.state[q][k], v)
    repr(opt)


@pytest.mark.parametrize("name", NAMES)
def test_no_grad_and_zero_grad_steps(name):
    ours, ref = classes(name)
    frozen = [torch.randn(2, 3) for _ in range(2)]
    before = [t.clone() for t in frozen]
    ours(frozen).step(lambda: torch.tensor([1.0]))
    assert all(torch.equal(t, s) for t, s in zip(frozen, before, strict=True))
    a, b = params_pair(8)
    kw = {"lr": 1e-5} if name == "AdamW" else {}
    opt_a, opt_b = ours(a, **kw), ref(b, **kw)
    for p, q in zip(a, b, strict=True):
        p.grad, q.grad = torch.zeros_like(p), torch.zeros_like(q)
    opt_a.step()
    opt_b.step()
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert all(len(s) > 0 for s in opt_a.state.values())


def test_adagrad_has_state_before_its_first_step_as_torchs():
    a, b = params_pair(9)
    opt_a, opt_b = (
        adamlab.torch.Adagrad(a, initial_accumulator_value=0.2),
        torch.optim.Adagrad(b, initial_accumulator_value=0.2),
    )
    for p, q in zip(a, b, strict=True):
        assert opt_a.state[p].keys() == opt_b.state[q].keys()
        assert torch.equal(opt_a.state[p]["sum"], opt_b.state[q]["sum"])
        assert opt_a.state[p]["step"].dtype == opt_b.state[q]["step"].dtype and opt_a.state[p]["step"] == 0
    assert_equal_trees(opt_a.state_dict()["state"], opt_b.state_dict()["state"])
    feed(a, b, 0)
    opt_a.step()
    opt_b.step()
    assert_same(a, b, opt_a, opt_b)


# --- low precision: torch's state dtype, torch's bits ------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize("name", NAMES)
def test_low_precision_parameters_match_torch_bit_for_bit(name, dtype):
    ours, ref = classes(name)
    a, b = params_pair(10, dtype=dtype, shapes=((4, 5), (5,)))
    eps = inspect.signature(ref).parameters.get("eps")  # (a larger ε where it is one number: 1e-8 is 0 in fp16)
    kw = {"eps": 1e-3} if eps is not None and isinstance(eps.default, float) and name != "Adagrad" else {}
    opt_a, opt_b = ours(a, lr=0.01, **kw), ref(b, lr=0.01, **kw)
    for i in range(20):
        feed(a, b, i)
        opt_a.step()
        opt_b.step()
    assert_same(a, b, opt_a, opt_b)
    assert all(v.dtype == dtype for k, v in opt_a.state[a[0]].items() if k not in ("step", "mu_product"))
    kept = ours(b, lr=0.01, state_dtype=torch.float32, **kw)  # the documented opt-in
    feed(b, b, 0)
    kept.step()
    assert all(v.dtype == torch.float32 for k, v in kept.state[b[0]].items() if k != "step")


# --- meta-device parameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_meta_parameters_step_as_torchs(name):
    ours, ref = classes(name)
    states = []
    for cls in (ours, ref):
        with torch.device("meta"):
            model = torch.nn.Linear(2, 3)
        opt = cls(model.parameters())
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        try:
            opt.step()
        except RuntimeError as error:  # (Adafactor reads norms with .item(): neither can step on meta)
            states.append(type(error))
            continue
        states.append({k: (v.device.type, v.dtype, tuple(v.shape)) if torch.is_tensor(v) else v
                       for k, v in opt.state[model.weight].items()})  # fmt: skip
    if isinstance(states[1], type):
        assert states[0] is states[1]
    else:
        assert {k: v for k, v in states[0].items() if k in states[1]} == states[1]


def test_capturable_on_cpu_raises_as_torch_does():
    for cls in (adamlab.torch.Adam, torch.optim.Adam):
        p = torch.nn.Parameter(torch.ones(2))
        opt = cls([p], capturable=True)
        p.grad = torch.ones(2)
        with pytest.raises(AssertionError, match="capturable=True"):
            opt.step()
        assert torch.equal(p, torch.ones(2))


# --- differentiable=True: autograd through the step -----------------------------------------------------------


def _through_steps(cls, steps, lr_requires_grad):
    gen = torch.Generator().manual_seed(11)
    start = torch.randn(3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    g0 = torch.randn(3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True) if lr_requires_grad else 0.05
    p = start.clone()
    opt = cls([p], lr=lr, differentiable=True)
    for i in range(steps):
        p.grad = g0.clone() if i == 0 else torch.sin(p.detach())
        opt.step()
    loss = (p**2).sum() + sum(v.sum() for k, v in opt.state[p].items() if torch.is_tensor(v) and k != "step")
    return torch.autograd.grad(loss, (start, g0, lr) if lr_requires_grad else (start, g0))


@pytest.mark.parametrize("lr_requires_grad", [False, True], ids=["float lr", "lr requires grad"])
@pytest.mark.parametrize("name", NAMES)
def test_differentiable_step_gives_torchs_gradients(name, lr_requires_grad):
    """Meta-learning: the gradient of a loss after a step with respect to the starting parameters, the gradient
    fed to the step and a tensor lr, as torch.optim's differentiable=True computes them. Where torch cannot
    (several classes refuse an lr that requires grad: ``addcdiv_(): argument 'value' must be Number``) adamlab
    still differentiates; two steps in a row work too (torch's in-place state updates cannot be differentiated
    twice for NAdam and others)."""
    ours, ref = classes(name)
    if "differentiable" not in inspect.signature(ref).parameters:
        pytest.skip(f"torch.optim.{ref.__name__} has no differentiable path (nor has adamlab's class)")
    try:
        expected = _through_steps(ref, 1, lr_requires_grad)
    except (TypeError, RuntimeError):
        expected = None
    got = _through_steps(ours, 1, lr_requires_grad)
    if expected is not None:  # (torch's differentiable paths compute some step sizes from float32 tensors, the
        for a, b in zip(got, expected, strict=True):  # step and NAdam's μ product: float32 rounding, 1e-8 here)
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    else:
        assert all(torch.isfinite(a).all() for a in got)
    twice = _through_steps(ours, 2, lr_requires_grad)
    assert all(torch.isfinite(a).all() and a.abs().sum() > 0 for a in twice)
