"""minimize_batched: K runs as one array computation reproduce K sequential minimize runs exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import adamlab
from adamlab.lab.functions import get_function
from adamlab.lab.minimize import minimize
from adamlab.lab.minimize_batched import minimize_batched

ROSENBROCK = get_function("rosenbrock")


def assert_same_run(batched, sequential, tol: float = 1e-12) -> None:
    """A member of a batched run against the sequential run: status, counts, message, path, grad, state."""
    assert (batched.status, batched.nit, batched.message) == (sequential.status, sequential.nit, sequential.message)
    np.testing.assert_allclose(batched.x, sequential.x, rtol=0, atol=tol)
    assert batched.fun == pytest.approx(sequential.fun, abs=tol)
    hb, hs = batched.history, sequential.history
    assert hb.x.shape == hs.x.shape and hb.grad.shape == hs.grad.shape
    np.testing.assert_allclose(hb.x, hs.x, rtol=0, atol=tol)
    np.testing.assert_allclose(hb.fun, hs.fun, rtol=0, atol=tol)
    np.testing.assert_allclose(hb.grad, hs.grad, rtol=0, atol=tol)
    assert hb.state.keys() == hs.state.keys()
    for name in hs.state:
        np.testing.assert_allclose(hb.state[name], hs.state[name], rtol=0, atol=tol)
    assert hb.fun0 == hs.fun0
    rules = [getattr(r.optimizer, "rule", r.optimizer) for r in (batched, sequential)]  # inside Averaged
    assert float(rules[0].lr) == float(rules[1].lr)


@pytest.mark.parametrize("name", [*adamlab.rules.RULES, "momentum", "nesterov"])
def test_learning_rates_match_sequential_runs(name: str) -> None:
    lrs = np.logspace(-4, 0, 6)
    res = minimize_batched(ROSENBROCK, ROSENBROCK.start, name, 60, lr=lrs)
    assert res.x.shape == (2, 6) and res.fun.shape == (6,) and res.size == 6
    np.testing.assert_array_equal(res.lr, lrs)
    for k, lr in enumerate(lrs):
        assert_same_run(res.member(k), minimize(ROSENBROCK, ROSENBROCK.start, adamlab.make_rule(name, lr=lr), 60))


def test_starting_points_match_sequential_runs() -> None:
    f = get_function("himmelblau")
    starts = np.array([[0.0, -1.0, 2.5, -4.0], [0.0, 1.5, -2.0, -4.0]])  # (n, K): coordinate axis first
    rule = adamlab.make_rule("momentum", lr=0.005)
    res = minimize_batched(f, starts, rule, 200)
    for k in range(4):
        assert_same_run(res.member(k), minimize(f, starts[:, k], rule, 200))
    # all four end at one of Himmelblau's four minima (f = 0)
    assert np.all(res.fun < 1e-6)


def test_a_rule_that_is_not_elementwise_steps_each_member_on_its_own() -> None:
    """Adafactor's RMS scaling couples a parameter's elements: stacked members must not see each other."""
    f = get_function("himmelblau")
    starts = np.array([[0.0, -1.0, 2.5], [0.0, 1.5, -2.0]])
    rule = adamlab.make_rule("adafactor", lr=0.05)
    res = minimize_batched(f, starts, rule, 80)
    for k in range(3):
        assert_same_run(res.member(k), minimize(f, starts[:, k], rule, 80))
    alone = minimize_batched(f, starts[:, :1], rule, 80)  # member 0 without the others: the same run
    np.testing.assert_array_equal(alone.history.x[..., 0], res.history.x[..., 0])


def test_divergence_is_masked_and_recorded() -> None:
    """SGD on Rosenbrock explodes for large lr; small-lr members are untouched, the history is NaN after it."""
    lrs = np.array([1e-4, 1e-3, 0.05, 1.0])
    res = minimize_batched(ROSENBROCK, ROSENBROCK.start, "sgd", 100, lr=lrs)
    assert res.status[:2] == ["max_steps", "max_steps"] and res.status[2:] == ["nonfinite", "nonfinite"]
    assert res.diverged.tolist() == [False, False, True, True]
    for k, lr in enumerate(lrs):
        seq = minimize(ROSENBROCK, ROSENBROCK.start, adamlab.SGD(lr=lr), 100)
        assert_same_run(res.member(k), seq)
        if seq.status == "nonfinite":
            assert res.diverged_at[k] == seq.nit + 1  # the step whose result was not finite
            assert np.isnan(res.history.fun[seq.nit :, k]).all()
            assert np.isnan(res.history.x[seq.nit :, :, k]).all()
            assert np.isfinite(res.x[:, k]).all()  # the last finite point
        else:
            assert res.diverged_at[k] is None
    assert res.history.losses().shape == (101, 4)


def test_scalar_problem_and_shared_start() -> None:
    """A scalar x0 is shared by all members; member k is the scalar sequential run (float x, (nit,) history)."""
    cubic = get_function("cubic")
    lrs = np.array([0.01, 0.05, 0.2])
    res = minimize_batched(cubic, 0.001, adamlab.Adam(eps=1e-7, preset="keras"), 100, lr=lrs)
    res32 = minimize_batched(cubic, 0.001, adamlab.Adam(eps=1e-7, preset="keras"), 100, lr=lrs, dtype="float32")
    for k, lr in enumerate(lrs):
        rule = adamlab.Adam(lr=lr, eps=1e-7, preset="keras")
        member = res.member(k)
        assert isinstance(member.x, float) and member.history.x.shape == (100,)
        assert_same_run(member, minimize(cubic, 0.001, rule, 100))
        # float32: the array lr is rounded to float32 before the step, so agreement is to float32 precision
        seq32 = minimize(cubic, 0.001, rule, 100, dtype="float32")
        np.testing.assert_allclose(res32.member(k).history.x, seq32.history.x, rtol=1e-5, atol=1e-6)
        assert res32.member(k).history.x.dtype == np.float32


def test_numpy_gradient_path_matches_sequential() -> None:
    def fun(v):
        return 0.5 * (v[0] ** 2 + 10 * v[1] ** 2)

    def grad(v):
        return np.stack([v[0], 10 * v[1]])

    lrs = np.array([0.01, 0.1, 0.3])
    res = minimize_batched(fun, [1.0, -2.0], adamlab.Adam(), 80, lr=lrs, grad=grad)
    for k, lr in enumerate(lrs):
        assert_same_run(res.member(k), minimize(fun, [1.0, -2.0], adamlab.Adam(lr=lr), 80, grad=grad))


def test_averaged_rule_and_nonfinite_start() -> None:
    rule = adamlab.Averaged(adamlab.Adam(), "ema")
    starts = np.array([[1.0, -1.0, 2.0]])

    def log_f(v):
        return torch.log(v[0]) ** 2

    res = minimize_batched(log_f, starts, rule, 20, lr=np.array([0.1, 0.1, 0.2]))
    assert res.status == ["max_steps", "nonfinite", "max_steps"] and res.diverged_at == [None, 0, None]
    assert res.member(1).message == minimize(log_f, [-1.0], adamlab.Averaged(adamlab.Adam(lr=0.1)), 20).message
    for k, lr in ((0, 0.1), (2, 0.2)):
        seq = minimize(log_f, starts[:, k], adamlab.Averaged(adamlab.Adam(lr=lr), "ema"), 20)
        assert_same_run(res.member(k), seq)


@pytest.mark.parametrize("point", [[2.0, 1.0], 2.0])
def test_per_tensor_state_is_per_member(point) -> None:
    """NAdam's 0-d mu_product: one value per member, masked when a member diverges, in member()'s history."""

    def log_f(v):
        return torch.log(v[0]) ** 2 + v[1] ** 2 if np.ndim(point) else torch.log(v) ** 2

    lrs = np.array([0.1, 3.0, 0.05])
    res = minimize_batched(log_f, point, adamlab.NAdam(), 30, lr=lrs)
    assert res.status == ["max_steps", "nonfinite", "max_steps"]
    assert res.history.state["mu_product"].shape == (30, 3)
    for k, lr in enumerate(lrs):
        assert_same_run(res.member(k), minimize(log_f, point, adamlab.NAdam(lr=lr), 30))


def test_callback_stops_every_member() -> None:
    seen = []
    res = minimize_batched(ROSENBROCK, ROSENBROCK.start, "adam", 50, lr=[0.01, 0.1],
                           callback=lambda t, x, f: seen.append((t, x.shape, f.shape)) or t == 7)  # fmt: skip
    assert seen[-1] == (7, (2, 2), (2,)) and res.status == ["callback", "callback"] and res.nit.tolist() == [7, 7]


def test_errors() -> None:
    with pytest.raises(ValueError, match="x0 has 3 starting points .* lr has 2 values"):
        minimize_batched(ROSENBROCK, np.zeros((2, 3)), "adam", 5, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="lr must be a number or a 1-D array"):
        minimize_batched(ROSENBROCK, ROSENBROCK.start, "adam", 5, lr=np.ones((2, 2)))
    with pytest.raises(ValueError, match="lr must be a finite number"):
        minimize_batched(ROSENBROCK, ROSENBROCK.start, "adam", 5, lr=[0.1, -1.0])
    with pytest.raises(ValueError, match=r"one value per member \(shape \(2,\)\)"):
        minimize_batched(lambda v: (v**2).sum(), [1.0, 1.0], "adam", 5, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="steps must be an integer"):
        minimize_batched(ROSENBROCK, ROSENBROCK.start, "adam", 0)
    with pytest.raises(IndexError):
        minimize_batched(ROSENBROCK, ROSENBROCK.start, "adam", 2, lr=[0.1]).member(1)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy's lr array: the point of it
def test_an_overflowing_member_is_reported_as_the_sequential_run_reports_it() -> None:
    """tanh stays finite where x overflows: member k's message names x, as minimize's does."""
    lrs = np.array([0.01, 1e308])
    res = minimize_batched(torch.tanh, 0.0, adamlab.Adam(), 5, lr=lrs)
    assert res.status == ["max_steps", "nonfinite"]
    for k, lr in enumerate(lrs):
        assert_same_run(res.member(k), minimize(torch.tanh, 0.0, adamlab.Adam(lr=lr), 5))
    assert "x is not finite" in res.member(1).message
