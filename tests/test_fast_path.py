"""The PyTorch face's fast path (flat buffers + generated numba kernels) equals its plain path bit for bit.

The plain path runs the rule with torch's own operations; the kernels are the rule's ``update`` traced and
compiled in the arithmetic of this process's torch CPU kernels (FMA at AVX2/AVX-512 dispatch, MKL VML's square
root). So the comparison needs no tolerance: every rule is compared with ``fast=False`` for every option
combination, on random layouts with thousands of tensors, and with the generic flat path (torch operations on
the flat buffers) when no kernel applies; parameters and every state entry must be equal. CI also runs this
file under ``ATEN_CPU_CAPABILITY=avx2`` and ``default`` and ``NUMBA_CPU_NAME=generic``. The torch.optim contract
(grad None, zero_grad, .data reassignment, param groups, dtypes, state dicts, torch.save) is checked on the fast
path.
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import pytest
import torch

import adamlab.torch
from adamlab.kernels import threads
from adamlab.torch import fast_path as fast_step

pytestmark = pytest.mark.skipif(fast_step.load_kernels() is None, reason="numba is not installed")

WD_MODES = [dict(weight_decay=0.0), dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled_weight_decay=True)]


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    scale = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs().max().item() if b.numel() else 0.0
    return diff / scale if scale > 0 else diff


def assert_identical_runs(fast_params, plain_params, fast_opt, plain_opt) -> None:
    """Parameters and every state entry equal bit for bit (and of the same dtype and shape)."""
    for i, (p, q) in enumerate(zip(fast_params, plain_params, strict=True)):
        assert p.dtype == q.dtype and p.shape == q.shape
        assert torch.equal(p, q), f"param {i}: differs by {max_rel_diff(p, q):.2e} relative"
        s, r = fast_opt.state[p], plain_opt.state[q]
        assert s.keys() == r.keys(), (i, s.keys(), r.keys())
        for k, v in r.items():
            if k == "step":
                assert s[k] == v
            else:
                assert s[k].shape == v.shape and s[k].dtype == v.dtype, (i, k)
                assert torch.equal(s[k], v), f"param {i} state {k}: differs by {max_rel_diff(s[k], v):.2e} relative"


def kernel_of(opt, group=0):
    """The generated kernel the fast path runs for a param group (None: the generic flat path)."""
    fast = opt._fast
    dtype = fast.buffers[0].segments[0].flat.dtype
    return fast.info(opt.rule_for(opt.param_groups[group])).kernels.get(dtype)


def in_flat_buffers(opt, params) -> bool:
    """True when every parameter's memory lies inside one of the optimizer's flat buffers."""
    spans = [(b.flat.data_ptr(), b.flat.data_ptr() + b.flat.numel() * b.flat.element_size()) for b in opt._fast.buffers]
    return all(any(lo <= p.data_ptr() < hi for lo, hi in spans) for p in params if p.numel())


def make_params(shapes, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, dtype=dtype, generator=gen)) for s in shapes]


def run_pair(name, groups_kw, shapes_per_group, dtype, steps=4, seed=0, none_rate=0.2, modes=("fresh", "flat")):
    """Run the fast and the plain path on the same gradients; returns both (params, optimizer)."""
    gen = torch.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng(seed)
    fast_params = [make_params(shapes, dtype, seed + 10 * i) for i, shapes in enumerate(shapes_per_group)]
    plain_params = [[torch.nn.Parameter(p.detach().clone()) for p in ps] for ps in fast_params]
    cls = getattr(adamlab.torch, name)
    fast = cls([{"params": ps, **kw} for ps, kw in zip(fast_params, groups_kw, strict=True)])
    plain = cls([{"params": ps, **kw} for ps, kw in zip(plain_params, groups_kw, strict=True)], fast=False)
    flat_f = [p for ps in fast_params for p in ps]
    flat_p = [p for ps in plain_params for p in ps]
    for t in range(steps):
        mode = modes[t % len(modes)]
        for opt in (fast, plain):
            opt.zero_grad(set_to_none=mode == "fresh")
        for p, q in zip(flat_f, flat_p, strict=True):
            if t > 0 and rng.random() < none_rate:
                if p.grad is not None:  # flat mode: a zeroed gradient stays; drop it to test "no gradient"
                    p.grad, q.grad = None, None
                continue
            g = torch.randn(p.shape, dtype=dtype, generator=gen) * 10.0 ** float(rng.integers(-3, 2))
            if rng.random() < 0.1:
                g = g * (torch.rand(p.shape, generator=gen) < 0.5).to(dtype)  # some exact zeros
            if p.grad is None:
                p.grad, q.grad = g.clone(), g.clone()
            else:  # accumulate, as autograd does into an existing .grad
                p.grad.add_(g)
                q.grad.add_(g)
        fast.step()
        plain.step()
    return flat_f, flat_p, fast, plain


# --- every pair of options each rule has ---------------------------------------------------------------------


def covering(factors: dict[str, list], seed: int = 0) -> list[dict]:
    """Option combinations in which every value of every factor, and every pair of two factors' values, occurs
    (a greedy pairwise covering design): each kernel structure is compiled once, and a full product would make
    hundreds. A factor's values are dicts of options (several options that must change together)."""
    names = list(factors)
    uncovered = {
        (a, i, b, j)
        for x, a in enumerate(names)
        for b in names[x + 1 :]
        for i in range(len(factors[a]))
        for j in range(len(factors[b]))
    }
    rng = np.random.default_rng(seed)
    rows = []
    while uncovered:
        best, gain = None, -1
        for _ in range(64):
            pick = {n: int(rng.integers(len(factors[n]))) for n in names}
            a, i, b, j = next(iter(uncovered))  # each candidate covers at least one pair still open
            pick[a], pick[b] = i, j
            covered = sum((x, pick[x], y, pick[y]) in uncovered for k, x in enumerate(names) for y in names[k + 1 :])
            if covered > gain:
                best, gain = pick, covered
        uncovered -= {(x, best[x], y, best[y]) for k, x in enumerate(names) for y in names[k + 1 :]}
        rows.append(best)
    out = []
    for row in rows:
        options: dict = {}
        for n in names:
            options.update(factors[n][row[n]])
        out.append(options)
    return out


def flag(name: str, *values: object) -> list[dict]:
    return [{name: v} for v in (values or (False, True))]


def option_grid(name):
    """Pairwise-covering option combinations of each rule (see :func:`covering`)."""
    common = {"maximize": flag("maximize"), "decay": WD_MODES}
    if name in ("Adam", "AdamW"):
        factors = {
            **common,
            "amsgrad": [dict(amsgrad=False), dict(amsgrad=True), dict(amsgrad=True, amsgrad_max_of="v_hat")],
            "nesterov": flag("nesterov"),
            "eps_hat": flag("eps_hat"),
            "eps": flag("eps", 1e-8, 0.0),
            "bias_correction": flag("bias_correction"),
            "eps_root": flag("eps_root", 0.0, 1e-9),
        }
    elif name == "Adamax":
        factors = {**common, "eps_in_max": flag("eps_in_max"), "eps": flag("eps", 1e-8, 0.0)}
    elif name == "NAdam":
        schedule = [dict(momentum_schedule=True, momentum_decay=0.004), dict(momentum_schedule=False, momentum_decay=1)]
        factors = {**common, "schedule": schedule, "eps": flag("eps", 1e-8, 0.0)}
    elif name == "RAdam":
        factors = {
            **common,
            "nesterov": flag("nesterov"),
            "eps_hat": flag("eps_hat"),
            "eps": flag("eps", 1e-8, 0.0),
            "threshold": [dict(threshold=4.0, betas=(0.9, 0.5)), dict(threshold=5.0, betas=(0.9, 0.5))],
            "inclusive": flag("threshold_inclusive"),
            "eps_root": flag("eps_root", 0.0, 1e-9),
        }
    elif name == "SGD":
        momenta = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
                   dict(momentum=0.9, nesterov=True)]  # fmt: skip
        factors = {**common, "momentum": momenta, "lr_in_momentum": flag("lr_in_momentum"), "lr": flag("lr", 0.01)}
    elif name == "Adagrad":
        initial = flag("initial_accumulator_value", 0.0, 0.1)
        factors = {**common, "eps_in_sqrt": flag("eps_in_sqrt"), "eps": flag("eps", 1e-10, 0.0),
                   "lr_decay": flag("lr_decay", 0.0, 0.1), "initial": initial}  # fmt: skip
    elif name == "RMSprop":
        factors = {**common, "centered": flag("centered"), "eps_in_sqrt": flag("eps_in_sqrt"),
                   "lr_in_momentum": flag("lr_in_momentum"), "momentum": flag("momentum", 0.0, 0.9),
                   "eps": flag("eps", 1e-8, 0.0)}  # fmt: skip
    else:  # Adadelta
        factors = common
    grid = covering(factors, seed=len(name))
    return grid[::2] if name == "AdamW" else grid  # AdamW shares Adam's update: a sample is enough


NAMES = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "SGD", "Adagrad", "RMSprop", "Adadelta"]
SMALL_LAYOUT = [[(), (1,), (3, 4)], [(7,), (2, 1, 3)]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_every_kernel_option_combination_equals_the_rule(name, dtype):
    grid = option_grid(name)
    assert grid
    for i, options in enumerate(grid):
        other = {**options, "lr": options.get("lr", 1e-3) * 3}  # group 1: other hyperparameters
        fast_params, plain_params, fast, plain = run_pair(name, [options, other], SMALL_LAYOUT, dtype, seed=i)
        assert fast._fast.buffers and kernel_of(fast) is not None
        try:
            assert_identical_runs(fast_params, plain_params, fast, plain)
        except AssertionError as error:
            raise AssertionError(f"{name} {options}: {error}") from None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_random_layouts_with_thousands_of_tensors(name, dtype):
    rng = np.random.default_rng(NAMES.index(name))
    counts = [1000, 200, 3]
    shapes = [[tuple(int(x) for x in rng.integers(1, 6, size=rng.integers(0, 3))) for _ in range(c)] for c in counts]
    shapes[2] = [(1,), (), (300, 7)]
    grid = option_grid(name)
    kws = [grid[int(rng.integers(len(grid)))] for _ in counts]
    kws = [{**kw, "lr": kw.get("lr", 1e-3) * (1 + i)} for i, kw in enumerate(kws)]
    fast_params, plain_params, fast, plain = run_pair(name, kws, shapes, dtype, steps=3, seed=5, none_rate=0.1)
    assert sum(len(s.params) for b in fast._fast.buffers for s in b.segments) == sum(counts)
    assert_identical_runs(fast_params, plain_params, fast, plain)


@pytest.mark.parametrize("name", NAMES)
def test_flat_gradients_run_each_segment_as_one_tensor(name, monkeypatch):
    """With every gradient in the flat buffer and one step count, the kernels see a segment as one tensor
    (no per-tensor walk). The result must still equal the rule, and a NaN in the last tensor's gradient
    must still be found before anything changes."""
    results = []
    real = fast_step._as_one_tensor
    monkeypatch.setattr(fast_step, "_as_one_tensor", lambda w: results.append(real(w)) or results[-1])
    shapes = [[(3, 4), (1,), (), (50,)] * 50, [(7,), (2, 2)] * 20]
    kws = [{}, {"lr": 3e-3}]
    fast_params, plain_params, fast, plain = run_pair(
        name, kws, shapes, torch.float64, steps=4, seed=3, none_rate=0.0, modes=("flat",)
    )
    assert any(r is not None for r in results), "the one-tensor route was never taken"
    assert_identical_runs(fast_params, plain_params, fast, plain)
    before = [p.detach().clone() for p in fast_params]
    state = copy.deepcopy(fast.state_dict())
    fast.zero_grad(set_to_none=False)
    for p in fast_params:
        p.grad.fill_(1e-3)
    fast_params[len(shapes[0]) - 1].grad[-1] = float("nan")  # the last tensor of the first segment
    with pytest.raises(adamlab.NonFiniteError):
        fast.step()
    assert all(torch.equal(p, b) for p, b in zip(fast_params, before, strict=True))
    after = fast.state_dict()["state"]
    for k, entry in state["state"].items():
        assert all(torch.equal(after[k][n], v) if torch.is_tensor(v) else after[k][n] == v for n, v in entry.items())


@pytest.mark.parametrize("name", NAMES)
def test_generic_flat_path_equals_the_rule(name, monkeypatch):
    """Without numba (or a kernel), the rule itself runs on chunks of the flat views."""
    monkeypatch.setattr(fast_step, "load_kernels", lambda: None)
    monkeypatch.setattr(threads, "MIN_PER_THREAD", 1)
    options = option_grid(name)[3]
    fast_params, plain_params, fast, plain = run_pair(name, [options, options], SMALL_LAYOUT, torch.float64)
    assert fast._fast.kernels is None and fast._fast.buffers
    assert_identical_runs(fast_params, plain_params, fast, plain)


@pytest.mark.parametrize("mode", ["ema", "polyak"])
def test_averaging_runs_a_generated_kernel(mode):
    """Averaged is a rule like any other: its kernel is generated from the wrapped rule's update and the average."""
    kw = dict(averaging=mode, averaging_decay=0.9)
    fast_params, plain_params, fast, plain = run_pair("Adam", [kw, kw], SMALL_LAYOUT, torch.float32, steps=5)
    assert kernel_of(fast) is not None and "param_avg" in kernel_of(fast).state_names
    assert_identical_runs(fast_params, plain_params, fast, plain)
    with fast.averaged_parameters(), plain.averaged_parameters():
        for p, q in zip(fast_params, plain_params, strict=True):
            assert torch.equal(p, q)


def test_tensor_hyperparameter_takes_the_generic_flat_path():
    kw = dict(lr=torch.tensor(0.01, dtype=torch.float64))
    fast_params, plain_params, fast, plain = run_pair("Adam", [kw, {}], SMALL_LAYOUT, torch.float64)
    assert kernel_of(fast) is None  # a tensor lr: no kernel, torch's operations on the flat buffers
    assert_identical_runs(fast_params, plain_params, fast, plain)


# --- the torch.optim contract on the fast path --------------------------------------------------------------


def quadratic_setup(dtype=torch.float32, fast=True, name="Adam", **kw):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).to(dtype)
    torch.manual_seed(0)
    x = torch.randn(16, 4, dtype=dtype)
    opt = getattr(adamlab.torch, name)(model.parameters(), fast=fast, **kw)
    return model, x, opt


def train(model, x, opt, steps, set_to_none=True):
    for _ in range(steps):
        opt.zero_grad(set_to_none=set_to_none)
        (model(x) ** 2).sum().backward()
        opt.step()


def test_fast_path_is_the_default_and_moves_parameters_into_one_buffer():
    model, x, opt = quadratic_setup()
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()  # no gradients yet: nothing changes, but the layout is built
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert opt.fast and len(opt._fast.buffers) == 1 and in_flat_buffers(opt, model.parameters())
    train(model, x, opt, 3)
    s = opt.state[model[0].weight]
    assert s["step"] == 3 and s["exp_avg"].untyped_storage().data_ptr() == s["exp_avg_sq"].untyped_storage().data_ptr()
    _, _, plain = quadratic_setup(fast=False)
    assert plain.__dict__.get("_fast") is None


def test_parameters_without_gradient_are_untouched():
    model, x, opt = quadratic_setup()
    model[2].bias.requires_grad_(False)
    train(model, x, opt, 2)
    assert model[2].bias.grad is None and not opt.state[model[2].bias]
    b = model[2].bias.detach().clone()
    model[2].bias.requires_grad_(True)
    train(model, x, opt, 1)
    assert opt.state[model[2].bias]["step"] == 1 and opt.state[model[0].weight]["step"] == 3
    model[2].bias.requires_grad_(False)
    model[2].bias.grad = None
    after, state = model[2].bias.detach().clone(), copy.deepcopy(opt.state[model[2].bias])
    train(model, x, opt, 2)
    assert torch.equal(model[2].bias, after) and not torch.equal(after, b)
    assert opt.state[model[2].bias]["step"] == 1
    assert torch.equal(opt.state[model[2].bias]["exp_avg"], state["exp_avg"])


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_and_training_match_the_plain_path(set_to_none):
    model, x, opt = quadratic_setup(torch.float64)
    ref, _, ref_opt = quadratic_setup(torch.float64, fast=False)
    ref.load_state_dict(model.state_dict())
    train(model, x, opt, 5, set_to_none)
    train(ref, x, ref_opt, 5, set_to_none)
    assert_identical_runs(list(model.parameters()), list(ref.parameters()), opt, ref_opt)
    opt.zero_grad(set_to_none=set_to_none)
    for p in model.parameters():
        assert p.grad is None if set_to_none else torch.equal(p.grad, torch.zeros_like(p))
    if not set_to_none:  # gradients are slots of one flat buffer: autograd accumulates there
        flat = opt._fast.buffers[0].grad
        lo, hi = flat.data_ptr(), flat.data_ptr() + flat.numel() * flat.element_size()
        for p in model.parameters():
            assert lo <= p.grad.data_ptr() < hi
            assert p.grad.untyped_storage().nbytes() == p.numel() * p.element_size()  # saving one: only it


def test_reassigned_data_is_detected():
    model, x, opt = quadratic_setup(torch.float64)
    ref, _, ref_opt = quadratic_setup(torch.float64, fast=False)
    ref.load_state_dict(model.state_dict())
    train(model, x, opt, 2)
    train(ref, x, ref_opt, 2)
    with torch.no_grad():
        new = torch.randn(3, 4, dtype=torch.float64)
        model[0].weight.data = new.clone()
        ref[0].weight.data = new.clone()
    assert not in_flat_buffers(opt, [model[0].weight])
    train(model, x, opt, 2)
    train(ref, x, ref_opt, 2)
    assert not torch.equal(model[0].weight, new)  # the new tensor was stepped, not a stale slot
    assert_identical_runs(list(model.parameters()), list(ref.parameters()), opt, ref_opt)
    assert in_flat_buffers(opt, model.parameters())  # moved in again


def test_mixed_dtypes_and_low_precision_parameters():
    gen = torch.Generator().manual_seed(3)
    dtypes = [torch.float32, torch.float64, torch.bfloat16, torch.float32, torch.float64]
    fast_params = [torch.nn.Parameter(torch.randn(5, generator=gen).to(d)) for d in dtypes]
    plain_params = [torch.nn.Parameter(p.detach().clone()) for p in fast_params]
    fast = adamlab.torch.Adam(fast_params, lr=0.01)
    plain = adamlab.torch.Adam(plain_params, lr=0.01, fast=False)
    for _ in range(4):
        for p, q in zip(fast_params, plain_params, strict=True):
            g = torch.randn(5, generator=gen).to(p.dtype)
            p.grad, q.grad = g.clone(), g.clone()
        fast.step()
        plain.step()
    assert {(b.dtype, len(b.params)) for b in fast._fast.buffers} == {(torch.float32, 2), (torch.float64, 2)}
    assert fast._fast.plain == [[fast_params[2]]]
    assert torch.equal(fast_params[2], plain_params[2])
    assert_identical_runs(fast_params[:2] + fast_params[3:], plain_params[:2] + plain_params[3:], fast, plain)
    assert fast.state[fast_params[2]]["exp_avg"].dtype == torch.bfloat16  # torch.optim's state dtype


def test_state_dtype_override_and_complex_parameters_stay_on_the_plain_path():
    p = torch.nn.Parameter(torch.randn(3))
    z = torch.nn.Parameter(torch.randn(3, dtype=torch.complex64))
    opt = adamlab.torch.Adam([p], state_dtype=torch.float64)
    opt2 = adamlab.torch.Adam([z])
    for o, q in ((opt, p), (opt2, z)):
        q.grad = torch.ones_like(q)
        o.step()
        assert o._fast.buffers == [] and o._fast.plain == [[q]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (the CUDA fast path is not written yet)")
def test_cuda_parameters_take_the_plain_path():
    p = torch.nn.Parameter(torch.randn(4, device="cuda"))
    q = torch.nn.Parameter(p.detach().cpu().clone())
    opt, ref = adamlab.torch.Adam([p]), adamlab.torch.Adam([q], fast=False)
    for _ in range(3):
        g = torch.randn(4)
        p.grad, q.grad = g.cuda(), g.clone()
        opt.step()
        ref.step()
    assert opt._fast.plain == [[p]]
    assert torch.allclose(p.cpu(), q, rtol=1e-6)


def test_parameters_sharing_memory_stay_on_the_plain_path():
    base = torch.randn(6)
    shared = torch.nn.Parameter(base)  # Parameter(t) aliases t: whoever holds t sees the updates
    own = torch.nn.Parameter(torch.randn(6))
    numpy_backed = torch.nn.Parameter(torch.from_numpy(np.ones(3, dtype=np.float32)))
    opt = adamlab.torch.SGD([shared, own, numpy_backed], lr=0.1)
    for p in (shared, own, numpy_backed):
        p.grad = torch.ones_like(p)
    before = base.clone()
    opt.step()
    assert opt._fast.plain == [[shared, numpy_backed]]
    assert torch.equal(base, before - 0.1)


def test_duplicate_parameters_behave_as_the_plain_path():
    p, q = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast, plain = adamlab.torch.SGD([p, p], lr=0.1), adamlab.torch.SGD([q, q], lr=0.1, fast=False)
    p.grad, q.grad = torch.ones(3), torch.ones(3)
    fast.step()
    plain.step()
    assert torch.equal(p, q)


def test_noncontiguous_and_sparse_gradients():
    p = torch.nn.Parameter(torch.randn(3, 3, dtype=torch.float64))
    q = torch.nn.Parameter(p.detach().clone())
    fast, plain = adamlab.torch.Adam([p], lr=0.1), adamlab.torch.Adam([q], lr=0.1, fast=False)
    g = torch.randn(3, 3, dtype=torch.float64)
    p.grad, q.grad = g.t(), g.t()
    assert not p.grad.is_contiguous()
    fast.step()
    plain.step()
    assert_identical_runs([p], [q], fast, plain)
    p.grad = torch.eye(3, dtype=torch.float64).to_sparse()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        fast.step()


def test_add_param_group_keeps_state():
    model, x, opt = quadratic_setup(torch.float64, lr=0.01)
    ref, _, ref_opt = quadratic_setup(torch.float64, fast=False, lr=0.01)
    ref.load_state_dict(model.state_dict())
    extra, extra_ref = torch.nn.Parameter(torch.ones(2, dtype=torch.float64)), None
    extra_ref = torch.nn.Parameter(extra.detach().clone())
    train(model, x, opt, 2)
    train(ref, x, ref_opt, 2)
    opt.add_param_group({"params": [extra], "lr": 0.1})
    ref_opt.add_param_group({"params": [extra_ref], "lr": 0.1})
    for _ in range(3):
        extra.grad, extra_ref.grad = torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
        train(model, x, opt, 1, set_to_none=False)
        train(ref, x, ref_opt, 1, set_to_none=False)
    assert_identical_runs([*model.parameters(), extra], [*ref.parameters(), extra_ref], opt, ref_opt)


def test_model_state_dict_and_torch_save():
    model, x, opt = quadratic_setup()
    train(model, x, opt, 3)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    size = buffer.tell()
    params_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert size < params_bytes + 4096  # one shared storage, holding just the parameters
    buffer.seek(0)
    fresh = quadratic_setup(fast=False)[0]
    fresh.load_state_dict(torch.load(buffer))
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), model.parameters(), strict=True))
    model.load_state_dict(fresh.state_dict())  # copies in place: the parameters stay in the flat buffer
    assert in_flat_buffers(opt, model.parameters())


def test_saving_part_of_a_model_writes_only_that_part():
    """Each parameter has a storage of its own over its slot: torch.save of a sub-module or of one tensor
    writes those bytes, not the whole buffer, and nothing looks like tied weights."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(300, 300), torch.nn.Linear(300, 2))
    opt = adamlab.torch.Adam(model.parameters())
    model(torch.randn(4, 300)).sum().backward()
    opt.step()
    assert in_flat_buffers(opt, model.parameters())
    head = model[1].state_dict()
    buffer = io.BytesIO()
    torch.save(head, buffer)
    assert buffer.tell() < 602 * 4 + 4096  # the head's 602 floats, not the model's 90,902
    assert len({p.untyped_storage().data_ptr() for p in model.parameters()}) == 4
    for p in model.parameters():
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()
    buffer.seek(0)
    assert all(torch.equal(head[k], v) for k, v in torch.load(buffer).items())
    clone = copy.deepcopy(model[0])
    assert clone.weight.untyped_storage().nbytes() == clone.weight.numel() * 4


def test_gradients_of_another_dtype_are_converted_and_of_another_shape_raise():
    """The kernel reads a gradient through its address: one of another dtype (grad_dtype=None, or ``.data``
    changed under an existing ``.grad``) is converted as the plain path converts it, and one of another shape
    raises as the plain path and torch.optim do, instead of being read past its end."""
    runs = []
    for fast in (True, False):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(5))
        opt = adamlab.torch.Adam([p], lr=0.1, fast=fast)
        p.grad = torch.ones(5)
        opt.step()
        with torch.no_grad():
            p.data = p.data.double()  # the float32 .grad stays; autograd keeps accumulating into it
        for _ in range(3):
            (p.double() ** 2).sum().backward()
            opt.step()
        assert p.grad.dtype == torch.float32
        runs.append(p.detach().clone())
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-15, atol=0)
    q = torch.nn.Parameter(torch.zeros(4))
    opt = adamlab.torch.SGD([q], lr=0.1)
    q.grad = torch.ones(4)
    opt.step()
    with torch.no_grad():
        q.data = torch.zeros(1 << 16)  # the old 4-element gradient stays
    with pytest.raises(RuntimeError, match=r"a gradient of shape \(4,\) for a parameter of shape \(65536,\)"):
        opt.step()
    assert not q.any()


def test_new_parameter_objects_over_the_same_memory_are_stepped():
    """group["params"] replaced by new Parameter objects over the old memory (same data pointers): the new
    objects carry the gradients, so the layout is checked by identity too."""
    model, x, opt = quadratic_setup(torch.float64)
    ref, _, ref_opt = quadratic_setup(torch.float64, fast=False)
    ref.load_state_dict(model.state_dict())
    train(model, x, opt, 1)
    train(ref, x, ref_opt, 1)
    for net, o in ((model, opt), (ref, ref_opt)):
        net[0].weight = torch.nn.Parameter(net[0].weight.detach())
        o.param_groups[0]["params"] = list(net.parameters())
        o.state[net[0].weight] = o.state.pop(next(p for p in o.state if p.shape == (3, 4)))
    before = model[0].weight.detach().clone()
    train(model, x, opt, 2)
    train(ref, x, ref_opt, 2)
    assert not torch.equal(model[0].weight, before)
    assert_identical_runs(list(model.parameters()), list(ref.parameters()), opt, ref_opt)


def test_memory_of_an_old_optimizer_is_not_pinned_by_a_frozen_parameter():
    """Fine-tuning: train, delete the optimizer, freeze a small layer and build a new optimizer for the rest.
    The frozen parameter must not keep the first optimizer's whole buffer alive."""
    import gc

    big, small = torch.nn.Parameter(torch.zeros(1000)), torch.nn.Parameter(torch.zeros(3))
    opt = adamlab.torch.SGD([big, small], lr=0.1)
    big.grad, small.grad = torch.ones(1000), torch.ones(3)
    opt.step()
    flat = opt._fast.buffers[0].flat
    old = range(flat.data_ptr(), flat.data_ptr() + flat.numel() * 4)
    assert small.data_ptr() in old
    del opt, flat
    gc.collect()
    small.requires_grad_(False)
    small.grad = None
    opt = adamlab.torch.SGD([big], lr=0.1)
    opt.step()
    gc.collect()
    # nothing pins the old buffer: each parameter's storage holds its own bytes only (addresses are no test:
    # the allocator may hand the freed range to the new buffer)
    assert small.untyped_storage().nbytes() == 3 * 4 and big.untyped_storage().nbytes() == 1000 * 4
    assert torch.equal(small, torch.full((3,), -0.1)) and torch.equal(big, torch.full((1000,), -0.2))


def test_optimizer_survives_deepcopy_pickle_and_load_hooks():
    import pickle

    model, x, opt = quadratic_setup(torch.float64, nonfinite="skip")
    train(model, x, opt, 2)
    twin = copy.deepcopy({"model": model, "opt": opt})
    restored = pickle.loads(pickle.dumps({"model": model, "opt": opt}))
    for pair in (twin, restored):
        assert pair["opt"].nonfinite == "skip" and pair["opt"].fast
        train(pair["model"], x, pair["opt"], 3)
    train(model, x, opt, 3)
    for pair in (twin, restored):
        assert_identical_runs(list(pair["model"].parameters()), list(model.parameters()), pair["opt"], opt)
    calls = []
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("pre"))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("post"))
    opt.load_state_dict(opt.state_dict())
    assert calls == ["pre", "post"]


def test_parameters_in_shared_memory_stay_shared():
    """model.share_memory() (Hogwild training): moving those parameters into a private buffer would cut the
    other processes off, so they stay on the plain path, before and after the fast path placed them."""
    torch.manual_seed(0)
    shared = torch.nn.Linear(5, 3).share_memory()
    later = torch.nn.Linear(5, 3)
    opt = adamlab.torch.Adam([*shared.parameters(), *later.parameters()])
    for step in range(3):
        opt.zero_grad()
        (shared(torch.randn(2, 5)).sum() + later(torch.randn(2, 5)).sum()).backward()
        opt.step()
        assert all(p.is_shared() for p in shared.parameters())
        assert in_flat_buffers(opt, later.parameters()) == (step < 2)
        if step == 1:
            later.share_memory()
    assert opt._fast.buffers == [] and all(p.is_shared() for p in later.parameters())
    assert opt.state[later.weight]["step"] == 3


@pytest.mark.parametrize("direction", ["fast_to_plain", "plain_to_fast", "fast_to_fast"])
@pytest.mark.parametrize("name", ["Adam", "NAdam", "SGD", "RMSprop"])
def test_optimizer_state_dict_interchanges_with_the_plain_path(name, direction):
    kw = dict(momentum=0.9) if name in ("SGD", "RMSprop") else {}
    src_fast, dst_fast = {"fast_to_plain": (True, False), "plain_to_fast": (False, True)}.get(direction, (True, True))
    model, x, opt = quadratic_setup(torch.float64, fast=src_fast, name=name, **kw)
    train(model, x, opt, 4)
    saved = opt.state_dict()
    for entry in saved["state"].values():  # each entry owns its memory: saving one saves only it
        for v in entry.values():
            if torch.is_tensor(v):
                assert v.untyped_storage().nbytes() == v.numel() * v.element_size()
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    clone, _, opt2 = quadratic_setup(torch.float64, fast=dst_fast, name=name, **kw)
    clone.load_state_dict(model.state_dict())
    opt2.load_state_dict(torch.load(buffer))
    train(model, x, opt, 3)
    train(clone, x, opt2, 3)
    assert_identical_runs(list(clone.parameters()), list(model.parameters()), opt2, opt)
    if dst_fast:  # the loaded state was moved into the flat state arrays
        key = next(k for k in opt2.state[clone[0].weight] if k != "step")
        assert len({opt2.state[p][key].untyped_storage().data_ptr() for p in clone.parameters()}) == 1


def test_state_edits_from_outside_are_taken_in():
    model, x, opt = quadratic_setup(torch.float64)
    ref, _, ref_opt = quadratic_setup(torch.float64, fast=False)
    ref.load_state_dict(model.state_dict())
    train(model, x, opt, 3)
    train(ref, x, ref_opt, 3)
    for o, m in ((opt, model), (ref_opt, ref)):
        o.state[m[0].weight]["exp_avg"].mul_(0.5)  # in place
        o.state[m[0].bias]["exp_avg_sq"] = torch.ones(3, dtype=torch.float64)  # replaced
        o.state[m[2].weight]["step"] = 10
        del o.state[m[2].bias]  # removed: starts again
    train(model, x, opt, 2)
    train(ref, x, ref_opt, 2)
    assert opt.state[model[2].weight]["step"] == 12 and opt.state[model[2].bias]["step"] == 2
    assert_identical_runs(list(model.parameters()), list(ref.parameters()), opt, ref_opt)


def test_export_import_state_round_trip():
    model, x, opt = quadratic_setup(torch.float64)
    train(model, x, opt, 3)
    checkpoint = adamlab.torch.export_state(opt)
    clone, _, opt2 = quadratic_setup(torch.float64)
    clone.load_state_dict(model.state_dict())
    train(clone, x, opt2, 1)  # already stepped: the import must replace its state
    clone.load_state_dict(model.state_dict())
    adamlab.torch.import_state(opt2, checkpoint)
    train(model, x, opt, 2)
    train(clone, x, opt2, 2)
    assert_identical_runs(list(clone.parameters()), list(model.parameters()), opt2, opt)


def test_nonfinite_gradient_changes_nothing_on_the_fast_path():
    model, x, opt = quadratic_setup()
    train(model, x, opt, 2)
    before = [p.detach().clone() for p in model.parameters()]
    state = copy.deepcopy(opt.state_dict())
    opt.zero_grad()
    (model(x) ** 2).sum().backward()
    model[2].bias.grad[1] = float("inf")
    with pytest.raises(adamlab.NonFiniteError):
        opt.step()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert all(torch.equal(opt.state_dict()["state"][k]["exp_avg"], v["exp_avg"]) for k, v in state["state"].items())


def test_step_bumps_the_version_counter():
    model, x, opt = quadratic_setup()
    train(model, x, opt, 1)
    version = model[0].weight._version
    train(model, x, opt, 1)
    assert model[0].weight._version > version


@pytest.mark.parametrize("fast", [True, False])
def test_sgd_momentum_buffer_does_not_alias_the_gradient(fast):
    """The rule's first buffer is b = g; zero_grad(set_to_none=False) then accumulating in place must not
    change it (the plain path used to keep the gradient tensor itself as the buffer)."""
    results = []
    for module in (torch.optim, adamlab.torch):
        p = torch.nn.Parameter(torch.ones(3))
        opt = module.SGD([p], lr=0.01, momentum=0.9, **({} if module is torch.optim else {"fast": fast}))
        for t in range(3):
            opt.zero_grad(set_to_none=False)
            if p.grad is None:
                p.grad = torch.full((3,), 1.0 + t)
            else:
                p.grad.add_(1.0 + t)
            opt.step()
        results.append(p.detach().clone())
    assert torch.equal(results[0], results[1])
