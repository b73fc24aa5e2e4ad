"""Adafactor (Shazeer & Stern 2018) against its paper, torch.optim.Adafactor, optax.adafactor and
keras.optimizers.Adafactor.

Oracles and tolerances:

- the paper: Algorithms 4 (matrices) and 5 (vectors) of arXiv:1804.04235 transcribed below in NumPy, with
  the row and column sums written as the products with 1_m and 1_nᵀ that the paper prints. The paper preset
  sums with ``np.sum`` instead of a matrix product, so the two round differently: float64, 60 steps, agreement
  to 1e-12 relative (the update is normalised by RMS(U) and clipped, so rounding differences do not grow);
- the frameworks: the preset of each, on its face, over 300 steps of a chaotic problem
  (tests/side_by_side.py) in float32 and float64 (Keras: float32, torch and jax backends), must equal the
  framework's own optimizer bit for bit, parameters and state, for every rank of parameter (vector, matrix,
  one-column matrix, rank 3, 0-d).

Adafactor's state is not shaped like the parameter: the tests also check each preset's state layout (which
entries, which shapes) against the framework's own.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import side_by_side
from adamlab import registry, rules
from adamlab.kernels import Arithmetic, kernel_for

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def rms(x):
    return np.sqrt(np.mean(x * x))


def adafactor_algorithm_4_and_5(x, grads, rho_max=1e-2, tau=-0.8, eps1=1e-30, eps2=1e-3, d=1.0):
    """Shazeer & Stern 2018: Algorithm 4 for an n×m matrix, Algorithm 5 for a vector, as printed
    (ρ_t = min(10⁻², 1/√t), β̂_2t = 1 − t^τ, α_t = max(ε2, RMS(X_{t−1}))·ρ_t)."""
    if x.ndim == 2:
        n, m = x.shape
        ones_n, ones_m = np.ones(n), np.ones(m)
        r, c = np.zeros(n), np.zeros(m)
    else:
        v = np.zeros_like(x)
    for t, g in enumerate(grads, 1):
        rho = min(rho_max, 1 / math.sqrt(t))
        beta = 1 - t**tau
        alpha = max(eps2, rms(x)) * rho
        if x.ndim == 2:
            reg = g**2 + eps1 * np.outer(ones_n, ones_m)
            r = beta * r + (1 - beta) * reg @ ones_m
            c = beta * c + (1 - beta) * ones_n @ reg
            v = np.outer(r, c) / (ones_n @ r)
        else:
            v = beta * v + (1 - beta) * (g**2 + eps1 * np.ones_like(x))
        u = g / np.sqrt(v)
        u_hat = u / max(1.0, rms(u) / d)
        x = x - alpha * u_hat
    return x


@pytest.mark.parametrize("shape", [(6, 9), (7,), (9, 1)])
@pytest.mark.parametrize("options", [{}, {"d": 0.7, "beta2_decay": -0.6, "eps": (1e-20, 1e-2), "lr": 0.05}])
def test_the_paper_preset_is_algorithms_4_and_5(shape, options):
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(shape)
    grads = [x0 * 0.3 + rng.standard_normal(shape) * 0.5 for _ in range(60)]
    paper = {"rho_max": options.get("lr", 1e-2), "tau": options.get("beta2_decay", -0.8), "d": options.get("d", 1.0)}
    eps1, eps2 = options.get("eps", (1e-30, 1e-3))
    expected = adafactor_algorithm_4_and_5(x0, grads, eps1=eps1, eps2=eps2, **paper)
    rule = rules.Adafactor(**options)
    x, state = x0, rule.init(x0)
    for t, g in enumerate(grads, 1):
        x, state = rule.step(x, g, state, t)
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    assert not np.allclose(x, x0, rtol=1e-3)  # it moved


# --- torch.optim.Adafactor -------------------------------------------------------------------------------------

TORCH_CASES = {
    "defaults": {},
    "decay": {"lr": 0.05, "weight_decay": 0.1},
    "maximize": {"maximize": True, "weight_decay": 0.1},
    "beta2_decay": {"beta2_decay": -1.0, "d": 1.5},
    "eps": {"eps": (1e-20, 1e-2)},
}


class RuleOnTensors:
    """The rule stepped directly on torch tensors (what the torch face's plain path calls), torch's way."""

    def __init__(self, params, **kwargs):
        self.params, self.rule = params, rules.Adafactor(preset="torch", **kwargs)
        self.state, self.t = {p: self.rule.init(p.detach()) for p in params}, 0

    def step(self):
        self.t += 1
        for p in self.params:
            new, self.state[p] = self.rule.step(p.detach(), p.grad, self.state[p], self.t)
            p.data.copy_(new)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", TORCH_CASES)
def test_torch_preset_is_torch_optim_bit_for_bit(case, dtype):
    kw = TORCH_CASES[case]
    ref, ours, ref_state, our_state = side_by_side.torch_runs(
        lambda ps: torch.optim.Adafactor(ps, **kw), lambda ps: RuleOnTensors(ps, **kw), dtype
    )
    assert all(torch.equal(a, b) for a, b in zip(ref, ours, strict=True))
    for theirs, mine in zip(ref_state, our_state, strict=True):
        assert set(theirs) - {"step"} == set(mine)  # row_var/col_var or variance, as torch keeps them
        assert all(torch.equal(theirs[k], mine[k]) for k in mine)


def test_the_torch_face_class_is_torch_optim_bit_for_bit():
    import adamlab.torch

    face = getattr(adamlab.torch, "Adafactor", None)
    if face is None:
        pytest.skip("the torch face builds its classes from the registry once the torch-dropin branch is merged")
    for fast in (True, False):
        ref, ours, ref_state, our_state = side_by_side.torch_runs(
            lambda ps: torch.optim.Adafactor(ps, lr=0.02, weight_decay=0.05),
            lambda ps, fast=fast: face(ps, lr=0.02, weight_decay=0.05, fast=fast),
            torch.float32,
        )
        assert all(torch.equal(a, b) for a, b in zip(ref, ours, strict=True))
        for theirs, mine in zip(ref_state, our_state, strict=True):
            assert set(theirs) == set(mine)
            assert all(torch.equal(theirs[k], mine[k]) for k in theirs if k != "step")


# --- optax.adafactor -------------------------------------------------------------------------------------------


def _optax_cases():
    import optax

    decay = optax.exponential_decay(1e-2, 1, 0.99)
    return {
        "defaults": {},  # no learning rate; factored only from 128: the 130×129 matrix
        "lr": dict(learning_rate=5e-3),
        "factored": dict(learning_rate=1e-2, min_dim_size_to_factor=2),
        "momentum": dict(learning_rate=1e-2, min_dim_size_to_factor=1, momentum=0.9, weight_decay_rate=1e-3,
                         clipping_threshold=None),
        "schedule": dict(learning_rate=decay, multiply_by_parameter_scale=False, decay_rate=0.7, eps=1e-20,
                         min_dim_size_to_factor=4),
        "unfactored": dict(learning_rate=1e-2, factored=False, momentum=0.5, dtype_momentum=None,
                           weight_decay_rate=decay, weight_decay_mask=[True, False, True, False, True, False]),
    }  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["defaults", "lr", "factored", "momentum", "schedule", "unfactored"])
def test_optax_adafactor_bit_for_bit(case, dtype):
    pytest.importorskip("optax")
    import jax
    import jax.numpy as jnp
    import optax

    import adamlab.optax
    from adamlab.conformance.runners import x64

    kwargs = _optax_cases()[case]
    shapes = (*side_by_side.SHAPES, (130, 129))
    with x64():
        ref, ours, ref_state, our_state = side_by_side.optax_runs(
            optax.adafactor(**kwargs), adamlab.optax.adafactor(**kwargs), getattr(jnp, dtype), shapes=shapes
        )
        assert jax.tree.structure(ref_state) == jax.tree.structure(our_state)  # FactoredState, EmaState ...
        assert all(bool(jnp.array_equal(a, b)) for a, b in zip(ref, ours, strict=True))
        same = jax.tree.map(lambda a, b: a.dtype == b.dtype and bool(jnp.array_equal(a, b)), ref_state, our_state)
        assert jax.tree.all(same)


def test_optax_decay_offset_shifts_the_decay_schedule():
    """optax's β̂ = 1 − (count − offset + 1)^(−decay_rate): a state restored at count 10 with offset 4."""
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    import adamlab.optax

    params = [jnp.ones((3, 4)), jnp.ones(5)]
    grads = [jnp.full((3, 4), 0.5), jnp.linspace(-1.0, 1.0, 5)]
    results = []
    for make in (optax.adafactor, adamlab.optax.adafactor):
        opt = make(1e-2, min_dim_size_to_factor=1, decay_offset=4)
        state = opt.init(params)
        state = (state[0]._replace(count=jnp.asarray(10, jnp.int32)), *state[1:])
        results.append(opt.update(grads, state, params))
    (ref, ref_state), (ours, our_state) = results
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(ref, ours, strict=True))
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(ref_state[0].v_row, our_state[0].v_row, strict=True))


def test_optax_adafactor_needs_params_and_refuses_momentum_zero():
    pytest.importorskip("optax")
    import jax.numpy as jnp

    import adamlab.optax

    opt = adamlab.optax.adafactor(1e-2)
    params = {"w": jnp.ones((2, 3))}
    with pytest.raises(ValueError, match="requires the current value of parameters"):
        opt.update(params, opt.init(params))
    with pytest.raises(ValueError, match="momentum must be None"):
        adamlab.optax.adafactor(momentum=0.0)


# --- keras.optimizers.Adafactor ----------------------------------------------------------------------------------

KERAS_CASES = {
    "defaults": {},
    "keras_test_options": dict(learning_rate=0.05, beta_2_decay=-0.65, epsilon_1=1e-15, epsilon_2=1e-4,
                               clip_threshold=0.9, relative_step=False),
    "decay": dict(learning_rate=0.01, weight_decay=0.01),
}  # fmt: skip


@pytest.mark.parametrize("case", KERAS_CASES)
def test_keras_adafactor_bit_for_bit(case):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    assert side_by_side.keras_equal("Adafactor", KERAS_CASES[case])


def test_keras_adafactor_bit_for_bit_on_jax(tmp_path):
    pytest.importorskip("keras")
    pytest.importorskip("jax")
    done = side_by_side.keras_in_subprocess("Adafactor", list(KERAS_CASES.values()), "jax", str(tmp_path))
    assert done == {"backend": "jax", "equal": [True] * len(KERAS_CASES)}


def test_keras_relative_step_is_kept_but_changes_nothing_as_in_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    import adamlab.keras

    opt = adamlab.keras.Adafactor(0.5, relative_step=False)
    assert opt.relative_step is False and opt.get_config()["relative_step"] is False and opt.rule.relative_step
    assert side_by_side.keras_equal("Adafactor", dict(learning_rate=0.5, relative_step=False), steps=20)


# --- the contract: state shaped by the parameter, per preset --------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "shape", "expected"),
    [
        ("torch", (4, 6), {"row_var": (4, 1), "col_var": (1, 6)}),  # torch: keepdim shapes, only what it uses
        ("torch", (2, 4, 6), {"row_var": (2, 4, 1), "col_var": (2, 1, 6)}),
        ("torch", (6,), {"variance": (6,)}),
        ("torch", (), {"variance": ()}),
        ("paper", (4, 6), {"row_var": (4, 1), "col_var": (1, 6)}),
        ("keras", (4, 6), {"row_var": (4,), "col_var": (6,), "variance": (4, 6)}),  # Keras keeps V̂ whole
        ("keras", (6,), {"row_var": (), "col_var": (), "variance": (6,)}),  # and 0-d placeholders
        ("optax", (130, 129), {"row_var": (129,), "col_var": (130,), "variance": (1,)}),  # FactoredState: the
        ("optax", (129, 130), {"row_var": (129,), "col_var": (130,), "variance": (1,)}),  # largest axis reduced
        ("optax", (4, 6), {"row_var": (1,), "col_var": (1,), "variance": (4, 6)}),  # < min_dim_size_to_factor
    ],
)
def test_state_layout_follows_each_framework(preset, shape, expected):
    state = rules.Adafactor(preset=preset).init(np.zeros(shape))
    assert {k: v.shape for k, v in state.items()} == expected
    with_momentum = rules.Adafactor(preset=preset, momentum=0.9).init(np.zeros(shape))
    assert with_momentum["exp_avg"].shape == shape


@pytest.mark.parametrize("shape", [(130, 129), (129, 130), (3, 140, 200), (200, 3, 140), (4, 6), (7,), ()])
def test_optax_preset_state_has_the_shapes_of_optax_factored_state(shape):
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    theirs = optax.adafactor().init(jnp.zeros(shape))[0]
    ours = rules.Adafactor(preset="optax").init(np.zeros(shape))
    assert (ours["row_var"].shape, ours["col_var"].shape, ours["variance"].shape) == (
        theirs.v_row.shape, theirs.v_col.shape, theirs.v.shape
    )


def test_no_kernel_the_update_is_not_elementwise():
    assert rules.Adafactor.elementwise is False and not rules.Adafactor().layout().elementwise
    assert kernel_for(rules.Adafactor(), "float64", Arithmetic(fma=False, sqrt="exact", reciprocal_rdiv=False)) is None
    assert registry.entry("adafactor").torch == "Adafactor" and registry.entry("adafactor").optax == ("adafactor",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, r"lr must be a finite number in \[0, inf\); got -1.0"),
        ({"beta2_decay": 0.8}, r"beta2_decay must be a finite number in \[-inf, 0\]; got 0.8"),
        ({"eps": (-1e-30, 1e-3)}, r"eps\[0\] must be a finite number in \[0, inf\); got -1e-30"),
        ({"eps": 1e-3}, r"eps must be a pair \(eps1 or None, eps2\)"),
        ({"d": 0.0}, r"d must be a finite number in \(0, inf\); got 0.0"),
        ({"momentum": 1.0}, r"momentum must be a finite number in \[0, 1\); got 1.0"),
        ({"min_dim_size_to_factor": 1.5}, r"min_dim_size_to_factor must be an integer ≥ 0; got 1.5"),
        ({"factor_dims": "first"}, r"factor_dims must be one of 'last', 'largest'; got 'first'"),
        ({"eps1_mode": "both"}, r"eps1_mode must be one of 'add', 'clamp'; got 'both'"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rules.Adafactor(**kwargs)


def test_no_clipping_at_an_infinite_threshold_and_the_numpy_face_runs():
    import adamlab.numpy

    rule = rules.Adafactor(d=math.inf, lr=0.1)
    x = np.array([[3.0, -1.0], [0.5, 2.0]])
    new, _ = rule.step(x, np.array([[1.0, -2.0], [4.0, 0.5]]), rule.init(x), 1)
    assert np.isfinite(new).all() and not np.array_equal(new, x)
    opt = adamlab.numpy.Adafactor(lr=0.1)
    params = opt.step({"w": np.ones((3, 2)), "b": np.ones(2)}, {"w": np.full((3, 2), 0.5), "b": np.ones(2)})
    assert params["w"].shape == (3, 2) and (params["b"] < 1).all()
