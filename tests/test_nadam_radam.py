"""NAdam (Dozat 2016) and RAdam (Liu et al. 2020): the papers' formulas, each framework's convention by preset,
the step count as an array (the path ``jax.jit`` takes), and the PyTorch and NumPy faces."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import adamlab
import adamlab.numpy
import adamlab.torch
from adamlab.rules import RULES

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.3, -0.7, 1.5]), np.array([-0.2, 0.4, 1.0])] * 4


def run(rule, steps=12, start=(1.0, -2.0, 0.5)):
    p = np.array(start)
    state = rule.init(p)
    for t, g in enumerate(GRADS[:steps], start=1):
        p, state = rule.step(p, g, state, t)
    return p, state


def dozat_nadam(lr, b1, b2, eps, psi, steps=12, start=(1.0, -2.0, 0.5), product_dtype=float):
    """Dozat 2016, Algorithm 2 written out with the μ_t = β1(1 − ½·0.96^(tψ)) schedule; Π_t is rounded to
    ``product_dtype`` after each product (torch.optim keeps it in torch's default dtype, float32)."""
    p, m, v, prod = np.array(start), np.zeros(3), np.zeros(3), 1.0
    for t, g in enumerate(GRADS[:steps], start=1):
        mu, mu_next = (b1 * (1 - 0.5 * 0.96 ** (k * psi)) for k in (t, t + 1))
        prod = float(product_dtype(product_dtype(prod) * product_dtype(mu)))
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_bar = (1 - mu) * g / (1 - prod) + mu_next * m / (1 - prod * mu_next)
        p = p - lr * m_bar / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_nadam_is_dozats_algorithm_in_the_paper_and_torch_presets():
    for preset, product_dtype in (("paper", np.float64), ("torch", np.float32)):
        p, state = run(adamlab.NAdam(lr=0.01, preset=preset))
        expected = dozat_nadam(0.01, 0.9, 0.999, 1e-8, 4e-3, product_dtype=product_dtype)
        np.testing.assert_allclose(p, expected, rtol=1e-14)
        assert state["mu_product"].shape == () and state["mu_product"].dtype == product_dtype


def test_keras_nadam_schedule_has_no_psi():
    rule = adamlab.NAdam(lr=0.01, preset="keras")
    assert (rule.momentum_decay, rule.eps, rule.decoupled_weight_decay) == (1.0, 1e-7, True)
    np.testing.assert_allclose(run(rule)[0], dozat_nadam(0.01, 0.9, 0.999, 1e-7, 1.0), rtol=1e-14)


def test_optax_nadam_is_adam_with_nesterov():
    nadam = adamlab.NAdam(lr=0.01, preset="optax")
    assert nadam.momentum_schedule is False and "mu_product" not in nadam.init(np.zeros(3))
    p_nadam, _ = run(nadam)
    p_adam, _ = run(adamlab.Adam(lr=0.01, nesterov=True, preset="optax"))
    np.testing.assert_allclose(p_nadam, p_adam, rtol=1e-15)
    b1, b2, p, m, v = 0.9, 0.999, np.array([1.0, -2.0, 0.5]), 0.0, 0.0
    for t, g in enumerate(GRADS, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        p = p - 0.01 * m_hat / (np.sqrt(v / (1 - b2**t)) + 1e-8)
    np.testing.assert_allclose(p_nadam, p, rtol=1e-14)


def rho(t, b2=0.999):
    rho_inf = 2 / (1 - b2) - 1
    return rho_inf - 2 * t * b2**t / (1 - b2**t)


def test_radam_steps_are_momentum_sgd_until_the_variance_is_tractable():
    lr, b1 = 0.01, 0.9
    for preset, first_rectified in (("torch", 6), ("optax", 6), ("paper", 5)):
        p, m = np.array([1.0, -2.0, 0.5]), 0.0
        rule = adamlab.RAdam(lr=lr, preset=preset)
        for t in range(1, first_rectified):
            m = b1 * m + (1 - b1) * GRADS[t - 1]
            p = p - lr * m / (1 - b1**t)
        np.testing.assert_allclose(run(rule, steps=first_rectified - 1)[0], p, rtol=1e-15)
        assert not np.allclose(run(rule, steps=first_rectified)[0], p - lr * m, rtol=1e-6)


def test_radam_rectified_step_forms():
    lr, b1, b2, eps, t = 0.01, 0.9, 0.999, 1e-3, 7
    m, v = 0.0, 0.0
    for g in GRADS[:t]:
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    rho_inf, r_t = 2 / (1 - b2) - 1, rho(t)
    r = math.sqrt((r_t - 4) * (r_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * r_t))
    m_hat, bc2 = m / (1 - b1**t), 1 - b2**t
    start = np.array([1.0, -2.0, 0.5])
    torch_form = run(adamlab.RAdam(lr=lr, eps=eps, preset="torch"), steps=t)[0]
    optax_form = run(adamlab.RAdam(lr=lr, eps=eps, preset="optax"), steps=t)[0]
    before = run(adamlab.RAdam(lr=lr, eps=eps, preset="torch"), steps=t - 1)[0]
    np.testing.assert_allclose(torch_form, before - lr * r * m_hat * math.sqrt(bc2) / (np.sqrt(v) + eps), rtol=1e-14)
    before = run(adamlab.RAdam(lr=lr, eps=eps, preset="optax"), steps=t - 1)[0]
    np.testing.assert_allclose(optax_form, before - lr * r * m_hat / (np.sqrt(v / bc2) + eps), rtol=1e-14)
    assert not np.allclose(torch_form, optax_form, rtol=1e-9)
    assert start.shape == torch_form.shape


def test_radam_threshold_inclusive_decides_at_equality():
    t = 8
    at_threshold = dict(lr=0.01, threshold=rho(t), eps_hat=False)
    inclusive = run(adamlab.RAdam(**at_threshold, threshold_inclusive=True), steps=t)[0]
    exclusive = run(adamlab.RAdam(**at_threshold, threshold_inclusive=False), steps=t)[0]
    assert not np.allclose(inclusive, exclusive, rtol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(momentum_decay=-1.0), r"^momentum_decay must be"),
        (dict(momentum_schedule="yes"), r"^momentum_schedule must be True or False"),
        (dict(betas=(0.9, 1.0)), r"^betas\[1\] must be"),
    ],
)
def test_nadam_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adamlab.NAdam(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(threshold=3.0), r"^threshold must be a finite number in \[4, inf\)"), (dict(eps_root=-1.0), "^eps_root")],
)
def test_radam_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adamlab.RAdam(**kwargs)


def _variants():
    for name, rule_type in RULES.items():
        for preset in ("torch", "keras", "optax", "paper"):
            extra = {"momentum": 0.9, "dampening": 0.1} if name == "sgd" else {}
            extra |= {"amsgrad": True} if name in ("adam", "adamw") else {}
            extra |= {"momentum": 0.5, "centered": True} if name == "rmsprop" else {}
            yield pytest.param(rule_type(preset=preset, **extra), id=f"{name}-{preset}")
    yield pytest.param(adamlab.Adam(nesterov=True, eps_hat=True), id="adam-nesterov-eps_hat")
    yield pytest.param(adamlab.RAdam(nesterov=True), id="radam-nesterov")
    yield pytest.param(adamlab.Averaged(adamlab.Adam(), "ema"), id="averaged")


@pytest.mark.parametrize("rule", list(_variants()))
def test_an_array_step_count_gives_the_host_path_result(rule):
    """The optax face passes t as a (traced) int32 array and the Keras face as a float; the result must agree."""
    p_host, s_host = np.array([1.0, -2.0, 0.5]), None
    p_arr = p_host.copy()
    s_host, s_arr = rule.init(p_host), rule.init(p_arr)
    for t, g in enumerate(GRADS, start=1):
        p_host, s_host = rule.step(p_host, g, s_host, t)
        p_arr, s_arr = rule.step(p_arr, g, s_arr, np.array(t, dtype=np.int32))
    np.testing.assert_allclose(p_arr, p_host, rtol=1e-13)
    assert p_arr.dtype == np.float64


def test_an_array_step_count_keeps_float32():
    for name in ("adam", "nadam", "radam", "adamax"):
        rule = RULES[name](lr=0.01)
        p = np.ones(3, dtype=np.float32)
        state = rule.init(p)
        for t in range(1, 8):
            p, state = rule.step(p, np.full(3, 0.5, dtype=np.float32), state, np.array(t, dtype=np.int32))
        assert p.dtype == np.float32, name
        assert all(v.dtype == np.float32 for v in state.values()), name


# --- faces --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["NAdam", "RAdam"])
def test_torch_face_state_dicts_interchange_with_torch_optim(name):
    torch.manual_seed(0)
    w0 = torch.randn(4, 3, dtype=torch.float64)
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch.optim.NAdam keeps mu_product in the default dtype
    try:
        ref = getattr(torch.optim, name)([a], lr=0.01, weight_decay=0.01)
        for i in range(7):
            a.grad = torch.sin(a.detach() + i)
            ref.step()
        ours = getattr(adamlab.torch, name)([b], lr=0.01, weight_decay=0.01)
        b.data.copy_(a.detach())
        ours.load_state_dict(copy.deepcopy(ref.state_dict()))
        for i in range(7, 15):
            a.grad, b.grad = torch.sin(a.detach() + i), torch.sin(b.detach() + i)
            ref.step()
            ours.step()
        torch.testing.assert_close(b, a, rtol=1e-13, atol=0)
        back = getattr(torch.optim, name)([torch.nn.Parameter(w0.clone())], lr=0.01)
        back.load_state_dict(ours.state_dict())
    finally:
        torch.set_default_dtype(previous)


def test_torch_face_rejects_a_mu_product_of_the_wrong_shape():
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = adamlab.torch.NAdam([p])
    p.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["mu_product"] = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"state 'mu_product' of parameter 0 has shape \(3,\); expected \(\)"):
        opt.load_state_dict(sd)


def test_torch_face_nadam_on_complex_parameters_matches_torch_optim():
    z0 = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128)
    a, b = torch.nn.Parameter(z0.clone()), torch.nn.Parameter(z0.clone())
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref, ours = torch.optim.NAdam([a], lr=0.05), adamlab.torch.NAdam([b], lr=0.05)
        for i in range(10):
            a.grad = b.grad = torch.tensor([0.3 - 0.2j, 1j * i], dtype=torch.complex128)
            ref.step()
            ours.step()
    finally:
        torch.set_default_dtype(previous)
    torch.testing.assert_close(b, a, rtol=1e-13, atol=0)
    assert ours.state[b]["mu_product"].shape == () and ours.state[b]["exp_avg"].is_complex()


@pytest.mark.parametrize("name", ["NAdam", "RAdam"])
def test_numpy_face_runs_the_rule(name):
    opt = getattr(adamlab.numpy, name)(lr=0.05)
    params = {"w": np.ones(3)}
    rule = opt.rule
    p, state = np.ones(3), rule.init(np.ones(3))
    for t, g in enumerate(GRADS, start=1):
        params = opt.step(params, {"w": g})
        p, state = rule.step(p, g, state, t)
    np.testing.assert_array_equal(params["w"], p)
    assert adamlab.make_rule(name.lower()).name == name.lower()
