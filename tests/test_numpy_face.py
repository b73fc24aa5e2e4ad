"""adamlab.numpy: nested parameters, agreement with the rules and the torch face, checkpoints, errors."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import adamlab
import adamlab.numpy
import adamlab.torch

NAMES = ["Adam", "AdamW", "Adamax", "SGD", "Adagrad", "RMSprop", "Adadelta"]
KWARGS = {
    "Adam": dict(lr=0.05, amsgrad=True, weight_decay=0.01),
    "AdamW": dict(lr=0.05),
    "Adamax": dict(lr=0.05),
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True),
    "Adagrad": dict(lr=0.1, lr_decay=0.01),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
    "Adadelta": dict(lr=0.5),
}


def make_params():
    rng = np.random.default_rng(0)
    return {
        "w": rng.normal(size=(3, 2)),
        "layers": [rng.normal(size=4), (rng.normal(size=(2, 2)), 0.5)],
        "b": 1.5,
    }


def leaves_of(tree):
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in leaves_of(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for v in tree for leaf in leaves_of(v)]
    return [tree]


def grad_of(tree, t):
    """The gradient of Σ ½·(p − c)² with a step-dependent target c = sin(t), in the structure of ``tree``."""
    if isinstance(tree, dict):
        return {k: grad_of(v, t) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(grad_of(v, t) for v in tree)
    return np.asarray(tree, dtype=float) - np.sin(t)


@pytest.mark.parametrize("name", NAMES)
def test_nested_params_match_the_rule_and_the_torch_face(name):
    kw = KWARGS[name]
    opt = getattr(adamlab.numpy, name)(**kw)
    params = make_params()
    leaves0 = [np.array(leaf, dtype=float) for leaf in leaves_of(params)]
    for t in range(1, 101):
        new = opt.step(params, grad_of(params, t))
        assert all(np.shares_memory(a, b) is False for a, b in zip(leaves_of(new), leaves_of(params), strict=True))
        params = new
    # the structure is kept: dict keys, list, tuple, and a scalar leaf as a 0-d array
    assert list(params) == ["w", "layers", "b"]
    assert isinstance(params["layers"], list) and isinstance(params["layers"][1], tuple)
    assert np.shape(params["b"]) == () and params["w"].shape == (3, 2)

    # the rule, leaf by leaf
    rule = getattr(adamlab, name)(**kw)
    for leaf0, leaf in zip(leaves0, leaves_of(params), strict=True):
        p, s = leaf0, rule.init(leaf0)
        for t in range(1, 101):
            p, s = rule.step(p, p - np.sin(t), s, t)
        np.testing.assert_array_equal(leaf, p)

    # the torch face (paper preset, as the NumPy face's default) on the same leaves, in float64
    tensors = [torch.nn.Parameter(torch.tensor(leaf0)) for leaf0 in leaves0]
    topt = getattr(adamlab.torch, name)(tensors, preset="paper", **kw)
    for t in range(1, 101):
        for p in tensors:
            p.grad = p.detach() - np.sin(t)
        topt.step()
    for p, leaf in zip(tensors, leaves_of(params), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), leaf, rtol=1e-14, atol=1e-15)


def test_default_preset_is_the_paper():
    assert adamlab.numpy.Adamax().rule == adamlab.Adamax(preset="paper")
    assert adamlab.numpy.Adamax().rule.eps == 0.0
    assert adamlab.numpy.Adam(preset="keras").rule.eps_hat is True


def test_inputs_are_not_modified():
    opt = adamlab.numpy.Adam(lr=0.1)
    params = {"w": np.ones(3)}
    grads = {"w": np.full(3, 2.0)}
    new = opt.step(params, grads)
    np.testing.assert_array_equal(params["w"], np.ones(3))
    np.testing.assert_array_equal(grads["w"], np.full(3, 2.0))
    np.testing.assert_allclose(new["w"], 0.9)


def test_dtypes_are_kept_and_low_precision_state_is_float32():
    opt = adamlab.numpy.Adam(lr=0.1)
    params = [np.ones(3, dtype=np.float16), np.ones(2, dtype=np.float32), np.ones(2), [1, 2]]
    grads = [np.ones(3, dtype=np.float16), np.ones(2, dtype=np.float32), np.ones(2), [1.0, 1.0]]
    new = opt.step(params, grads)
    assert [p.dtype for p in new[:3]] == [np.float16, np.float32, np.float64]
    assert isinstance(new[3], list) and [np.asarray(v).dtype for v in new[3]] == [np.float64] * 2
    assert [s["exp_avg"].dtype for s in opt.state[:3]] == [np.float32, np.float32, np.float64]


def test_no_torch_import():
    code = (
        "import sys, numpy as np, adamlab, adamlab.numpy\n"
        "opt = adamlab.numpy.Adam(lr=0.1, averaging='ema')\n"
        "p = opt.step({'w': np.ones(2)}, {'w': np.ones(2)})\n"
        "opt.averaged(p); opt.load_state_dict(opt.state_dict())\n"
        "assert abs(p['w'][0] - 0.9) < 1e-6\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("averaging", [None, "ema"])
def test_state_dict_round_trip_is_exact(name, averaging):
    opt = getattr(adamlab.numpy, name)(averaging=averaging, **KWARGS[name])
    params = make_params()
    for t in range(1, 11):
        params = opt.step(params, grad_of(params, t))
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    snapshot = copy.deepcopy(saved)
    resumed_params = copy.deepcopy(params)
    for t in range(11, 21):
        params = opt.step(params, grad_of(params, t))
    # the state dict was a copy: running on did not change it
    for a, b in zip(saved["state"], snapshot["state"], strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)

    opt2 = getattr(adamlab.numpy, name)(averaging=averaging, **KWARGS[name])
    opt2.load_state_dict(saved)
    assert opt2.t == 10
    for t in range(11, 21):
        resumed_params = opt2.step(resumed_params, grad_of(resumed_params, t))
    for a, b in zip(leaves_of(resumed_params), leaves_of(params), strict=True):
        np.testing.assert_array_equal(a, b)
    for s2, s in zip(opt2.state, opt.state, strict=True):
        assert s2.keys() == s.keys() and all(np.array_equal(s2[k], s[k]) for k in s)
    if averaging:
        for a, b in zip(leaves_of(opt2.averaged(params)), leaves_of(opt.averaged(params)), strict=True):
            np.testing.assert_array_equal(a, b)


def test_state_dict_content():
    opt = adamlab.numpy.Adam(lr=0.1)
    assert opt.state_dict() == {"rule": "adam", "hyperparameters": opt.rule.hyperparameters(), "step": 0, "state": None}
    opt.step([np.zeros(2)], [np.ones(2)])
    sd = opt.state_dict()
    assert sd["step"] == 1 and set(sd["state"][0]) == {"exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["exp_avg"] is not opt.state[0]["exp_avg"]


def test_loading_another_optimizers_state_raises():
    adam = adamlab.numpy.Adam(lr=0.1)
    adam.step([np.zeros(2)], [np.ones(2)])
    sgd = adamlab.numpy.SGD(lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"^state_dict is of optimizer 'adam'; this one is 'sgd'"):
        sgd.load_state_dict(adam.state_dict())
    with pytest.raises(
        ValueError, match=r"^state\[0\] has keys \['exp_avg', 'exp_avg_sq'\]; expected .*max_exp_avg_sq"
    ):
        adamlab.numpy.Adam(amsgrad=True).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match=r"^state\[0\] has keys .*; expected .*param_avg"):
        adamlab.numpy.Adam(averaging="polyak").load_state_dict(adam.state_dict())
    for key in ("rule", "step", "state"):
        broken = {k: v for k, v in adam.state_dict().items() if k != key}
        with pytest.raises(ValueError, match=rf"^state_dict is missing '{key}'"):
            adamlab.numpy.Adam().load_state_dict(broken)
    # a failed load changes nothing
    assert sgd.t == 0 and sgd.state is None


def test_nonfinite_raise():
    opt = adamlab.numpy.Adam(lr=0.1)
    assert opt.nonfinite == "raise"
    params = opt.step({"a": np.ones(2), "b": np.ones(2)}, {"a": np.ones(2), "b": np.ones(2)})
    state = copy.deepcopy(opt.state)
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(adamlab.NonFiniteError, match="left unchanged"):
            opt.step(params, {"a": np.ones(2), "b": np.array([1.0, bad])})
        assert opt.t == 1 and opt.skipped_steps == 0
        for s, s0 in zip(opt.state, state, strict=True):
            assert all(np.array_equal(s[k], s0[k]) for k in s)


def test_nonfinite_skip():
    opt = adamlab.numpy.Adam(lr=0.1, nonfinite="skip")
    params = opt.step([np.ones(2)], [np.ones(2)])
    state = copy.deepcopy(opt.state)
    same = opt.step(params, [np.array([np.nan, 1.0])])
    assert opt.skipped_steps == 1 and opt.t == 1
    np.testing.assert_array_equal(same[0], params[0])
    assert same[0] is not params[0]  # a new array, as from every step
    assert all(np.array_equal(opt.state[0][k], state[0][k]) for k in state[0])
    # the next good step is step 2, as if the bad one never happened
    clean = adamlab.numpy.Adam(lr=0.1)
    expected = clean.step(clean.step([np.ones(2)], [np.ones(2)]), [np.full(2, 0.5)])
    np.testing.assert_array_equal(opt.step(same, [np.full(2, 0.5)])[0], expected[0])


def test_nonfinite_ignore_propagates():
    opt = adamlab.numpy.Adam(lr=0.1, nonfinite="ignore")
    params = opt.step([np.ones(2)], [np.array([np.nan, 1.0])])
    assert np.isnan(params[0][0]) and np.isfinite(params[0][1]) and opt.skipped_steps == 0
    rule = adamlab.Adam(lr=0.1)
    expected, _ = rule.step(np.ones(2), np.array([np.nan, 1.0]), rule.init(np.ones(2)), 1)
    np.testing.assert_array_equal(params[0], expected)


def test_invalid_nonfinite_policy():
    with pytest.raises(ValueError, match=r"^nonfinite must be one of 'raise', 'skip', 'ignore'; got 'warn'"):
        adamlab.numpy.Adam(nonfinite="warn")
    with pytest.raises(ValueError, match=r"^lr must be"):
        adamlab.numpy.SGD(lr=-1.0)
    with pytest.raises(ValueError, match=r"^averaging_decay must be a finite number in \[0, 1\)"):
        adamlab.numpy.Adam(averaging_decay=1.5)


def test_shape_mismatches_raise():
    opt = adamlab.numpy.Adam(lr=0.1)
    with pytest.raises(ValueError, match=r"^grads\[1\] has shape \(3,\); its parameter has shape \(2,\)"):
        opt.step([np.ones(2), np.ones(2)], [np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match=r"^grads has 1 arrays; params has 2"):
        opt.step([np.ones(2), np.ones(2)], [np.ones(2)])
    assert opt.t == 0 and opt.state is None  # nothing happened
    opt.step([np.ones(2), np.ones(2)], [np.ones(2), np.ones(2)])
    with pytest.raises(ValueError, match=r"^params has 3 arrays; the optimizer state was built for 2"):
        opt.step([np.ones(2)] * 3, [np.ones(2)] * 3)
    # the same number of arrays with another shape must not broadcast against the old state
    for shape in ((1,), (3,), (2, 2)):
        with pytest.raises(
            ValueError, match=rf"^params\[0\] has shape {shape!r}".replace("(", r"\(").replace(")", r"\)")
        ):
            opt.step([np.ones(shape), np.ones(2)], [np.ones(shape), np.ones(2)])
    assert opt.t == 1


def test_state_entry_order_does_not_matter():
    """torch.optim.NAdam lists mu_product (0-d) before exp_avg: the parameter shape comes from the
    per-element entries, whatever their order, in step and in export_state."""
    ref = adamlab.numpy.NAdam(lr=0.01, preset="torch")
    params = [np.array([1.0, -2.0, 3.0]), np.ones((2, 2))]
    params = ref.step(params, [np.ones(3), np.full((2, 2), 0.5)])
    saved = ref.state_dict()
    saved["state"] = [{k: s[k] for k in ("mu_product", "exp_avg", "exp_avg_sq")} for s in saved["state"]]
    reordered = adamlab.numpy.NAdam(lr=0.01, preset="torch")
    reordered.load_state_dict(saved)
    grads = [np.array([0.3, -0.1, 0.2]), np.ones((2, 2))]
    for a, b in zip(reordered.step(params, grads), ref.step(params, grads), strict=True):
        np.testing.assert_array_equal(a, b)
    checkpoint = adamlab.numpy.export_state(reordered)  # shapes taken from the state alone
    assert [entry["shape"] for entry in checkpoint["params"]] == [(3,), (2, 2)]


def test_averaging():
    opt = adamlab.numpy.SGD(lr=0.1, averaging="polyak")
    params = np.array([1.0, 2.0])
    path = []
    for t in range(1, 6):
        params = opt.step(params, grad_of(params, t))
        path.append(params)
    np.testing.assert_allclose(opt.averaged(params), np.mean(path, axis=0), rtol=1e-14)
    with pytest.raises(ValueError, match="keeps no average"):
        adamlab.numpy.SGD().averaged(params)
    with pytest.raises(ValueError, match="only after the first step"):
        adamlab.numpy.SGD(averaging="ema").averaged(params)
