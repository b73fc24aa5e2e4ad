"""Problems: test functions and the digits logistic regression behind one batched interface."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import adamlab
from adamlab.lab.digits import DigitsLogisticRegression, load_digits_data
from adamlab.lab.functions import FUNCTIONS, get_function
from adamlab.lab.minimize import minimize
from adamlab.lab.problems import PROBLEM_NAMES, FunctionProblem, get_problem


def test_registry_and_unknown_name() -> None:
    assert set(PROBLEM_NAMES) == {*FUNCTIONS, "digits"}
    assert isinstance(get_problem("rosenbrock"), FunctionProblem)
    assert isinstance(get_problem("digits"), DigitsLogisticRegression)
    assert get_problem("digits", l2=0.0).l2 == 0.0
    with pytest.raises(ValueError, match="unknown problem 'mnist'; choose one of: ackley, .*, digits"):
        get_problem("mnist")
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        get_problem("digits", lr_schedule="cosine")


def test_function_problem_runs_are_minimize_runs() -> None:
    problem = get_problem("booth")
    lrs = np.array([0.01, 0.3, 3.0])
    runs = problem.run(adamlab.make_rule("adam"), lrs, np.zeros(3, dtype=int), 40)
    assert runs.losses.shape == (41, 3) and runs.paths.shape == (41, 2, 3)
    np.testing.assert_array_equal(runs.points, np.arange(41))
    f = get_function("booth")
    assert runs.losses[0, 0] == pytest.approx(float(f(np.array(f.start))))  # step 0: f at the start
    for k, lr in enumerate(lrs):
        seq = minimize(f, f.start, adamlab.Adam(lr=lr), 40)
        np.testing.assert_allclose(runs.losses[1:, k], seq.history.fun, rtol=0, atol=1e-12)
        np.testing.assert_allclose(runs.paths[1:, :, k], seq.history.x, rtol=0, atol=1e-12)
    assert problem.deterministic and problem.default_seeds == 1 and problem.min_value == 0.0


def test_function_gradient_scale_is_the_rms_of_the_analytic_gradient() -> None:
    # Rosenbrock at (-1.2, 1): ∇f = (-2(1-x) - 400x(y-x²), 200(y-x²)) = (-215.6, -88)
    assert get_problem("rosenbrock").gradient_scale() == pytest.approx(math.sqrt((215.6**2 + 88**2) / 2))


def test_gradient_noise_depends_on_the_seed_only() -> None:
    """A member's noise comes from its own seed: the same seed gives the same run, whatever else is batched."""
    noisy = get_problem("ill_conditioned", grad_noise=5.0)
    assert not noisy.deterministic and noisy.default_seeds == 5
    rule = adamlab.make_rule("sgd")
    both = noisy.run(rule, np.array([0.05, 0.05]), np.array([0, 1]), 30)
    alone = noisy.run(rule, np.array([0.05]), np.array([1]), 30)
    np.testing.assert_array_equal(both.losses[:, 1], alone.losses[:, 0])
    assert not np.allclose(both.losses[1:, 0], both.losses[1:, 1])  # different seeds, different noise
    clean = get_problem("ill_conditioned").run(rule, np.array([0.05]), np.array([0]), 30)
    assert not np.allclose(both.losses[1:, 0], clean.losses[1:, 0])
    with pytest.raises(ValueError, match="grad_noise must be a finite number >= 0"):
        noisy.with_noise(-1.0)


def test_digits_data_is_the_real_bundled_set() -> None:
    x, y = load_digits_data()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.min() == 0.0 and x.max() == 1.0 and set(np.unique(y)) == set(range(10))


def test_digits_loss_is_regularised_cross_entropy() -> None:
    problem = DigitsLogisticRegression(l2=0.01)
    x, y = load_digits_data()
    rng = np.random.default_rng(3)
    theta = rng.normal(0, 0.1, (650, 2))
    for k in range(2):
        w, b = theta[:640, k].reshape(64, 10), theta[640:, k]
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        ce = -np.mean(logits[np.arange(len(y)), y] - np.log(np.exp(logits).sum(axis=1)))
        assert problem.full_loss(theta)[k] == pytest.approx(ce + 0.005 * np.sum(w * w), rel=1e-12)
    # initialisation: W ~ N(0, 0.01²), b = 0 -> the loss starts near log(10)
    assert problem.full_loss(problem.initial_parameters(np.array([0])))[0] == pytest.approx(math.log(10), abs=0.02)


def test_digits_same_initialisation_and_member_independence() -> None:
    problem = DigitsLogisticRegression()
    assert problem.steps_per_epoch == 14 and problem.unit == "epoch" and problem.default_seeds == 5
    np.testing.assert_array_equal(problem.initial_parameters(np.array([4])), problem.initial_parameters(np.array([4])))
    assert not np.array_equal(problem.initial_parameters(np.array([0])), problem.initial_parameters(np.array([1])))
    adam = problem.run(adamlab.make_rule("adam"), np.array([0.01, 0.1]), np.array([0, 1]), 28)
    sgd = problem.run(adamlab.make_rule("sgd"), np.array([1.0]), np.array([1]), 28)
    assert adam.losses.shape == (3, 2) and adam.points.tolist() == [0, 14, 28]
    assert adam.losses[0, 1] == sgd.losses[0, 0]  # seed 1: the same start for every optimizer
    assert adam.losses[0, 0] != adam.losses[0, 1]
    alone = problem.run(adamlab.make_rule("adam"), np.array([0.1]), np.array([1]), 28)
    np.testing.assert_allclose(alone.losses[:, 0], adam.losses[:, 1], rtol=1e-12)  # batching changes nothing
    assert np.all(np.diff(adam.losses[:, 1]) < 0)  # training lowers the training loss


def test_digits_lr_schedule_is_alpha_over_sqrt_t() -> None:
    """With SGD and no L2, step t moves θ by α/√t · g_t exactly: check on the first two steps."""
    problem = DigitsLogisticRegression(l2=0.0, batch_size=1797)  # full batch: g_t is the full gradient
    x, y = (torch.as_tensor(a) for a in load_digits_data())
    theta0 = torch.as_tensor(problem.initial_parameters(np.array([0])))
    lr = 0.5
    runs = problem.run(adamlab.make_rule("sgd"), np.array([lr]), np.array([0]), 2)
    theta = theta0.clone()
    for t in (1, 2):
        th = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(problem._loss(th, x, y).sum(), th)
        theta = theta - lr / math.sqrt(t) * g
    assert runs.losses[-1, 0] == pytest.approx(float(problem.full_loss(theta.numpy())[0]), rel=1e-12)


def test_digits_divergence_is_recorded_and_isolated() -> None:
    """λ = 1 and a huge constant lr make W explode to inf; the other member is unaffected."""
    problem = DigitsLogisticRegression(l2=1.0, lr_schedule="constant")
    rule = adamlab.make_rule("sgd")
    runs = problem.run(rule, np.array([0.1, 1e200]), np.array([0, 0]), 28)
    assert runs.diverged_at[0] is None and runs.diverged_at[1] is not None and runs.diverged_at[1] <= 3
    assert np.isnan(runs.losses[1:, 1]).all() and np.isfinite(runs.losses[:, 0]).all()
    alone = problem.run(rule, np.array([0.1]), np.array([0]), 28)
    np.testing.assert_allclose(runs.losses[:, 0], alone.losses[:, 0], rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("booth", dict(grad_noise=-1.0), "grad_noise must be a finite number >= 0; got -1.0"),
        ("booth", dict(grad_noise=math.nan), "grad_noise must be a finite number >= 0; got nan"),
        ("booth", dict(dtype="float16"), "dtype must be one of float32, float64; got 'float16'"),
        ("booth", dict(foo=1), "unknown option 'foo' for FunctionProblem; accepted: grad_noise, dtype"),
        ("digits", dict(grad_noise=-1.0), "grad_noise must be a finite number >= 0; got -1.0"),
        ("digits", dict(grad_noise=math.nan), "grad_noise must be a finite number >= 0; got nan"),
        ("digits", dict(init_scale=-1), "init_scale must be a finite number >= 0; got -1"),
        ("digits", dict(init_scale=math.nan), "init_scale must be a finite number >= 0; got nan"),
        ("digits", dict(l2="a"), "l2 must be a finite number >= 0; got 'a'"),
        ("digits", dict(dtype="foo"), "dtype must be one of float32, float64; got 'foo'"),
        ("digits", dict(batch_size=True), "batch_size must be an integer in [1, 1797]; got True"),
        ("digits", dict(foo=1), "unknown option 'foo' for DigitsLogisticRegression; accepted: l2, batch_size, "),
    ],
)
def test_problem_options_are_checked(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        get_problem(name, **options)
    with pytest.raises(ValueError, match=re.escape(message)):  # replacing options of a problem object
        get_problem(get_problem(name), **options)


def test_valid_problem_options_still_work() -> None:
    assert get_problem("booth", grad_noise=0.5, dtype="float32").grad_noise == 0.5
    assert get_problem("digits", init_scale=0, batch_size=np.int64(64)).steps_per_epoch == 28
