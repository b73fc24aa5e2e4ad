"""Lion (Chen et al. 2023) against its paper and against optax.lion and keras.optimizers.Lion, bit for bit.

Oracles: Algorithm 2 of arXiv:2302.06675 transcribed below in NumPy (the paper and torch presets compute its
formulas in its order, so the two agree exactly); ``optax.lion`` under ``jax.jit`` in float32 and float64 and
``keras.optimizers.Lion`` on the torch and jax backends (float32), each against adamlab's face for it on a
chaotic problem for 300 steps. Lion's step is ±lr per coordinate, so a single flipped sign would show as a
difference of 2·lr: equality of every bit is the only tolerance that means anything here. The generated
kernel is checked against the rule in tests/test_kernels.py (Lion is in its OPTIONS).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import adamlab
import side_by_side
from adamlab import registry, rules

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def lion_algorithm_2(theta, grads, lr, beta1, beta2, wd):
    """Chen et al. 2023, Algorithm 2 (Lion), as printed: c, the update with decoupled decay, then m."""
    m = np.zeros_like(theta)
    for g in grads:
        c = beta1 * m + (1 - beta1) * g
        theta = theta - lr * (np.sign(c) + wd * theta)
        m = beta2 * m + (1 - beta2) * g
    return theta, m


@pytest.mark.parametrize("preset", ["paper", "torch"])
@pytest.mark.parametrize("wd", [0.0, 0.3])
def test_the_paper_and_torch_presets_are_algorithm_2(preset, wd):
    rng = np.random.default_rng(1)
    theta0 = rng.standard_normal(50)
    grads = [rng.standard_normal(50) * 0.1 + 0.01 for _ in range(40)]
    expected, m_expected = lion_algorithm_2(theta0, grads, 0.01, 0.9, 0.99, wd)
    rule = rules.Lion(lr=0.01, weight_decay=wd, preset=preset)
    theta, state = theta0, rule.init(theta0)
    for t, g in enumerate(grads, 1):
        theta, state = rule.step(theta, g, state, t)
    assert np.array_equal(theta, expected) and np.array_equal(state["exp_avg"], m_expected)


def test_each_coordinate_moves_by_lr_against_the_sign_of_the_interpolation():
    rule = rules.Lion(lr=0.5, betas=(0.5, 0.5))
    theta, state = np.zeros(3), {"exp_avg": np.array([1.0, -1.0, 0.0])}
    theta, state = rule.step(theta, np.array([-3.0, -0.5, 0.0]), state, 1)
    assert theta.tolist() == [0.5, 0.5, 0.0]  # c = (−1, −0.75, 0): the sign, not the size, sets the step
    assert state["exp_avg"].tolist() == [-1.0, -0.75, 0.0]
    up, _ = rules.Lion(lr=0.5, maximize=True).step(np.zeros(1), np.ones(1), {"exp_avg": np.zeros(1)}, 1)
    assert up.tolist() == [0.5]


def test_presets_choose_the_frameworks_defaults():
    assert rules.Lion().hyperparameters() == {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0, "maximize": False}
    assert rules.Lion(preset="keras").lr == 1e-3 and rules.Lion(preset="keras").weight_decay == 0.0
    assert rules.Lion(preset="optax").weight_decay == 1e-3
    assert adamlab.make_rule("lion", lr=0.1).lr == 0.1
    assert registry.entry("lion").torch is None and registry.entry("Lion").keras == "Lion"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, r"lr must be a finite number in \[0, inf\); got -1.0"),
        ({"betas": (1.5, 0.99)}, r"betas\[0\] must be a finite number in \[0, 1\]; got 1.5"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\] must be a finite number in \[0, 1\]; got -0.1"),
        ({"betas": 0.9}, r"betas must be a pair \(beta1, beta2\), each in \[0, 1\]"),
        ({"weight_decay": float("nan")}, r"weight_decay must be a finite number in \[0, inf\)"),
        ({"maximize": 1}, r"maximize must be True or False"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rules.Lion(**kwargs)


def test_no_torch_class_so_the_torch_face_uses_the_paper_form():
    face = getattr(__import__("adamlab.torch", fromlist=["x"]), "Lion", None)
    if face is None:
        pytest.skip("the torch face builds its classes from the registry once the torch-dropin branch is merged")
    rng = np.random.default_rng(2)
    theta0 = rng.standard_normal(20)
    grads = [rng.standard_normal(20) for _ in range(30)]
    expected, _ = lion_algorithm_2(theta0, grads, 0.01, 0.9, 0.99, 0.1)
    for fast in (True, False):
        p = torch.nn.Parameter(torch.tensor(theta0))
        opt = face([p], lr=0.01, weight_decay=0.1, fast=fast)
        for g in grads:
            p.grad = torch.tensor(g)
            opt.step()
        # the kernel (fast) and torch's own operations (plain) compute Algorithm 2 in its order
        np.testing.assert_array_equal(p.detach().numpy(), expected)


# --- optax -----------------------------------------------------------------------------------------------------


def _optax_schedules():
    import optax

    return {"learning_rate": optax.exponential_decay(1e-2, 1, 0.99), "weight_decay": optax.linear_schedule(1e-3, 0, 50)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["plain", "betas", "no_decay", "schedules", "mask"])
def test_optax_lion_bit_for_bit(case, dtype):
    pytest.importorskip("optax")
    import jax
    import jax.numpy as jnp
    import optax

    import adamlab.optax
    from adamlab.conformance.runners import x64

    kwargs = {
        "plain": dict(learning_rate=1e-3),
        "betas": dict(learning_rate=3e-3, b1=0.8, b2=0.95, weight_decay=1e-2),
        "no_decay": dict(learning_rate=3e-3, weight_decay=0.0),
        "schedules": _optax_schedules(),
        "mask": dict(learning_rate=3e-3, weight_decay=0.1, mask=[True, False, True, False, True]),
    }[case]
    with x64():
        ref, ours, ref_state, our_state = side_by_side.optax_runs(
            optax.lion(**kwargs), adamlab.optax.lion(**kwargs), getattr(jnp, dtype)
        )
        assert jax.tree.structure(ref_state) == jax.tree.structure(our_state)
        assert all(bool(jnp.array_equal(a, b)) for a, b in zip(ref, ours, strict=True))
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)) and a.dtype == b.dtype,
                                         ref_state, our_state))  # fmt: skip


def test_optax_mu_dtype_is_the_stored_dtype():
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    import adamlab.optax

    params = {"w": jnp.ones(3)}
    state = adamlab.optax.lion(1e-3, mu_dtype=jnp.bfloat16).init(params)
    assert optax.tree.get(state, "mu")["w"].dtype == jnp.bfloat16
    assert type(state[0]) is optax.ScaleByLionState


# --- Keras -----------------------------------------------------------------------------------------------------

KERAS_CASES = {
    "defaults": {},
    "betas": dict(learning_rate=1e-2, beta_1=0.8, beta_2=0.95),
    "decay": dict(learning_rate=3e-3, weight_decay=0.01),
}


@pytest.mark.parametrize("case", KERAS_CASES)
def test_keras_lion_bit_for_bit(case):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    assert side_by_side.keras_equal("Lion", KERAS_CASES[case])


def test_keras_lion_bit_for_bit_on_jax(tmp_path):
    """Keras reads its backend once: a fresh interpreter with KERAS_BACKEND=jax (eager apply_gradients)."""
    pytest.importorskip("keras")
    pytest.importorskip("jax")
    done = side_by_side.keras_in_subprocess("Lion", list(KERAS_CASES.values()), "jax", str(tmp_path))
    assert done == {"backend": "jax", "equal": [True] * len(KERAS_CASES)}


def test_keras_checks_beta_1_as_keras_does():
    pytest.importorskip("keras")
    import adamlab.keras

    for bad in (0.0, -0.1, 1.1):
        with pytest.raises(ValueError, match=r"Argument `beta_1` must be in the \[0, 1\] range"):
            adamlab.keras.Lion(beta_1=bad)
    assert adamlab.keras.Lion(beta_1=1.0).rule.betas == (1.0, 0.99)
