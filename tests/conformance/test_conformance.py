"""adamlab's faces against torch.optim, optax and Keras 3, bit for bit (tests/conformance/conftest.py: 300 steps).

One test per optimizer × pair: every variant of the pair (random hyperparameters, flags such as amsgrad,
nesterov, centered, weight decay, maximize and lr schedules) in float32 and float64 on the chaotic problem must
be identical to the framework's own run at every step: ulp distance 0. torch.optim's foreach path is a reference
pair (torch against itself): reported, not required to be identical.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import adamlab.conformance as conformance
from adamlab.conformance import runners
from adamlab.conformance.cases import DTYPES, FRAMEWORKS, MISSING, OPTIMIZERS, PAIRS, cases
from adamlab.conformance.problems import Problem, relative_difference, ulp_distance
from adamlab.rules import RULES
from conftest import report_for, require

# Keras's own torch-backend Nadam converts a tensor with np.array, which NumPy 2 warns about on every step
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

ROWS = [(pair, opt) for pair in PAIRS for opt in OPTIMIZERS if (pair.framework, opt) not in MISSING]


@pytest.mark.parametrize(("pair", "optimizer"), ROWS, ids=[f"{p.framework}-{p.path}-{o}" for p, o in ROWS])
def test_adamlab_is_identical_to_the_framework(pair, optimizer):
    report = report_for(pair.framework)
    if pair.key in report.skipped:
        pytest.skip(report.skipped[pair.key])
    mine = [r for r in report.results if r.pair == pair and r.case.optimizer == optimizer]
    variants = [c for c in cases(pair.framework) if c.optimizer == optimizer]
    assert len(mine) == len(variants) * len(DTYPES) > 0
    assert {r.dtype for r in mine} == set(DTYPES)
    for r in mine:
        assert r.error is None, r.error
        if not pair.reference:
            assert r.identical, (
                f"{r.case.reference} variant {r.case.variant} {r.case.options} ({r.dtype}, {pair.label}): "
                f"{r.ulps:g} ulp, relative {r.relative:.1e}"
            )


def test_torch_s_foreach_path_is_not_its_for_loop_for_nadam():
    """The reference pair measures something: torch.optim's NAdam ends elsewhere with foreach=True."""
    report = report_for("torch")
    rows = [r for r in report.results if r.pair.path == "foreach" and r.case.optimizer == "nadam"]
    assert rows and all(r.ulps > 0 and math.isfinite(r.ulps) for r in rows)
    assert all(r.passed for r in rows)  # a reference pair never fails the report


def test_a_one_ulp_difference_is_reported(monkeypatch):
    require("torch")
    plain = runners.run_torch

    def nudged(case, problem, dtype, path):
        x = plain(case, problem, dtype, path)
        if path == "plain":
            x[-1, 7] = np.nextafter(x[-1, 7], np.inf)
        return x

    monkeypatch.setattr(runners, "run_torch", nudged)
    report = conformance.run_conformance(steps=3, frameworks=("torch",), optimizers=("sgd",))
    plain_rows = [r for r in report.results if r.pair.path == "plain"]
    assert plain_rows and all(r.ulps == 1 and not r.identical and not r.passed for r in plain_rows)
    assert not report.passed
    assert "differs 4/4: 1 ulp" in conformance.format_table(report)
    assert all(r.identical for r in report.results if r.pair.path == "fast")


def test_ulp_distance():
    one = np.array([1.0])
    assert ulp_distance(one, one) == 0
    assert ulp_distance(np.nextafter(one, 2), one) == 1
    assert ulp_distance(np.array([-0.0]), np.array([0.0])) == 0
    tiny = np.array([5e-324])
    assert ulp_distance(tiny, -tiny) == 2
    f32 = np.array([1.0, -2.0], dtype=np.float32)
    assert ulp_distance(f32, np.nextafter(f32, np.float32(0))) == 1
    assert ulp_distance(np.float32([1.5]), np.float32([1.5 + 2**-23 * 1000])) == 1000  # counted in float32
    assert ulp_distance(np.array([np.nan]), np.array([np.nan])) == math.inf
    with pytest.raises(ValueError, match="one dtype and shape"):
        ulp_distance(np.float32([1.0]), np.float64([1.0]))
    assert relative_difference(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == 0.5


def test_the_problem_is_chaotic_enough_to_expose_one_bit():
    """A one-ulp change of the start grows: after the CLI's 1000 steps Adam is millions of ulps away."""
    require("torch")
    problem = Problem(seed=0, steps=1000)
    case = next(c for c in cases("torch") if c.optimizer == "adam")
    base = runners.run_torch(case, problem, "float64", "torch")
    problem.x0 = problem.x0.copy()
    problem.x0[3] = np.nextafter(problem.x0[3], np.inf)
    moved = runners.run_torch(case, problem, "float64", "torch")
    assert base.shape == (1000, 64)
    assert ulp_distance(moved[-1], base[-1]) > 1e6 and ulp_distance(moved[:1], base[:1]) <= 2


def test_every_rule_and_framework_pair_is_covered_or_declared_missing():
    for framework in FRAMEWORKS:
        covered = {c.optimizer for c in cases(framework, seed=0)}
        for name in RULES:
            assert name in OPTIMIZERS
            assert (name in covered) != ((framework, name) in MISSING), f"{framework}/{name}"


def test_the_flags_each_framework_has_are_exercised():
    flags = {
        "torch": (
            "amsgrad",
            "maximize",
            "weight_decay",
            "decoupled_weight_decay",
            "nesterov",
            "centered",
            "momentum_decay",
            "dampening",
            "lr_decay",
            "initial_accumulator_value",
        ),
        "optax": ("nesterov", "weight_decay", "eps_root", "centered", "momentum", "eps_in_sqrt", "threshold"),
        "keras": ("amsgrad", "weight_decay", "nesterov", "centered", "momentum", "initial_accumulator_value"),
    }
    for framework, names in flags.items():
        used = {k for c in cases(framework, seed=0) for k in c.options}
        assert set(names) <= used, f"{framework}: {set(names) - used} never exercised"
        aliases = {c.alias for c in cases(framework, seed=0)}
        if framework == "optax":
            assert {"amsgrad", "adamaxw", "nadamw"} <= aliases


def test_the_framework_optimizers_exist_under_the_case_names():
    for framework in FRAMEWORKS:
        require(framework)
        if framework == "torch":
            import torch.optim as module
        elif framework == "optax":
            import optax as module
        else:
            import keras

            module = keras.optimizers
        for case in cases(framework, seed=0):
            assert hasattr(module, case.alias), case.reference
