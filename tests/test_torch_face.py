"""adamlab.torch side by side with the real torch.optim, and the torch.optim.Optimizer contract.

The reference is torch.optim itself (torch 2.13, single-tensor CPU path), run in float64 on the same model
with the same gradients; hyperparameters are drawn at random from seeded RNGs, per param group.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

import adamlab
import adamlab.torch

NAMES = ["Adam", "AdamW", "Adamax", "SGD", "Adagrad", "RMSprop", "Adadelta"]
RTOL = 1e-12
STEPS = 200


# --- random hyperparameters, valid for torch.optim and adamlab.torch alike -------------------------------


def log_uniform(rng, low, high):
    return float(10 ** rng.uniform(math.log10(low), math.log10(high)))


def maybe(rng, value, p=0.5):
    return value if rng.random() < p else 0.0


def sample_hyperparameters(name: str, rng: np.random.Generator) -> dict:
    """One param group's hyperparameters (``maximize`` is chosen per run, see ``run_side_by_side``)."""
    wd = maybe(rng, log_uniform(rng, 1e-4, 1e-1))
    if name in ("Adam", "AdamW"):
        kw = dict(
            lr=log_uniform(rng, 1e-3, 5e-2),
            betas=(float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.9, 0.9999))),
            eps=log_uniform(rng, 1e-10, 1e-4),
            weight_decay=wd,
            amsgrad=bool(rng.random() < 0.5),
        )
        if name == "Adam":
            kw["decoupled_weight_decay"] = bool(rng.random() < 0.5)
        return kw
    if name == "Adamax":
        return dict(
            lr=log_uniform(rng, 1e-3, 5e-2),
            betas=(float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.9, 0.9999))),
            eps=log_uniform(rng, 1e-10, 1e-4),
            weight_decay=wd,
        )
    if name == "SGD":
        momentum = maybe(rng, float(rng.uniform(0.5, 0.95)), p=0.75)
        nesterov = bool(momentum > 0 and rng.random() < 0.5)
        dampening = 0.0 if nesterov else maybe(rng, float(rng.uniform(0.0, 0.5)))
        return dict(
            lr=log_uniform(rng, 1e-3, 2e-2), momentum=momentum, dampening=dampening, weight_decay=wd, nesterov=nesterov
        )
    if name == "Adagrad":
        return dict(
            lr=log_uniform(rng, 1e-3, 2e-1),
            lr_decay=maybe(rng, log_uniform(rng, 1e-4, 1e-1)),
            weight_decay=wd,
            initial_accumulator_value=maybe(rng, float(rng.uniform(0.0, 0.5))),
            eps=log_uniform(rng, 1e-12, 1e-6),
        )
    if name == "RMSprop":
        return dict(
            lr=log_uniform(rng, 1e-4, 1e-2),
            alpha=float(rng.uniform(0.8, 0.999)),
            eps=log_uniform(rng, 1e-10, 1e-5),
            weight_decay=wd,
            momentum=maybe(rng, float(rng.uniform(0.5, 0.95))),
            centered=bool(rng.random() < 0.5),
        )
    if name == "Adadelta":
        return dict(
            lr=float(rng.uniform(0.1, 1.0)),
            rho=float(rng.uniform(0.8, 0.99)),
            eps=log_uniform(rng, 1e-8, 1e-4),
            weight_decay=wd,
        )
    raise AssertionError(name)


# --- problems ---------------------------------------------------------------------------------------------


class Quadratic(torch.nn.Module):
    """½ zᵀAz − bᵀz over z = (x1, x2.flatten()), A random positive definite: a coupled quadratic."""

    def __init__(self, seed: int, dtype=torch.float64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.x1 = torch.nn.Parameter(torch.randn(5, generator=g, dtype=dtype))
        self.x2 = torch.nn.Parameter(torch.randn(3, 4, generator=g, dtype=dtype))
        q = torch.randn(17, 17, generator=g, dtype=torch.float64)
        self.register_buffer("a", (q.T @ q / 17 + 0.1 * torch.eye(17, dtype=torch.float64)).to(dtype))
        self.register_buffer("b", torch.randn(17, generator=g, dtype=torch.float64).to(dtype))

    def groups(self):
        return [[self.x1], [self.x2]]

    def forward(self):
        z = torch.cat([self.x1, self.x2.reshape(-1)])
        return 0.5 * z @ self.a @ z - self.b @ z


class MLP(torch.nn.Module):
    """A 6-16-16-1 tanh network on a fixed random regression set; one param group per layer."""

    def __init__(self, seed: int, dtype=torch.float64) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        ).to(dtype)
        g = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("x", torch.randn(32, 6, generator=g, dtype=torch.float64).to(dtype))
        self.register_buffer("y", torch.sin(self.x.sum(1, keepdim=True)))

    def groups(self):
        return [list(self.net[i].parameters()) for i in (0, 2, 4)]

    def forward(self):
        return ((self.net(self.x) - self.y) ** 2).mean()


def param_groups(model, hypers):
    return [{"params": params, **kw} for params, kw in zip(model.groups(), hypers, strict=True)]


def train(model, opt, steps, sign=1.0, scheduler=None):
    for _ in range(steps):
        opt.zero_grad()
        (sign * model()).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b| over the tensor (complex: over the real and imaginary parts)."""
    a, b = torch.view_as_real(a) if a.is_complex() else a, torch.view_as_real(b) if b.is_complex() else b
    a, b = a.detach().double(), b.detach().double()
    assert torch.isfinite(b).all() and a.shape == b.shape
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / scale if scale > 0 else (a - b).abs().max().item()


def assert_same_run(ours, ref, opt_ours, opt_ref, rtol=RTOL):
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        err = max_rel_diff(p, q)
        assert err <= rtol, f"parameter {name}: max relative difference {err:.3e}"
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        s, r = opt_ours.state[p], opt_ref.state[q]
        ref_keys = {k for k, v in r.items() if v is not None and k != "step"}
        assert set(s) - {"step"} == ref_keys
        if "step" in r and not isinstance(opt_ref, torch.optim.SGD):  # torch's SGD keeps no step (a loaded one stays)
            assert s["step"] == float(r["step"])
        for k in ref_keys:
            err = max_rel_diff(s[k], r[k])
            assert err <= rtol, f"state {k}: max relative difference {err:.3e}"


def train_pair(ours, opt_ours, ref, opt_ref, steps, sign=1.0, sched_ours=None, sched_ref=None):
    """Step both optimizers with the gradient at the reference's point (see ``run_side_by_side``)."""
    for _ in range(steps):
        opt_ref.zero_grad()
        (sign * ref()).backward()
        opt_ours.zero_grad()
        for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
            p.grad = q.grad.clone()
        opt_ref.step()
        opt_ours.step()
        for sched in (sched_ours, sched_ref):
            if sched is not None:
                sched.step()


def run_side_by_side(name, problem, seed, steps=STEPS, closed_loop=False, rtol=RTOL):
    """Run torch.optim and adamlab.torch with the same random hyperparameters and compare them at the end.

    By default both optimizers are given the same gradient each step: the one at the reference's current
    point ("teacher forcing"). That compares the optimizers' maps over hundreds of steps without the
    problem's own sensitivity: Adam near an optimum behaves like sign descent (m̂/√v̂ ≈ ±1 flips as g
    crosses 0), so with each model taking its own gradient, 1-ulp differences in the arithmetic (torch uses
    lerp and √v/√bc2, the rule the paper's m̂/√v̂) grow chaotically to ~1e-7 after ~100 steps.
    ``closed_loop=True`` lets each model take its own gradient (checked over a short horizon).
    """
    rng = np.random.default_rng(seed)
    ref = problem(seed)
    ours = copy.deepcopy(ref)
    hypers = [sample_hyperparameters(name, rng) for _ in ref.groups()]
    common = {"maximize": bool(rng.random() < 0.3)}
    if name == "Adagrad":  # torch.optim.Adagrad takes it from the constructor only (see the test below)
        common["initial_accumulator_value"] = hypers[0].pop("initial_accumulator_value")
        for h in hypers[1:]:
            h.pop("initial_accumulator_value")
    sign = -1.0 if common["maximize"] else 1.0  # maximize −f: the same descent, through the maximize code path
    opt_ref = getattr(torch.optim, name)(param_groups(ref, hypers), **common)
    opt_ours = getattr(adamlab.torch, name)(param_groups(ours, hypers), **common)
    loss0 = ref().item()
    if closed_loop:
        train(ref, opt_ref, steps, sign)
        train(ours, opt_ours, steps, sign)
    else:
        train_pair(ours, opt_ours, ref, opt_ref, steps, sign)
    assert_same_run(ours, ref, opt_ours, opt_ref, rtol)
    return loss0, ref().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_optim_on_a_quadratic(name, seed):
    loss0, loss = run_side_by_side(name, Quadratic, seed)
    assert loss < loss0  # the run did something


@pytest.mark.parametrize("seed", [10, 11])
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_optim_on_an_mlp(name, seed):
    loss0, loss = run_side_by_side(name, MLP, seed)
    assert loss != loss0


@pytest.mark.parametrize("seed", [20, 21])
@pytest.mark.parametrize("problem", [Quadratic, MLP])
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_optim_closed_loop(name, problem, seed):
    """Each model takes its own gradient (the real training loop). Teacher-forced runs agree to < 1e-13; here
    the MLP amplifies 1-ulp differences to ~1e-12 within 40 steps (to ~2e-10 in RMSprop's momentum buffer on
    the fast path, whose sqrt is correctly rounded where torch's vectorised sqrt is not), hence 1e-9."""
    run_side_by_side(name, problem, seed, steps=40, closed_loop=True, rtol=1e-9)


def test_hyperparameter_draws_cover_the_options():
    """The random draws above do exercise every switch (so the side-by-side tests cover them)."""
    seen: dict[str, set] = {}
    for name in NAMES:
        for seed in (0, 1, 2, 10, 11):
            rng = np.random.default_rng(seed)
            for _ in range(3):
                for k, v in sample_hyperparameters(name, rng).items():
                    seen.setdefault(f"{name}.{k}", set()).add(v if isinstance(v, bool) else v != 0)
    for key in ("Adam.amsgrad", "Adam.decoupled_weight_decay", "SGD.nesterov", "RMSprop.centered"):
        assert seen[key] == {True, False}, key
    for key in ("Adam.weight_decay", "SGD.momentum", "SGD.dampening", "Adagrad.lr_decay", "RMSprop.momentum"):
        assert seen[key] == {True, False}, key
    assert seen["Adagrad.initial_accumulator_value"] == {True, False}
    maximize = {bool(np.random.default_rng(s).random() < 0.3) for s in range(12)}
    assert maximize == {True, False}


def test_adagrad_initial_accumulator_value_per_group():
    """A group's own initial_accumulator_value is honoured; torch.optim.Adagrad (2.13) fills every group's
    sum with the constructor's value instead. Both agree when the groups share it (the tests above)."""
    a = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    groups = [{"params": [a]}, {"params": [b], "initial_accumulator_value": 3.0}]
    ours = adamlab.torch.Adagrad(groups, lr=0.1)
    ref = torch.optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 3.0}], lr=0.1)
    (a.sum() + b.sum()).backward()
    ours.step()
    assert torch.equal(ours.state[b]["sum"], torch.full((2,), 4.0, dtype=torch.float64))
    assert torch.equal(ours.state[a]["sum"], torch.full((2,), 1.0, dtype=torch.float64))
    assert torch.equal(ref.state[b]["sum"], torch.zeros(2, dtype=torch.float64))  # torch's quirk


def test_defaults_match_torch_optim():
    p = torch.nn.Parameter(torch.zeros(1))
    for name in NAMES:
        ours, ref = getattr(adamlab.torch, name)([p]).defaults, getattr(torch.optim, name)([p]).defaults
        for k, v in ref.items():
            if k in ours:
                assert ours[k] == v, (name, k)


@pytest.mark.parametrize("name", [*NAMES, "NAdam", "RAdam"])
def test_positional_parameters_are_torch_optims(name, request):
    """Positional calls mean what they mean in torch.optim (Adagrad's sixth is foreach, not maximize)."""
    import inspect

    def positional(cls):
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names = [p.name for p in inspect.signature(cls).parameters.values() if p.kind in kinds]
        return names[names.index("params") + 1 :]

    ours, ref = getattr(adamlab.torch, name), getattr(torch.optim, name)
    assert positional(ours) == positional(ref)
    values = {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True, "momentum": 0.5,
              "dampening": 0.1, "nesterov": False, "lr_decay": 0.01, "initial_accumulator_value": 0.2, "alpha": 0.9,
              "centered": True, "rho": 0.8, "momentum_decay": 0.003, "decoupled_weight_decay": True, "foreach": True,
              "capturable": False, "maximize": False, "differentiable": False}  # fmt: skip
    args = [values[n] for n in positional(ref)]
    if name == "NAdam":  # torch.optim.NAdam keeps mu_product in the default dtype (see test_nadam_radam.py)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        request.addfinalizer(lambda: torch.set_default_dtype(previous))
    ref_model = Quadratic(3)
    ours_model = copy.deepcopy(ref_model)
    opt_ref, opt_ours = ref(ref_model.parameters(), *args), ours(ours_model.parameters(), *args)
    for k in set(opt_ref.defaults) & set(opt_ours.defaults):
        assert opt_ours.defaults[k] == opt_ref.defaults[k], k
    train_pair(ours_model, opt_ours, ref_model, opt_ref, 20)
    assert_same_run(ours_model, ref_model, opt_ours, opt_ref)
    with pytest.raises(TypeError, match="multiple values for argument 'lr'"):
        ours(ours_model.parameters(), 0.1, lr=0.2)
    with pytest.raises(TypeError, match="positional arguments after params"):
        ours(ours_model.parameters(), *args, None)


def test_positional_arguments_match_torch_optim():
    ref_model = Quadratic(3)
    ours_model = copy.deepcopy(ref_model)
    opt_ref = torch.optim.Adam(ref_model.parameters(), 0.01, (0.8, 0.9), 1e-6, 0.1, True)
    opt_ours = adamlab.torch.Adam(ours_model.parameters(), 0.01, (0.8, 0.9), 1e-6, 0.1, True)
    assert opt_ours.defaults["amsgrad"] is True and opt_ours.defaults["weight_decay"] == 0.1
    train_pair(ours_model, opt_ours, ref_model, opt_ref, 50)
    assert_same_run(ours_model, ref_model, opt_ours, opt_ref)


# --- the Optimizer contract -------------------------------------------------------------------------------


def test_parameter_without_grad_is_untouched():
    a = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    opt = adamlab.torch.Adam([a, b], lr=0.1)
    (a**2).sum().backward()
    assert b.grad is None
    opt.step()
    assert torch.equal(b, torch.tensor([3.0, 4.0], dtype=torch.float64))
    assert len(opt.state[b]) == 0 and opt.state[a]["step"] == 1
    # b gets state after a step with a gradient; then a step without one leaves b and its state as they are
    opt.zero_grad()
    (a**2 + b**2).sum().backward()
    opt.step()
    b_after, state_after = b.detach().clone(), {k: copy.deepcopy(v) for k, v in opt.state[b].items()}
    opt.zero_grad(set_to_none=True)
    (a**2).sum().backward()
    opt.step()
    assert torch.equal(b, b_after)
    assert opt.state[b]["step"] == state_after["step"] == 1 and opt.state[a]["step"] == 3
    for k in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(opt.state[b][k], state_after[k])


def test_zero_grad():
    model = Quadratic(0)
    opt = adamlab.torch.SGD(model.parameters(), lr=0.1)
    model().backward()
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in model.parameters())
    model().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and torch.equal(p.grad, torch.zeros_like(p)) for p in model.parameters())
    opt.zero_grad()  # torch's default is set_to_none=True
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_step_with_closure_returns_the_loss(name):
    ref, ours = Quadratic(1), Quadratic(1)
    opt_ref = getattr(torch.optim, name)(ref.parameters())
    opt_ours = getattr(adamlab.torch, name)(ours.parameters())
    returned = []

    def closure_for(model, opt):
        def closure():
            opt.zero_grad()
            loss = model()
            loss.backward()
            returned.append(loss)
            return loss

        return closure

    for _ in range(5):
        loss = opt_ours.step(closure_for(ours, opt_ours))
        assert loss is returned[-1]
        opt_ref.step(closure_for(ref, opt_ref))
    assert_same_run(ours, ref, opt_ours, opt_ref)
    assert opt_ours.step() is None  # without a closure: None, as torch.optim


@pytest.mark.parametrize(
    "make_scheduler",
    [
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1.0 + 0.1 * epoch)),
    ],
    ids=["StepLR", "LambdaLR"],
)
@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop"])
def test_lr_schedulers(name, make_scheduler):
    rng = np.random.default_rng(5)
    ref = MLP(5)
    ours = copy.deepcopy(ref)
    hypers = [sample_hyperparameters(name, rng) for _ in ref.groups()]
    opt_ref = getattr(torch.optim, name)(param_groups(ref, hypers))
    opt_ours = getattr(adamlab.torch, name)(param_groups(ours, hypers))
    sched_ref, sched_ours = make_scheduler(opt_ref), make_scheduler(opt_ours)
    train_pair(ours, opt_ours, ref, opt_ref, 30, sched_ours=sched_ours, sched_ref=sched_ref)
    assert [g["lr"] for g in opt_ours.param_groups] == [g["lr"] for g in opt_ref.param_groups]
    assert opt_ours.param_groups[0]["lr"] < hypers[0]["lr"]  # the schedule did act
    assert sched_ours.get_last_lr() == sched_ref.get_last_lr()
    assert_same_run(ours, ref, opt_ours, opt_ref)


# --- checkpoints ------------------------------------------------------------------------------------------

CHECKPOINT_CASES = [(name, {}) for name in NAMES] + [
    ("Adam", dict(averaging="ema", averaging_decay=0.9)),
    ("SGD", dict(averaging="polyak")),
    ("Adam", dict(preset="keras")),
]


@pytest.mark.parametrize(("name", "extra"), CHECKPOINT_CASES, ids=lambda v: str(v))
def test_state_dict_round_trip_is_exact(name, extra):
    rng = np.random.default_rng(7)
    model = MLP(7)
    hypers = [sample_hyperparameters(name, rng) for _ in model.groups()]
    opt = getattr(adamlab.torch, name)(param_groups(model, hypers), **extra)
    train(model, opt, 15)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    train(model, opt, 15)  # the uninterrupted run

    buffer.seek(0)
    saved = torch.load(buffer)  # weights_only=True: the state dict holds only plain types and tensors
    resumed = MLP(70)  # other weights: the load below must overwrite them
    opt2 = getattr(adamlab.torch, name)(param_groups(resumed, [{} for _ in hypers]), **extra)
    resumed.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt2.param_groups] == [
        {k: v for k, v in g.items() if k != "params"} for g in opt.param_groups
    ]
    train(resumed, opt2, 15)
    for p, q in zip(resumed.parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q)
        assert opt2.state[p].keys() == opt.state[q].keys()
        for k, v in opt.state[q].items():
            assert torch.equal(opt2.state[p][k], v) if torch.is_tensor(v) else opt2.state[p][k] == v
    if "averaging" in extra:
        with opt.averaged_parameters(), opt2.averaged_parameters():
            for p, q in zip(resumed.parameters(), model.parameters(), strict=True):
                assert torch.equal(p, q)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["torch_to_adamlab", "adamlab_to_torch"])
def test_state_dict_interchange_with_torch_optim(name, direction):
    rng = np.random.default_rng(8)
    first = MLP(8)
    hypers = [sample_hyperparameters(name, rng) for _ in first.groups()]
    if name == "SGD":
        hypers = [{**h, "momentum": 0.9, "dampening": 0.0} for h in hypers]  # so there is state to carry
    source_face, target_face = (
        (torch.optim, adamlab.torch) if direction == "torch_to_adamlab" else (adamlab.torch, torch.optim)
    )
    opt = getattr(source_face, name)(param_groups(first, hypers))
    train(first, opt, 20)
    second = copy.deepcopy(first)
    opt2 = getattr(target_face, name)(param_groups(second, [{} for _ in hypers]))
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # (torch.optim's load aliases the tensors it is given)
    for g2, g in zip(opt2.param_groups, opt.param_groups, strict=True):
        assert all(g2[k] == g[k] for k in g if k in g2 and k != "params")
    ours, ref = (second, first) if direction == "torch_to_adamlab" else (first, second)
    opt_ours, opt_ref = (opt2, opt) if direction == "torch_to_adamlab" else (opt, opt2)
    train_pair(ours, opt_ours, ref, opt_ref, 50)
    assert_same_run(ours, ref, opt_ours, opt_ref)


def test_malformed_state_dict_raises():
    model = Quadratic(0)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.1)
    train(model, opt, 2)
    good = opt.state_dict()

    missing = copy.deepcopy(good)
    del missing["state"][1]["exp_avg_sq"]
    with pytest.raises(ValueError, match=r"state of parameter 1 does not match Adam \(missing exp_avg_sq\)"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict(missing)

    extra = copy.deepcopy(good)
    extra["state"][0]["max_exp_avg_sq"] = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"state of parameter 0 does not match Adam \(unexpected max_exp_avg_sq\)"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict(extra)

    shape = copy.deepcopy(good)
    shape["state"][0]["exp_avg"] = torch.zeros(6, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(6,\); expected \(5,\)"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict(shape)

    not_tensor = copy.deepcopy(good)
    not_tensor["state"][0]["exp_avg"] = [0.0] * 5
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape list"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict(not_tensor)

    with pytest.raises(ValueError, match=r"state_dict has 2 param groups; this optimizer has 1"):
        m = Quadratic(0)
        adamlab.torch.Adam([{"params": [m.x1, m.x2]}]).load_state_dict(
            {"state": {}, "param_groups": [{"params": [0]}, {"params": [1]}]}
        )
    with pytest.raises(ValueError, match=r"param group 0: state_dict has 1 params; the optimizer has 2"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict(
            {"state": {}, "param_groups": [{**good["param_groups"][0], "params": [0]}]}
        )
    unknown = copy.deepcopy(good)
    unknown["state"][7] = unknown["state"].pop(1)
    with pytest.raises(ValueError, match=r"state_dict has state for parameter id 7, which no param group lists"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict(unknown)
    with pytest.raises(ValueError, match=r"state_dict must have 'state' \(a dict\) and 'param_groups' \(a list\)"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict({"state": {}})
    # an SGD state cannot be loaded into Adam
    sgd = adamlab.torch.SGD(model.parameters(), momentum=0.9)
    train(model, sgd, 1)
    with pytest.raises(ValueError, match=r"missing exp_avg, exp_avg_sq\) \(unexpected momentum_buffer\)"):
        adamlab.torch.Adam(Quadratic(0).parameters()).load_state_dict(sgd.state_dict())


def test_failed_load_leaves_the_optimizer_as_it_was():
    model = Quadratic(0)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.1)
    train(model, opt, 2)
    before = copy.deepcopy(opt.state_dict())
    bad = copy.deepcopy(before)
    bad["state"][1]["exp_avg"] = torch.zeros(2)
    bad["param_groups"][0]["lr"] = 0.5
    with pytest.raises(ValueError):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for k, s in before["state"].items():
        for name, v in s.items():
            assert torch.equal(after["state"][k][name], v) if torch.is_tensor(v) else after["state"][k][name] == v


# --- dtypes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["torch", "paper"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop"])
def test_parameter_dtypes(name, dtype, preset):
    """Under preset torch the state is kept in the parameter's dtype, as torch.optim keeps it (bfloat16 state for
    bfloat16 parameters); under the other presets low-precision parameters get float32 state and arithmetic."""
    model = Quadratic(2, dtype=dtype)
    extra = {"momentum": 0.9} if name != "Adam" else {}
    if name != "SGD":
        extra["eps"] = 0.1  # (1e-8 is 0 in float16: √v + ε would be 0)
    opt = getattr(adamlab.torch, name)(model.parameters(), lr=0.01, preset=preset, **extra)
    p0 = [p.detach().clone() for p in model.parameters()]
    train(model, opt, 10)
    low = dtype not in (torch.float32, torch.float64)
    state_dtype = torch.float32 if low and preset != "torch" else dtype
    for p, start in zip(model.parameters(), p0, strict=True):
        assert p.dtype == dtype and torch.isfinite(p).all() and not torch.equal(p, start)
        assert opt.state[p]["step"].dtype == torch.float32  # torch's format
        for k, v in opt.state[p].items():
            if torch.is_tensor(v) and k != "step":
                assert v.dtype == state_dtype, (k, v.dtype)
    # the arithmetic is the rule's in the state dtype, rounded to the parameter's dtype after each step
    rule = opt.rule_for(opt.param_groups[0])
    check = Quadratic(2, dtype=dtype)
    states = {}
    for t in range(1, 11):
        check.zero_grad()
        check().backward()
        with torch.no_grad():
            for p in check.parameters():
                state = states.setdefault(p, rule.init(p.to(state_dtype)))
                new, states[p] = rule.step(p.to(state_dtype), p.grad.to(state_dtype), state, t)
                p.copy_(new)
    for p, q in zip(model.parameters(), check.parameters(), strict=True):
        assert torch.equal(p, q)  # (float32/float64: the fast path's kernel, bit-identical to the rule)


def test_float32_matches_torch_optim_closely():
    ref = Quadratic(4, dtype=torch.float32)
    ours = copy.deepcopy(ref)
    opt_ref, opt_ours = torch.optim.Adam(ref.parameters(), lr=0.01), adamlab.torch.Adam(ours.parameters(), lr=0.01)
    train_pair(ours, opt_ours, ref, opt_ref, 100)
    assert_same_run(ours, ref, opt_ours, opt_ref, rtol=1e-5)


@pytest.mark.parametrize("kw", [dict(fast=False), dict(), dict(dtype=torch.bfloat16)])
def test_loaded_state_without_an_entry_for_a_parameter_still_steps(kw):
    """A checkpoint taken while a parameter had no gradient yet (a frozen layer) lists no state for it:
    after loading, its first step starts its state, as torch.optim's defaultdict does."""
    dtype = kw.pop("dtype", torch.float64)
    a, b = (torch.nn.Parameter(torch.ones(3, dtype=dtype)) for _ in range(2))
    opt = adamlab.torch.Adam([a, b], lr=0.1, **kw)
    a.grad = torch.ones_like(a)
    opt.step()
    saved = opt.state_dict()
    assert list(saved["state"]) == [0]
    fresh = adamlab.torch.Adam([a, b], lr=0.1, **kw)
    fresh.load_state_dict(saved)
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    fresh.step()
    assert fresh.state[a]["step"] == 2 and fresh.state[b]["step"] == 1
    sgd = adamlab.torch.SGD([a, b], lr=0.1, **kw)
    sgd.load_state_dict(torch.optim.SGD([a, b], lr=0.1).state_dict())  # torch's momentum-free SGD: no state
    sgd.step()


def test_rule_cache_stays_small_under_a_scheduler():
    model = Quadratic(0)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 / (1 + i))
    for _ in range(600):
        opt.step()
        sched.step()
    assert len(opt._rules) <= 256


def test_state_dtype_option():
    model = Quadratic(0, dtype=torch.float32)
    opt = adamlab.torch.Adam(model.parameters(), state_dtype=torch.float64)
    train(model, opt, 2)
    assert opt.state[model.x1]["exp_avg"].dtype == torch.float64
    assert model.x1.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_complex_parameters_match_torch_optim(name):
    rng = np.random.default_rng(9)
    g = torch.Generator().manual_seed(9)
    z_ref = torch.nn.Parameter(torch.randn(6, dtype=torch.complex128, generator=g))
    z_ours = torch.nn.Parameter(z_ref.detach().clone())
    target = torch.randn(6, dtype=torch.complex128, generator=g)
    hyper = sample_hyperparameters(name, rng)
    opt_ref = getattr(torch.optim, name)([z_ref], **hyper)
    opt_ours = getattr(adamlab.torch, name)([z_ours], **hyper)
    distance0 = (z_ref - target).abs().sum().item()
    for _ in range(STEPS):
        opt_ref.zero_grad()
        ((z_ref - target).abs() ** 2).sum().backward()
        z_ours.grad = z_ref.grad.clone()
        opt_ref.step()
        opt_ours.step()
    assert z_ours.dtype == torch.complex128
    assert max_rel_diff(z_ours, z_ref) <= RTOL
    assert (z_ref - target).abs().sum().item() < distance0
    for k, v in opt_ref.state[z_ref].items():
        if k != "step" and v is not None:
            assert opt_ours.state[z_ours][k].dtype == v.dtype
            assert max_rel_diff(opt_ours.state[z_ours][k], v) <= RTOL


# --- non-finite gradients -----------------------------------------------------------------------------------


def _snapshot(model, opt):
    return [p.detach().clone() for p in model.parameters()], copy.deepcopy(opt.state_dict()["state"])


def _assert_snapshot(model, opt, snap):
    params, state = snap
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params, strict=True))
    now = opt.state_dict()["state"]
    assert now.keys() == state.keys()
    for k, s in state.items():
        for name, v in s.items():
            assert torch.equal(now[k][name], v) if torch.is_tensor(v) else now[k][name] == v


def _poison(model, value=float("nan")):
    model.zero_grad()
    model().backward()
    model.x2.grad[1, 2] = value  # one bad entry in one parameter; x1's gradient is fine


def test_nonfinite_raise():
    model = Quadratic(0)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.1)
    assert opt.nonfinite == "raise"  # the default
    train(model, opt, 3)
    snap = _snapshot(model, opt)
    for bad in (float("nan"), float("inf"), -float("inf")):
        _poison(model, bad)
        with pytest.raises(adamlab.NonFiniteError, match="no parameter was changed"):
            opt.step()
        _assert_snapshot(model, opt, snap)
    assert issubclass(adamlab.NonFiniteError, FloatingPointError)
    # a non-finite loss from the closure raises too, even with finite gradients

    def closure():
        opt.zero_grad()
        model().backward()
        return torch.tensor(float("inf"))

    with pytest.raises(adamlab.NonFiniteError):
        opt.step(closure)
    _assert_snapshot(model, opt, snap)
    for loss in (float("nan"), np.float32("inf"), np.array(np.nan), np.float64("-inf")):  # every kind of number
        with pytest.raises(adamlab.NonFiniteError):
            opt.step(lambda loss=loss: loss)
    _assert_snapshot(model, opt, snap)
    assert opt.step(lambda: (1.0, "aux")) == (1.0, "aux")  # not a number: returned, not judged


def test_nonfinite_skip():
    model = Quadratic(0)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.1, nonfinite="skip")
    train(model, opt, 3)
    snap = _snapshot(model, opt)
    _poison(model)
    opt.step()
    assert opt.skipped_steps == 1
    _assert_snapshot(model, opt, snap)
    _poison(model, float("inf"))
    assert opt.step(lambda: torch.tensor(1.0)) is not None  # the closure's loss is still returned
    assert opt.skipped_steps == 2
    _assert_snapshot(model, opt, snap)
    # the next finite step is step 4, exactly as if the bad ones never happened
    clean = Quadratic(0)
    opt_clean = adamlab.torch.Adam(clean.parameters(), lr=0.1)
    train(clean, opt_clean, 4)
    train(model, opt, 1)
    assert opt.state[model.x1]["step"] == 4
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), clean.parameters(), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_ignore_propagates_like_torch(name):
    ref = Quadratic(0)
    ours = copy.deepcopy(ref)
    opt_ref = getattr(torch.optim, name)(ref.parameters(), lr=0.01)
    opt_ours = getattr(adamlab.torch, name)(ours.parameters(), lr=0.01, nonfinite="ignore")
    for model, opt in ((ref, opt_ref), (ours, opt_ours)):
        train(model, opt, 2)
        _poison(model)
        opt.step()
        train(model, opt, 2)
    assert torch.isnan(ours.x2).any() and opt_ours.skipped_steps == 0
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12, atol=0, equal_nan=True)
        np.testing.assert_array_equal(torch.isnan(p).numpy(), torch.isnan(q).numpy())


# --- averaging (paper §7.2) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ema", "polyak"])
def test_averaged_parameters(mode):
    model = Quadratic(6)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.05, averaging=mode, averaging_decay=0.9)
    iterates = []
    for _ in range(30):
        train(model, opt, 1)
        iterates.append([p.detach().clone() for p in model.parameters()])
    current = [p.detach().clone() for p in model.parameters()]
    for i, p in enumerate(model.parameters()):
        path = torch.stack([it[i] for it in iterates])
        if mode == "polyak":
            expected = path.mean(0)
        else:
            bar = torch.zeros_like(p)
            for t in range(1, 31):
                bar = 0.9 * bar + 0.1 * path[t - 1]
            expected = bar / (1 - 0.9**30)
        with opt.averaged_parameters():
            assert max_rel_diff(p, expected) <= 1e-13
            assert not torch.equal(p, current[i])
        assert torch.equal(p, current[i])  # restored exactly
    # restored even when the body raises
    with pytest.raises(RuntimeError, match="boom"), opt.averaged_parameters():
        raise RuntimeError("boom")
    assert all(torch.equal(p, c) for p, c in zip(model.parameters(), current, strict=True))
    with opt.averaged_parameters():
        averaged = [p.detach().clone() for p in model.parameters()]
    opt.swap_averaged()
    assert all(torch.equal(p, a) for p, a in zip(model.parameters(), averaged, strict=True))


def test_averaging_is_off_by_default():
    model = Quadratic(0)
    opt = adamlab.torch.Adam(model.parameters())
    train(model, opt, 1)
    assert "param_avg" not in opt.state[model.x1]
    with pytest.raises(ValueError, match="keeps no average"), opt.averaged_parameters():
        pass
    with pytest.raises(ValueError, match="keeps no average"):
        opt.swap_averaged()


# --- invalid arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("Adam", dict(lr=-1.0), r"^lr must be a finite number in \[0, inf\)"),
        ("Adam", dict(lr=float("nan")), r"^lr must be"),
        ("Adam", dict(betas=(0.9, 1.0)), r"^betas\[1\] must be a finite number in \[0, 1\)"),
        ("Adam", dict(eps=-1e-8), r"^eps must be"),
        ("Adam", dict(amsgrad_max_of="max"), r"^amsgrad_max_of must be one of"),
        ("AdamW", dict(weight_decay=-0.1), r"^weight_decay must be"),
        ("SGD", dict(nesterov=True), r"nesterov=True requires momentum > 0"),
        ("RMSprop", dict(alpha=1.5), r"^alpha must be a finite number in \[0, 1\]"),
        ("Adadelta", dict(rho=-0.5), r"^rho must be"),
        ("Adam", dict(preset="tf"), r"^preset must be one of"),
        ("Adam", dict(nonfinite="warn"), r"^nonfinite must be one of 'raise', 'skip', 'ignore'"),
        ("Adam", dict(averaging="mean"), r"^averaging must be one of 'polyak', 'ema'"),
        ("Adam", dict(averaging="ema", averaging_decay=1.5), r"^averaging_decay must be"),
        ("Adam", dict(averaging_decay=-0.5), r"^averaging_decay must be"),
        ("Adam", dict(state_dtype=torch.int64), r"^state_dtype must be None or a floating torch dtype"),
        ("Adam", dict(state_dtype="float32"), r"^state_dtype must be None or a floating torch dtype"),
        # concrete tensors are checked like numbers (torch.optim checks them too)
        ("Adam", dict(lr=torch.tensor(-0.5)), r"^lr must be a finite number in \[0, inf\); got -0.5"),
        ("Adam", dict(lr=torch.tensor(float("nan"))), r"^lr must be"),
        ("Adam", dict(lr=torch.tensor([0.1, -0.2])), r"^lr must be"),
        ("Adam", dict(betas=(torch.tensor(1.5), 0.9)), r"^betas\[0\] must be"),
        ("Adam", dict(eps=torch.tensor(-1.0, dtype=torch.bfloat16)), r"^eps must be"),
    ],
)
def test_invalid_arguments_raise_at_construction(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(adamlab.torch, name)(Quadratic(0).parameters(), **kwargs)


def test_unknown_keyword_raises_type_error_like_torch():
    with pytest.raises(TypeError):
        adamlab.torch.Adam(Quadratic(0).parameters(), momentum=0.9)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        (dict(lr=-0.1), r"^lr must be"),
        (dict(betas=(1.2, 0.9)), r"^betas\[0\] must be"),
        (dict(averaging="median"), r"^averaging must be one of"),
        (dict(preset="jax"), r"^preset must be one of"),
    ],
)
def test_invalid_param_group_raises_at_add_param_group(group, message):
    model = Quadratic(0)
    opt = adamlab.torch.Adam([model.x1], lr=0.1)
    with pytest.raises(ValueError, match=message):
        opt.add_param_group({"params": [model.x2], **group})
    # the bad group was not kept: the optimizer still works on what it had
    assert len(opt.param_groups) == 1
    train(model, opt, 1)
    opt.add_param_group({"params": [model.x2], "lr": 0.2})
    assert opt.param_groups[1]["lr"] == 0.2 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    train(model, opt, 1)
    assert opt.state[model.x2]["step"] == 1


def test_drop_in_isinstance():
    opt = adamlab.torch.AdamW(Quadratic(0).parameters())
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.defaults["preset"] == "torch" and opt.defaults["weight_decay"] == 1e-2
