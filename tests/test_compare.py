"""compare(): tuning on the stated objective, seeds, divergence, targets and the results object."""

from __future__ import annotations

import json

import numpy as np
import pytest

import adamlab
from adamlab.lab.compare import DEEPOBS_GRID, compare, tuning_objective
from adamlab.lab.functions import get_function
from adamlab.lab.minimize import minimize
from adamlab.lab.problems import get_problem
from adamlab.lab.results import DISCLAIMER_FUNCTION

GRID = np.logspace(-3, 0, 7)


def test_deepobs_grid() -> None:
    assert len(DEEPOBS_GRID) == 36 and DEEPOBS_GRID[0] == pytest.approx(1e-5) and DEEPOBS_GRID[-1] == pytest.approx(100)


@pytest.mark.parametrize("objective", ["final", "mean"])
def test_tuned_lr_is_the_best_on_the_stated_objective(objective: str) -> None:
    """Recompute every grid point with sequential minimize runs and check the choice and the recorded scores."""
    f = get_function("ill_conditioned")
    res = compare("ill_conditioned", ["adam", "momentum"], steps=50, grid=GRID, objective=objective)
    for key, rule in (("adam", adamlab.Adam), ("momentum", None)):
        scores = []
        for lr in GRID:
            r = rule(lr=lr) if rule else adamlab.make_rule("momentum", lr=lr)
            run = minimize(f, f.start, r, 50)
            curve = np.concatenate([[run.history.fun0], run.history.fun])
            ok = run.status != "nonfinite"
            scores.append((curve[-1] if objective == "final" else curve.mean()) if ok else np.inf)
        r = res.optimizers[key]
        np.testing.assert_allclose(r.grid_objective, scores, rtol=1e-12)
        assert r.lr == GRID[int(np.argmin(scores))]
        assert f"lr={r.lr:.3g}" in r.label and r.hyperparameters()["lr"] == r.lr
    stated = "mean loss over the run" if objective == "mean" else "final training loss"
    assert res.objective == objective and stated in res.protocol()


def test_curves_and_paths_of_a_function_comparison() -> None:
    f = get_function("rosenbrock")
    res = compare("rosenbrock", ["adam", "sgd"], steps=80, grid=GRID, seeds=3)
    assert res.seeds == 1 and "no randomness" in res.notes[0]  # deterministic: one run is enough
    adam = res.optimizers["adam"]
    seq = minimize(f, f.start, adamlab.Adam(lr=adam.lr), 80)
    np.testing.assert_allclose(adam.curve()[1:], seq.history.fun, rtol=0, atol=1e-12)
    np.testing.assert_allclose(adam.path, seq.history.path(), rtol=0, atol=1e-12)
    assert adam.losses.shape == (1, 81) and adam.points.tolist() == list(range(81))
    assert adam.final_loss == pytest.approx(seq.fun)


def test_divergence_is_recorded_and_does_not_touch_the_others() -> None:
    f = get_function("rosenbrock")
    rules = {"sgd": adamlab.SGD(lr=0.01), "adam": adamlab.Adam(lr=0.05)}
    res = compare("rosenbrock", rules, steps=60, tune="none")
    sgd, adam = res.optimizers["sgd"], res.optimizers["adam"]
    seq = minimize(f, f.start, adamlab.SGD(lr=0.01), 60)
    assert seq.status == "nonfinite"
    assert sgd.diverged and sgd.diverged_at == [seq.nit + 1] and np.isnan(sgd.final_loss)
    assert np.isnan(sgd.curve()[seq.nit + 1 :]).all()
    np.testing.assert_allclose(sgd.curve()[1 : seq.nit + 1], seq.history.fun, rtol=0, atol=1e-12)
    alone = compare("rosenbrock", {"adam": adamlab.Adam(lr=0.05)}, steps=60, tune="none").optimizers["adam"]
    assert not adam.diverged
    np.testing.assert_array_equal(adam.losses, alone.losses)
    out = res.to_dict()
    assert out["optimizers"]["sgd"]["diverged"] is True and out["optimizers"]["sgd"]["final_loss"] is None
    json.dumps(out, allow_nan=False)


def test_everything_diverges_picks_the_longest_run() -> None:
    res = compare("rosenbrock", ["sgd"], steps=40, grid=[1.0, 10.0, 100.0])
    r = res.optimizers["sgd"]
    assert np.isinf(r.grid_objective).all() and r.lr == 1.0 and r.diverged
    assert any("every learning rate of the grid diverged" in n for n in res.notes)


def test_steps_to_target() -> None:
    res = compare("booth", ["adam", "sgd"], steps=100, grid=GRID)
    f0 = res.optimizers["adam"].losses[0, 0]
    assert res.target == pytest.approx(1e-3 * f0)  # f* = 0 known: target = f* + 1e-3 (f0 - f*)
    for r in res.optimizers.values():
        hit = np.flatnonzero(r.curve() <= res.target)
        assert r.steps_to_target == (int(r.points[hit[0]]) if len(hit) else None)
    given = compare("booth", ["adam"], steps=100, grid=GRID, target=1.0)
    assert given.target == 1.0 and given.target_rule.endswith("(given)")


def test_learning_problem_seeds_spread_and_same_start() -> None:
    res = compare("digits", ["adam", "sgd"], epochs=2, grid=[0.01, 0.1, 1.0], seeds=3)
    assert res.steps == 28 and res.seeds == 3 and res.problem.unit == "epoch"
    adam, sgd = res.optimizers["adam"], res.optimizers["sgd"]
    assert adam.losses.shape == (3, 3) and adam.points.tolist() == [0, 14, 28]
    np.testing.assert_array_equal(adam.losses[:, 0], sgd.losses[:, 0])  # seed s: same start for both
    assert len(set(adam.losses[:, 0])) == 3  # three seeds, three initialisations
    low, high = adam.spread()
    assert np.all(low <= adam.curve()) and np.all(adam.curve() <= high) and high[-1] > low[-1]
    assert res.target is not None and "best final loss" in res.target_rule
    assert res.disclaimer != DISCLAIMER_FUNCTION


def test_tune_seeds_average_the_objective() -> None:
    res = compare("ill_conditioned", ["sgd"], steps=30, grid=[0.01, 0.05], tune_seeds=1).optimizers["sgd"]
    noisy = compare(get_problem("ill_conditioned", grad_noise=3.0), ["sgd"], steps=30,
                    grid=[0.01, 0.05], tune_seeds=2, seeds=2)  # fmt: skip
    assert res.grid_objective.shape == (2,) and noisy.tune_seeds == 2
    problem = noisy.problem
    runs = problem.run(adamlab.SGD(), np.array([0.01, 0.01, 0.05, 0.05]), np.array([0, 1, 0, 1]), 30)
    expected = tuning_objective(runs.losses, "final").reshape(2, 2).mean(axis=1)
    np.testing.assert_allclose(noisy.optimizers["sgd"].grid_objective, expected)


def test_json_has_the_promised_keys() -> None:
    out = compare("booth", ["adam", "nesterov"], steps=20, grid=GRID).to_dict()
    assert out["problem"] == "booth" and out["disclaimer"] == DISCLAIMER_FUNCTION
    for r in out["optimizers"].values():
        assert {"lr", "final_loss", "diverged", "curve", "label", "hyperparameters", "grid_objective"} <= set(r)
        assert isinstance(r["lr"], float) and isinstance(r["diverged"], bool) and len(r["curve"]) == 21
    json.dumps(out, allow_nan=False)


def test_errors() -> None:
    with pytest.raises(ValueError, match="give steps or epochs, not both"):
        compare("digits", ["adam"], steps=10, epochs=1)
    with pytest.raises(ValueError, match="epochs apply to learning problems"):
        compare("rosenbrock", ["adam"], epochs=1)
    with pytest.raises(ValueError, match="optimizer must be one of adam, .*; got 'adamx'"):
        compare("rosenbrock", ["adamx"], steps=5)
    with pytest.raises(ValueError, match="unknown problem 'rosenbrok'; choose one of"):
        compare("rosenbrok", ["adam"], steps=5)
    with pytest.raises(ValueError, match="tune must be one of grid, none"):
        compare("booth", ["adam"], steps=5, tune="random")
    with pytest.raises(ValueError, match="objective must be one of final, mean"):
        compare("booth", ["adam"], steps=5, objective="best")
    with pytest.raises(ValueError, match="given twice"):
        compare("booth", ["adam", "adam"], steps=5)
    with pytest.raises(ValueError, match="grid must be a non-empty list"):
        compare("booth", ["adam"], steps=5, grid=[0.1, -1])
