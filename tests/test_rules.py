"""The rules' contract: validation, presets, purity, array genericity, step counting, AMSGrad, batching."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import adamlab
from adamlab.registry import OPTIMIZERS as REGISTRY
from adamlab.rules import ALIASES, OPTIMIZER_NAMES, RULES, make_rule

ALL_RULES = [adamlab.Adam, adamlab.AdamW, adamlab.Adamax, adamlab.SGD, adamlab.Adagrad, adamlab.RMSprop]
ALL_RULES.append(adamlab.Adadelta)

NONNEGATIVE = "[0, inf)"

# --- validation ---------------------------------------------------------------------------------------


def _nonneg_args(rule_type):
    names = set(rule_type.hyperparameter_names())
    return sorted(names & {"lr", "eps", "weight_decay", "eps_root", "momentum", "dampening", "lr_decay"})


@pytest.mark.parametrize("rule_type", ALL_RULES, ids=lambda r: r.__name__)
@pytest.mark.parametrize("bad", [-1e-3, float("nan"), float("inf"), -float("inf")])
def test_negative_or_nonfinite_numbers_raise(rule_type, bad):
    for arg in _nonneg_args(rule_type) + (["initial_accumulator_value"] if rule_type is adamlab.Adagrad else []):
        if arg == "eps" and rule_type is adamlab.Adadelta:
            continue  # (0, inf): tested below
        with pytest.raises(ValueError) as info:
            rule_type(**{arg: bad})
        message = str(info.value)
        assert message.startswith(f"{arg} must be"), message
        assert NONNEGATIVE in message, message


@pytest.mark.parametrize(
    ("rule_type", "arg"),
    [(r, a) for r in ALL_RULES for a in ("lr", "eps", "weight_decay") if a in r.hyperparameter_names()],
    ids=str,
)
@pytest.mark.parametrize("bad", ["0.1", True, {"lr": 0.1}, object(), ["a"]])
def test_non_numbers_raise(rule_type, arg, bad):
    with pytest.raises(ValueError, match=rf"^{arg} must be a number"):
        rule_type(**{arg: bad})


@pytest.mark.parametrize("rule_type", [adamlab.Adam, adamlab.AdamW, adamlab.Adamax], ids=lambda r: r.__name__)
@pytest.mark.parametrize(
    ("betas", "index"),
    [((1.0, 0.999), 0), ((0.9, 1.0), 1), ((-0.1, 0.999), 0), ((0.9, 1.5), 1), ((float("nan"), 0.9), 0)],
)
def test_betas_outside_unit_interval_raise(rule_type, betas, index):
    with pytest.raises(ValueError, match=rf"^betas\[{index}\] must be a finite number in \[0, 1\); got"):
        rule_type(betas=betas)


@pytest.mark.parametrize("betas", [0.9, (0.9,), (0.9, 0.99, 0.999), "0.9,0.999"])
def test_betas_not_a_pair_raise(betas):
    with pytest.raises(ValueError, match=r"^betas must be a pair \(beta1, beta2\), each in \[0, 1\)"):
        adamlab.Adam(betas=betas)


def test_betas_edges_are_accepted():
    assert adamlab.Adam(betas=(0.0, 0.0)).betas == (0.0, 0.0)
    assert adamlab.Adam(betas=[0.5, 0.999999]).betas == [0.5, 0.999999]


@pytest.mark.parametrize(
    ("rule_type", "arg", "bad", "interval"),
    [
        (adamlab.Adadelta, "eps", 0.0, "(0, inf)"),
        (adamlab.Adadelta, "rho", 1.5, "[0, 1]"),
        (adamlab.Adadelta, "rho", -0.1, "[0, 1]"),
        (adamlab.RMSprop, "alpha", 1.01, "[0, 1]"),
        (adamlab.RMSprop, "alpha", float("nan"), "[0, 1]"),
    ],
)
def test_bounded_arguments(rule_type, arg, bad, interval):
    with pytest.raises(ValueError) as info:
        rule_type(**{arg: bad})
    assert str(info.value).startswith(f"{arg} must be a finite number in {interval}")
    rule_type(**{arg: 1.0 if arg != "eps" else 1e-6})  # the closed end is fine


@pytest.mark.parametrize("rule_type", ALL_RULES, ids=lambda r: r.__name__)
@pytest.mark.parametrize("preset", ["pytorch", "Keras", "", None])
def test_unknown_preset_raises(rule_type, preset):
    with pytest.raises(ValueError, match=r"^preset must be one of paper, torch, keras, optax; got"):
        rule_type(preset=preset)


@pytest.mark.parametrize("bad", ["vhat", "max", "V", 1])
def test_bad_amsgrad_max_of_raises(bad):
    with pytest.raises(ValueError, match=r"^amsgrad_max_of must be one of 'v', 'v_hat'; got"):
        adamlab.Adam(amsgrad=True, amsgrad_max_of=bad)


@pytest.mark.parametrize("flag", ["amsgrad", "maximize", "decoupled_weight_decay", "bias_correction", "eps_hat"])
def test_flags_must_be_bool(flag):
    with pytest.raises(ValueError, match=rf"^{flag} must be True or False; got 1"):
        adamlab.Adam(**{flag: 1})


def test_nesterov_needs_momentum_and_no_dampening():
    with pytest.raises(ValueError, match=r"nesterov=True requires momentum > 0 and dampening = 0"):
        adamlab.SGD(nesterov=True)
    with pytest.raises(ValueError, match=r"nesterov=True requires momentum > 0 and dampening = 0"):
        adamlab.SGD(nesterov=True, momentum=0.9, dampening=0.1)
    assert adamlab.SGD(nesterov=True, momentum=0.9).nesterov is True


def test_batched_hyperparameter_arrays_are_validated_elementwise():
    adamlab.Adam(lr=np.array([0.1, 0.0, 1e-3]))
    with pytest.raises(ValueError, match=r"^lr must be a finite number in \[0, inf\); got -0.1"):
        adamlab.Adam(lr=np.array([0.1, -0.1]))
    with pytest.raises(ValueError, match=r"^lr must be a finite number in \[0, inf\); got nan"):
        adamlab.Adam(lr=np.array([0.1, np.nan]))


def test_averaged_validation():
    rule = adamlab.Adam()
    with pytest.raises(ValueError, match=r"^averaging must be one of 'polyak', 'ema'; got 'mean'"):
        adamlab.Averaged(rule, "mean")
    with pytest.raises(ValueError, match=r"^averaging_decay must be a finite number in \[0, 1\); got 1.0"):
        adamlab.Averaged(rule, "ema", decay=1.0)


def test_rules_are_frozen():
    rule = adamlab.Adam(lr=0.1)
    with pytest.raises(AttributeError):
        rule.lr = 0.2  # type: ignore[misc]


# --- presets ---------------------------------------------------------------------------------------------

PRESET_TABLE = {
    # docs/presets.md, Adam / AdamW
    ("adam", "paper"): dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, eps_hat=False, eps_root=0.0, amsgrad_max_of="v"),
    ("adam", "torch"): dict(eps=1e-8, eps_hat=False, amsgrad_max_of="v", decoupled_weight_decay=False),
    ("adam", "keras"): dict(eps=1e-7, eps_hat=True, amsgrad_max_of="v", decoupled_weight_decay=True),
    ("adam", "optax"): dict(eps=1e-8, eps_hat=False, amsgrad_max_of="v_hat", decoupled_weight_decay=True),
    ("adamw", "paper"): dict(weight_decay=1e-2, decoupled_weight_decay=True),
    ("adamw", "torch"): dict(weight_decay=1e-2, decoupled_weight_decay=True, eps=1e-8),
    ("adamw", "keras"): dict(weight_decay=4e-3, eps=1e-7, eps_hat=True),
    ("adamw", "optax"): dict(weight_decay=1e-4, amsgrad_max_of="v_hat"),
    # AdaMax
    ("adamax", "paper"): dict(lr=2e-3, eps=0.0, eps_in_max=True, decoupled_weight_decay=False),
    ("adamax", "torch"): dict(lr=2e-3, eps=1e-8, eps_in_max=True, decoupled_weight_decay=False),
    ("adamax", "keras"): dict(lr=1e-3, eps=1e-7, eps_in_max=False, decoupled_weight_decay=True),
    ("adamax", "optax"): dict(lr=2e-3, eps=1e-8, eps_in_max=True, decoupled_weight_decay=True),
    # baselines: torch.optim's defaults, keras changes defaults only
    ("sgd", "torch"): dict(lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False),
    ("sgd", "keras"): dict(lr=1e-2),
    ("adagrad", "torch"): dict(lr=1e-2, initial_accumulator_value=0.0, eps=1e-10),
    ("adagrad", "keras"): dict(lr=1e-3, initial_accumulator_value=0.1, eps=1e-7),
    ("rmsprop", "torch"): dict(lr=1e-2, alpha=0.99, eps=1e-8),
    ("rmsprop", "keras"): dict(lr=1e-3, alpha=0.9, eps=1e-7),
    ("adadelta", "torch"): dict(lr=1.0, rho=0.9, eps=1e-6),
    ("adadelta", "keras"): dict(lr=1e-3, rho=0.95, eps=1e-7),
}


@pytest.mark.parametrize(("name", "preset"), list(PRESET_TABLE))
def test_preset_table(name, preset):
    rule = RULES[name](preset=preset)
    for key, value in PRESET_TABLE[(name, preset)].items():
        assert getattr(rule, key) == value, (name, preset, key)
    assert rule.preset == preset


def test_explicit_argument_beats_preset():
    rule = adamlab.Adam(eps=1e-8, preset="keras")
    assert rule.eps == 1e-8 and rule.eps_hat is True and rule.decoupled_weight_decay is True
    rule = adamlab.Adam(eps_hat=False, preset="keras")
    assert rule.eps == 1e-7 and rule.eps_hat is False
    assert adamlab.AdamW(weight_decay=0.5, preset="optax").weight_decay == 0.5
    assert adamlab.Adamax(eps=1e-3, preset="paper").eps == 1e-3
    # an explicit False or 0 is an argument too, not "unset"
    assert adamlab.Adam(decoupled_weight_decay=False, preset="optax").decoupled_weight_decay is False
    assert adamlab.Adam(eps=0.0, preset="keras").eps == 0.0


def test_hyperparameters_round_trip():
    rule = adamlab.Adam(lr=0.1, preset="keras", amsgrad=True)
    again = adamlab.Adam(**rule.hyperparameters(), preset="keras")
    assert again == rule
    assert "preset" not in rule.hyperparameters()


# --- make_rule --------------------------------------------------------------------------------------------


def test_make_rule_names_and_aliases():
    assert set(OPTIMIZER_NAMES) == {*RULES, *ALIASES}
    for name in RULES:
        assert type(make_rule(name)) is RULES[name]
    assert make_rule("ADAM", lr=0.5) == adamlab.Adam(lr=0.5)
    assert make_rule("momentum") == adamlab.SGD(momentum=0.9)
    assert make_rule("nesterov") == adamlab.SGD(momentum=0.9, nesterov=True)
    assert make_rule("momentum", momentum=0.5, lr=0.1) == adamlab.SGD(momentum=0.5, lr=0.1)
    # None values are dropped (optional CLI arguments pass straight through)
    assert make_rule("adam", lr=None, betas=None, eps=None, preset="keras") == adamlab.Adam(preset="keras")


def test_make_rule_errors():
    with pytest.raises(ValueError, match=r"^optimizer must be one of adam, adamw, .*; got 'adamm'"):
        make_rule("adamm")
    with pytest.raises(ValueError, match=r"^sgd has no option 'betas'; its options are: lr, momentum"):
        make_rule("sgd", betas=(0.9, 0.999))
    with pytest.raises(ValueError, match=r"^lr must be a finite number in \[0, inf\)"):
        make_rule("adam", lr=-1.0)
    with pytest.raises(ValueError, match=r"^preset must be one of"):
        make_rule("adam", preset="jax")


# --- purity and array genericity --------------------------------------------------------------------------

RULE_INSTANCES = {
    "adam": adamlab.Adam(lr=0.1, weight_decay=0.01),
    "adam_amsgrad": adamlab.Adam(lr=0.1, amsgrad=True, maximize=True),
    "adam_amsgrad_vhat": adamlab.Adam(lr=0.1, amsgrad=True, amsgrad_max_of="v_hat", eps_root=1e-8),
    "adam_keras": adamlab.Adam(lr=0.1, preset="keras", weight_decay=0.1),
    "adamw": adamlab.AdamW(lr=0.1),
    "adamax": adamlab.Adamax(lr=0.1, weight_decay=0.01),
    "adamax_keras": adamlab.Adamax(lr=0.1, preset="keras"),
    "sgd": adamlab.SGD(lr=0.1),
    "nesterov": adamlab.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "momentum_dampening": adamlab.SGD(lr=0.1, momentum=0.5, dampening=0.3),
    "adagrad": adamlab.Adagrad(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "rmsprop": adamlab.RMSprop(lr=0.01, momentum=0.9, centered=True),
    "adadelta": adamlab.Adadelta(weight_decay=0.01),
    "averaged_ema": adamlab.Averaged(adamlab.Adam(lr=0.1), "ema", 0.9),
    "averaged_polyak": adamlab.Averaged(adamlab.SGD(lr=0.1, momentum=0.9), "polyak"),
}


def _run(rule, param, grads):
    state = rule.init(param)
    for t, g in enumerate(grads, start=1):
        param, state = rule.step(param, g, state, t)
    return param, state


@pytest.mark.parametrize("name", list(RULE_INSTANCES))
def test_rules_do_not_mutate_their_inputs(name):
    rule = RULE_INSTANCES[name]
    rng = np.random.default_rng(0)
    param = rng.normal(size=(3, 4))
    state = rule.init(param)
    for t in range(1, 4):  # a few steps so the state is not all zeros
        param, state = rule.step(param, rng.normal(size=(3, 4)), state, t)
    grad = rng.normal(size=(3, 4))
    copies = (param.copy(), grad.copy(), {k: v.copy() for k, v in state.items()})
    new_param, new_state = rule.step(param, grad, state, 4)
    np.testing.assert_array_equal(param, copies[0])
    np.testing.assert_array_equal(grad, copies[1])
    assert state.keys() == copies[2].keys()
    for k in state:
        np.testing.assert_array_equal(state[k], copies[2][k])
    assert not np.array_equal(new_param, param)
    assert all(new_state[k] is not state[k] for k in state if k in new_state)
    # torch tensors, too
    tp, tg = torch.tensor(param), torch.tensor(grad)
    ts = {k: torch.tensor(v) for k, v in state.items()}
    before = (tp.clone(), tg.clone(), {k: v.clone() for k, v in ts.items()})
    rule.step(tp, tg, ts, 4)
    assert torch.equal(tp, before[0]) and torch.equal(tg, before[1])
    assert all(torch.equal(ts[k], before[2][k]) for k in ts)


@pytest.mark.parametrize("name", list(RULE_INSTANCES))
def test_numpy_and_torch_give_the_same_result(name):
    rule = RULE_INSTANCES[name]
    rng = np.random.default_rng(1)
    param = rng.normal(size=(5, 3))
    grads = rng.normal(size=(40, 5, 3)) * np.logspace(-3, 1, 40)[:, None, None]
    p_np, s_np = _run(rule, param, list(grads))
    p_t, s_t = _run(rule, torch.tensor(param), [torch.tensor(g) for g in grads])
    assert isinstance(p_t, torch.Tensor) and p_t.dtype == torch.float64
    assert isinstance(p_np, np.ndarray) and p_np.dtype == np.float64
    np.testing.assert_allclose(p_t.numpy(), p_np, rtol=1e-14, atol=1e-15)
    assert s_np.keys() == s_t.keys()
    for k in s_np:
        assert isinstance(s_t[k], torch.Tensor)
        np.testing.assert_allclose(s_t[k].numpy(), s_np[k], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", list(RULE_INSTANCES))
def test_float32_stays_float32(name):
    rule = RULE_INSTANCES[name]
    param = np.ones(4, dtype=np.float32)
    p, s = _run(rule, param, [np.full(4, 0.5, dtype=np.float32)] * 3)
    assert p.dtype == np.float32 and all(v.dtype == np.float32 for v in s.values())
    p, s = _run(rule, torch.ones(4), [torch.full((4,), 0.5)] * 3)
    assert p.dtype == torch.float32 and all(v.dtype == torch.float32 for v in s.values())


@pytest.mark.parametrize("name", [*RULE_INSTANCES, "nadam", "radam"])
def test_a_float64_tensor_step_count_gives_the_host_result(name):
    """The Keras face (torch backend) passes t as a tensor in the variable's dtype. torch turns a bool or int
    tensor times a Python float into float32, so a rule must keep its t-dependent factors in t's dtype."""
    rule = RULE_INSTANCES[name] if name in RULE_INSTANCES else RULES[name](lr=0.1)
    if rule.preset == "keras":  # with a Keras count the decay factor 1 − lr·λ is Keras's float32 one (by design:
        rule = dataclasses.replace(rule, weight_decay=0.0)  # tests/test_fidelity_keras.py checks it against Keras)
    rng = np.random.default_rng(2)
    param = torch.tensor(rng.normal(size=(5, 3)))
    grads = [torch.tensor(g) for g in rng.normal(size=(12, 5, 3))]
    p_host, s_host = _run(rule, param, grads)
    p_arr, s_arr = param, rule.init(param)
    for t, g in enumerate(grads, start=1):
        p_arr, s_arr = rule.step(p_arr, g, s_arr, torch.tensor(float(t), dtype=torch.float64))
    assert p_arr.dtype == torch.float64
    np.testing.assert_allclose(p_arr.numpy(), p_host.numpy(), rtol=1e-13, atol=1e-15)
    for k in s_host:
        np.testing.assert_allclose(np.asarray(s_arr[k]), np.asarray(s_host[k]), rtol=1e-13, atol=1e-15)


# --- the step count -----------------------------------------------------------------------------------


def test_step_count_does_not_stall_at_2_to_the_24():
    """t is a Python int and 1 − β^t is float64: t = 2^24 + 1 is a different step from t = 2^24.

    torch.optim counts in a float32 tensor, where 2^24 + 1 rounds to 2^24: its bias corrections stall.
    """
    big = 2**24
    beta1, beta2 = 1 - 1e-7, 1 - 1e-8  # so that β^t is still far from 0 at t ≈ 1.7e7
    rule = adamlab.Adam(lr=0.01, betas=(beta1, beta2))
    param = np.array([1.0, -2.0])
    grad = np.array([0.3, -0.1])
    state = {"exp_avg": np.array([0.2, -0.05]), "exp_avg_sq": np.array([0.04, 0.01])}

    def by_hand(t):
        m = beta1 * state["exp_avg"] + (1 - beta1) * grad
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad**2
        return param - 0.01 * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + 1e-8)

    at_big, _ = rule.step(param, grad, state, big)
    at_next, _ = rule.step(param, grad, state, big + 1)
    np.testing.assert_allclose(at_big, by_hand(big), rtol=1e-13)
    np.testing.assert_allclose(at_next, by_hand(big + 1), rtol=1e-13)
    assert not np.array_equal(at_big, at_next)
    assert np.max(np.abs(at_next - at_big)) > 1e-12  # 2e-11: far above rounding (1e-16)
    # what float32 counting (torch.optim's step tensor) would use instead: the same t twice
    t32 = np.float32(big)
    t32 = t32 + np.float32(1)
    assert float(t32) == big
    stalled = torch.tensor(float(big), dtype=torch.float32)
    stalled += 1
    assert stalled.item() == big
    np.testing.assert_array_equal(rule.step(param, grad, state, int(stalled.item()))[0], at_big)


def test_bias_corrections_are_float64_even_for_float32_params():
    rule = adamlab.Adam(lr=1.0, betas=(0.9, 1 - 1e-9))
    p = np.zeros(1, dtype=np.float32)
    s = {"exp_avg": np.zeros(1, np.float32), "exp_avg_sq": np.zeros(1, np.float32)}
    g = np.ones(1, dtype=np.float32)
    # step sizes at t = 2^24 and 2^24 + 2: 1 − β2^t differ in the 8th digit, float32 parameters still see it
    a = rule.step(p, g, s, 2**24)[0]
    b = rule.step(p, g, s, 2**24 + 2)[0]
    assert a.dtype == np.float32 and a[0] != b[0]


# --- AMSGrad: max of raw v (torch, Keras) or of corrected v̂ (optax) --------------------------------------


def _amsgrad_by_hand(max_of, grads, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8):
    theta, m, v, v_max = 0.5, 0.0, 0.0, 0.0
    out = []
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if max_of == "v":  # torch: max over the raw v, then divide the max by (1 − β2^t)
            v_max = max(v_max, v)
            denom = math.sqrt(v_max / (1 - beta2**t)) + eps
        else:  # optax: max over v̂ = v/(1 − β2^t)
            v_max = max(v_max, v / (1 - beta2**t))
            denom = math.sqrt(v_max) + eps
        theta = theta - lr * (m / (1 - beta1**t)) / denom
        out.append(theta)
    return np.array(out)


def test_amsgrad_max_of_v_and_v_hat():
    # large gradients first, small later: the running max matters, and v̂ and v peak at different times
    rng = np.random.default_rng(3)
    grads = np.concatenate([rng.normal(size=5) * 10, rng.normal(size=200) * 0.1])
    results = {}
    for max_of in ("v", "v_hat"):
        rule = adamlab.Adam(lr=0.01, betas=(0.9, 0.99), amsgrad=True, amsgrad_max_of=max_of)
        out = []
        theta, state = np.array([0.5]), rule.init(np.array([0.5]))
        for t, g in enumerate(grads, start=1):
            theta, state = rule.step(theta, np.array([g]), state, t)
            out.append(theta[0])
        results[max_of] = np.array(out)
        np.testing.assert_allclose(results[max_of], _amsgrad_by_hand(max_of, grads), rtol=1e-12)
    assert np.max(np.abs(results["v"] - results["v_hat"])) > 1e-3
    # and both differ from plain Adam
    plain = adamlab.Adam(lr=0.01, betas=(0.9, 0.99))
    theta, state = np.array([0.5]), plain.init(np.array([0.5]))
    for t, g in enumerate(grads, start=1):
        theta, state = plain.step(theta, np.array([g]), state, t)
    assert abs(theta[0] - results["v"][-1]) > 1e-3


def test_amsgrad_state_holds_the_max():
    rule = adamlab.Adam(amsgrad=True)
    state = rule.init(np.zeros(2))
    assert set(state) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    p = np.zeros(2)
    p, state = rule.step(p, np.array([3.0, 1.0]), state, 1)
    p, state = rule.step(p, np.array([0.0, 2.0]), state, 2)
    np.testing.assert_allclose(state["max_exp_avg_sq"], np.maximum(state["exp_avg_sq"], 0.001 * np.array([9.0, 1.0])))
    assert state["max_exp_avg_sq"][0] > state["exp_avg_sq"][0]


# --- ε = 0 with zero gradients: a zero step, not 0/0 -------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        adamlab.Adam(eps=0.0),
        adamlab.Adam(eps=0.0, amsgrad=True),
        adamlab.Adam(eps=0.0, eps_hat=True),
        adamlab.Adam(eps=0.0, bias_correction=False),
        adamlab.Adamax(preset="paper"),  # Algorithm 2 has no ε
        adamlab.Adamax(eps=0.0, eps_in_max=False),
        adamlab.Adagrad(eps=0.0),
        adamlab.RMSprop(eps=0.0),
        adamlab.RMSprop(eps=0.0, centered=True, momentum=0.5),
    ],
    ids=repr,
)
def test_zero_gradients_with_zero_eps_give_a_zero_step(rule):
    for xp_param in (np.array([1.0, -2.0, 0.0]), torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)):
        param, state = xp_param, rule.init(xp_param)
        for t in range(1, 4):
            param, state = rule.step(param, xp_param * 0, state, t)
        assert np.all(np.isfinite(np.asarray(param)))
        np.testing.assert_array_equal(np.asarray(param), np.asarray(xp_param))
    # a coordinate whose gradient was always 0 stays put while others move
    param, state = np.array([1.0, 1.0]), rule.init(np.array([1.0, 1.0]))
    for t in range(1, 4):
        param, state = rule.step(param, np.array([0.0, 1.0]), state, t)
    assert param[0] == 1.0 and param[1] < 1.0 and np.all(np.isfinite(param))


# --- batched hyperparameters: lr of shape (K,) over params of shape (n, K) ----------------------------------


@pytest.mark.parametrize(
    ("make", "kw"),
    [
        (adamlab.Adam, {}),
        (adamlab.Adam, dict(preset="keras", weight_decay=0.1)),
        (adamlab.AdamW, {}),
        (adamlab.Adamax, {}),
        (adamlab.SGD, dict(momentum=0.9, nesterov=True)),
        (adamlab.Adagrad, dict(lr_decay=0.1)),
        (adamlab.RMSprop, dict(momentum=0.5)),
        (adamlab.Adadelta, {}),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_batched_lr_equals_separate_runs(make, kw):
    lrs = np.array([1e-3, 0.01, 0.1, 0.5])
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=(3, 4))
    a = rng.uniform(0.5, 2.0, (3, 1))

    def grad(x):  # a quadratic per column, the same for every column
        return a * x

    batched = make(lr=lrs, **kw)
    x, state = x0, batched.init(x0)
    for t in range(1, 51):
        x, state = batched.step(x, grad(x), state, t)
    assert x.shape == (3, 4)
    for k, lr in enumerate(lrs):
        single = make(lr=float(lr), **kw)
        xk, sk = x0[:, k], single.init(x0[:, k])
        for t in range(1, 51):
            xk, sk = single.step(xk, a[:, 0] * xk, sk, t)
        np.testing.assert_allclose(x[:, k], xk, rtol=1e-13, atol=1e-15)
    # the columns really did run with different step sizes
    assert len({round(float(v), 12) for v in x[0]}) == 4


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda e: e.name)
def test_entries_declared_nonnegative_are_the_second_moments(entry):
    """The checkpoint loaders refuse negative values of the entries a rule declares ``nonnegative``: those must
    stay >= 0 on any run (here random gradients, both signs) and a first moment must not be among them."""
    options = {"amsgrad": True} if entry.name in ("adam", "adamw") else {}
    rule = entry.rule(preset="torch", **options, **({"momentum": 0.9} if entry.name == "sgd" else {}))
    rng = np.random.default_rng(0)
    p = rng.standard_normal((4, 3))
    state, declared = rule.init(p), rule.layout().nonnegative
    assert bool(declared) == (entry.name not in ("sgd", "lion"))  # the two without a second moment
    assert declared <= set(state) | {"row_var", "col_var", "variance"}
    assert not declared & {"exp_avg", "momentum_buffer", "grad_avg", "param_avg"}
    for t in range(1, 6):
        p, state = rule.step(p, rng.standard_normal((4, 3)), state, t=t)
        assert all((np.asarray(state[name]) >= 0).all() for name in declared if name in state)
