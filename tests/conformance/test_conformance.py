"""adamlab's faces against torch.optim (float64), optax (float64) and Keras 3 (float32), side by side.

One test per optimizer × framework pair the framework has; each runs every variant of that pair (random
hyperparameters, flags such as amsgrad, nesterov, centered, weight decay, maximize and lr schedules spread
over the variants) for 300 steps on a noisy random quadratic and a small MLP.
"""

from __future__ import annotations

import pytest
from conftest import require

from adamlab.conformance import run_case
from adamlab.conformance.cases import FRAMEWORKS, MISSING, OPTIMIZERS, cases
from adamlab.rules import RULES

# Keras's own torch-backend Nadam converts a tensor with np.array, which NumPy 2 warns about on every step
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

PAIRS = [(fw, opt) for fw in FRAMEWORKS for opt in OPTIMIZERS if (fw, opt) not in MISSING]


@pytest.mark.parametrize(("framework", "optimizer"), PAIRS, ids=[f"{fw}-{opt}" for fw, opt in PAIRS])
def test_adamlab_matches_the_framework(framework, optimizer, problem):
    require(framework)
    selected = [c for c in cases(framework, seed=0) if c.optimizer == optimizer]
    assert selected, f"no case for {framework}/{optimizer}"
    for case in selected:
        result = run_case(case, problem)
        assert result.passed, (
            f"{case.reference} variant {case.variant} {case.options}: max relative difference "
            f"{result.difference} > {result.tolerance:g} ({result.dtype})"
        )


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
