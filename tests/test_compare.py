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
    res = compare("digits", ["adam", "sgd"], epochs=2, grid=[0.01, 0.1, 1.0], seeds=3, executor="serial")
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


@pytest.mark.parametrize("name", ["booth", "ill_conditioned", "rastrigin"])
def test_sensitivity_plot_survives_huge_finite_scores(tmp_path, name: str) -> None:
    """SGD's grid scores reach ~1e288 (finite): the limits must stay drawable and every picture be written."""
    import warnings

    from adamlab.lab.comparison_plots import write_comparison

    res = compare(name, ["sgd"], steps=50)
    scores = res.optimizers["sgd"].grid_objective
    assert scores[np.isfinite(scores)].max() > 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = write_comparison(res, tmp_path, animate=False)
    assert {"results", "loss", "sensitivity", "paths"} <= set(written)
    assert all(p.is_file() and p.stat().st_size > 0 for p in written.values())


def test_log_limits_stay_finite_and_ordered() -> None:
    from adamlab.lab.comparison_plots import _log_limits

    for values in ([1e-7, 1e100], [5e-324, 1e100], [2.0, 2.0], [1e-310]):
        low, high = _log_limits(np.array(values))
        assert np.isfinite(low) and np.isfinite(high) and 0 < low < high <= 1e150
    assert _log_limits(np.array([1.0, 10.0])) == pytest.approx((1 / 3, 10 * 10**0.25))  # the old limits


def test_inside_adam_figure_is_the_compared_noisy_run(tmp_path, monkeypatch) -> None:
    """With gradient noise the figure re-runs seed 0 with the same noise, so its path is the compared one."""
    from adamlab.lab import diagnostics
    from adamlab.lab.comparison_plots import write_comparison

    seen = {}

    def capture(diag, out, title):
        seen.update(diag=diag, title=title)
        return out

    monkeypatch.setattr(diagnostics, "plot_adam_diagnostics", capture)
    res = compare(get_problem("rosenbrock", grad_noise=10.0), ["adam"], steps=60, grid=GRID, seeds=2)
    write_comparison(res, tmp_path, animate=False)
    path = res.optimizers["adam"].path
    np.testing.assert_allclose(seen["diag"].measured_step, path[:-1] - path[1:], rtol=0, atol=1e-12)
    assert "gradient noise σ = 10, seed 0" in seen["title"]
    write_comparison(compare("rosenbrock", ["adam"], steps=60, grid=GRID), tmp_path, animate=False)
    assert "no gradient noise" in seen["title"]


def test_same_labels_lose_no_series(tmp_path, monkeypatch) -> None:
    """Two results with one label: every picture still gets both series (keyed by optimizer, not label)."""
    from adamlab.lab import plots
    from adamlab.lab.comparison_plots import write_comparison

    res = compare("rosenbrock", {"a": adamlab.Adam(lr=0.1), "b": adamlab.Adam(lr=0.01)}, steps=30, tune="none")
    res.optimizers["b"].label = res.optimizers["a"].label
    counts = {}
    contour, loss = plots.plot_contour_paths, plots.plot_loss_curves

    def count_paths(fun, paths, *args, **kwargs):
        counts["paths"] = len(paths)
        return contour(fun, paths, *args, **kwargs)

    def count_curves(curves, *args, **kwargs):
        counts["curves"] = len(curves)
        return loss(curves, *args, **kwargs)

    monkeypatch.setattr(plots, "plot_contour_paths", count_paths)
    monkeypatch.setattr(plots, "plot_loss_curves", count_curves)
    written = write_comparison(res, tmp_path, frames=3)
    assert counts == {"paths": 2, "curves": 2}
    page = written["html"].read_text()
    data = json.loads(page.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    assert len(data["series"]) == 2 and all(s["loss"] for s in data["series"])


# --- labels, budget caps and argument checks (one block) ------------------------------------------------------


def test_labels_are_unique_when_two_optimizers_share_one() -> None:
    rules = {"adam": adamlab.Adam(lr=0.01), "amsgrad": adamlab.Adam(lr=0.01, amsgrad=True)}
    res = compare("rosenbrock", rules, steps=20, tune="none")
    labels = {key: r.label for key, r in res.optimizers.items()}
    assert labels == {"adam": "Adam (lr=0.01) [adam]", "amsgrad": "Adam (lr=0.01) [amsgrad]"}
    assert compare("rosenbrock", ["adam", "sgd"], steps=5, tune="none").optimizers["adam"].label == "Adam (lr=0.001)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(steps=1_000_001), "steps must be an integer from 1 to 1,000,000; got 1000001"),
        (dict(steps=0), "steps must be an integer from 1 to 1,000,000; got 0"),
        (dict(seeds=1001), "seeds must be an integer from 1 to 1,000; got 1001"),
        (dict(grid=np.logspace(-3, 0, 1001)), "grid must have 1 to 1000 learning rates; got 1,001"),
        (dict(grid="abc"), "grid must be a list of finite learning rates > 0; got 'abc'"),
        (dict(grid=np.logspace(-3, 0, 1000), steps=1_000_000), "× steps must be at most 100,000,000"),
        (dict(target="a"), "target must be a finite number or None; got 'a'"),
        (dict(target=float("nan")), "target must be a finite number or None; got nan"),
    ],
)
def test_budget_and_arguments_are_checked_before_running(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        compare("rosenbrock", ["sgd"], **{"steps": 5, **kwargs})
    assert message in str(info.value)


def test_epochs_and_optimizers_are_checked() -> None:
    with pytest.raises(ValueError, match="epochs must be an integer from 1 to 10,000; got 10001"):
        compare("digits", ["sgd"], epochs=10_001)
    with pytest.raises(ValueError, match="epochs × 1797 steps per epoch must be at most 1,000,000 steps"):
        compare(get_problem("digits", batch_size=1), ["sgd"], epochs=1000)
    with pytest.raises(ValueError, match="seeds must be an integer from 1 to 1,000; got 5000"):
        compare(get_problem("booth", grad_noise=1.0), ["sgd"], steps=2, seeds=5000)
    with pytest.raises(ValueError, match="optimizers must be a list of names or rules, or a mapping to them; got None"):
        compare("booth", None, steps=2)  # type: ignore[arg-type]
