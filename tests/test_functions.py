"""Tests for the optimizer-lab test functions, against analytic facts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adamlab.lab.functions import FUNCTIONS, TestFunction, get_function, list_functions

NAMES = sorted(FUNCTIONS)
WITH_MINIMA = [n for n in NAMES if FUNCTIONS[n].minima]
BOUNDED = [n for n in NAMES if FUNCTIONS[n].bounded_below]


def test_registry_keys_and_order():
    assert set(NAMES) == {
        "rosenbrock", "beale", "booth", "himmelblau", "rastrigin", "ackley", "styblinski_tang",
        "goldstein_price", "three_hump_camel", "saddle", "ill_conditioned", "cubic",
    }  # fmt: skip
    assert [f.name for f in list_functions()] == NAMES
    for name, f in FUNCTIONS.items():
        assert isinstance(f, TestFunction) and f.name == name and get_function(name) is f
        assert f.title and f.formula
        assert f.dim == len(f.domain) == len(f.start)
        assert all(len(m) == f.dim for m in f.minima)
        assert (f.min_value is None) == (not f.minima)


def test_get_function_error_lists_names():
    with pytest.raises(ValueError, match="unknown function 'foo'; choose one of: ackley, beale, booth") as e:
        get_function("foo")
    assert str(e.value).endswith(", ".join(NAMES[-3:]))


@pytest.mark.parametrize("name", WITH_MINIMA)
def test_value_at_minima(name):
    f = FUNCTIONS[name]
    for m in f.minima:
        assert float(np.squeeze(f(np.array(m)))) == pytest.approx(f.min_value, abs=1e-9)
        lo_hi = zip(f.domain, m, strict=True)
        assert all(lo <= c <= hi for (lo, hi), c in lo_hi), "minimum outside the plot box"


@pytest.mark.parametrize("name", WITH_MINIMA)
def test_autograd_gradient_vanishes_at_minima(name):
    f = FUNCTIONS[name]
    for m in f.minima:
        v = torch.tensor(m, dtype=torch.float64, requires_grad=True)
        f(v).sum().backward()
        assert torch.all(torch.isfinite(v.grad))
        assert torch.allclose(v.grad, torch.zeros_like(v.grad), atol=1e-9), v.grad


def test_published_rounded_minimisers():
    """The stored (Newton-refined) minimisers match the published 6-decimal values."""
    published = {
        "himmelblau": [(3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)],
        "styblinski_tang": [(-2.903534, -2.903534)],
    }
    for name, points in published.items():
        f = FUNCTIONS[name]
        np.testing.assert_allclose(np.array(f.minima), np.array(points, float), atol=1e-6)
        for p in points:
            assert float(f(np.array(p))) == pytest.approx(f.min_value, abs=1e-5)
            v = torch.tensor(p, dtype=torch.float64, requires_grad=True)
            f(v).backward()
            assert v.grad.abs().max() < 1e-4
    assert FUNCTIONS["styblinski_tang"].min_value == pytest.approx(-78.332, abs=5e-4)


@pytest.mark.parametrize(
    ("name", "point", "value"),
    [
        ("rosenbrock", (0, 0), 1.0),
        ("rosenbrock", (-1, 1), 4.0),
        ("booth", (0, 0), 74.0),
        ("goldstein_price", (0, 0), 600.0),
        ("beale", (0, 0), 14.203125),
        ("beale", (1, 1), 1.5**2 + 2.25**2 + 2.625**2),  # = 14.203125 too
        ("himmelblau", (0, 0), 170.0),
        ("rastrigin", (1, 0), 1.0),  # 20 + (1 − 10·cos 2π) + (0 − 10·cos 0)
        ("rastrigin", (0.5, 0.5), 20 + 2 * (0.25 + 10)),
        ("ackley", (1, 0), 20 - 20 * math.exp(-0.2 * math.sqrt(0.5))),  # cosines sum to 2: −e + e
        ("styblinski_tang", (0, 0), 0.0),
        ("styblinski_tang", (1, 1), 0.5 * 2 * (1 - 16 + 5)),
        ("three_hump_camel", (1, 1), 2 - 1.05 + 1 / 6 + 1 + 1),
        ("saddle", (3, 2), 5.0),
        ("ill_conditioned", (1, 1), 50.5),
        ("cubic", (0,), 2.0),
        ("cubic", (-1,), -1.0),
        ("cubic", (2,), 2.0),
    ],
)
def test_hand_computed_values(name, point, value):
    f = FUNCTIONS[name]
    assert float(np.squeeze(f(np.array(point, float)))) == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert float(np.squeeze(f(list(point)))) == pytest.approx(value, rel=1e-12, abs=1e-12)


def _random_points(f: TestFunction, k: int, seed: int = 0) -> np.ndarray:
    lo, hi = np.array(f.domain, float).T
    return np.random.default_rng(seed).uniform(lo, hi, size=(k, f.dim)).T  # coordinate axis first


@pytest.mark.parametrize("name", NAMES)
def test_torch_and_numpy_agree(name):
    f = FUNCTIONS[name]
    pts = _random_points(f, 50)
    expected = f(pts)
    got = f(torch.tensor(pts, dtype=torch.float64))
    assert isinstance(got, torch.Tensor) and isinstance(expected, np.ndarray)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    got32 = f(torch.tensor(pts, dtype=torch.float32))
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_batched_shapes(name):
    f = FUNCTIONS[name]
    single = np.array(f.start)
    batch = _random_points(f, 7)
    grid = np.stack(np.meshgrid(*[np.linspace(lo, hi, 5) for lo, hi in f.domain], indexing="xy"))
    if f.dim == 2:  # coordinate axis consumed
        assert np.shape(f(single)) == ()
        assert f(batch).shape == (7,)
        assert f(grid).shape == (5, 5)
        assert f(torch.tensor(grid)).shape == (5, 5)
    else:  # the cubic is elementwise
        assert f(single).shape == (1,)
        assert f(batch).shape == (1, 7)
        assert f(np.linspace(-1, 1, 9)).shape == (9,)
    # batching gives the same numbers as evaluating point by point
    for j in range(7):
        np.testing.assert_allclose(np.squeeze(f(batch[:, j])), np.squeeze(f(batch)[..., j]), rtol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_start_inside_domain_and_not_a_minimum(name):
    f = FUNCTIONS[name]
    assert all(lo < s < hi for (lo, hi), s in zip(f.domain, f.start, strict=True))
    assert f.start not in f.minima
    value = float(np.squeeze(f(np.array(f.start))))
    if f.min_value is not None:
        assert value > f.min_value + 1e-3
    v = torch.tensor(f.start, dtype=torch.float64, requires_grad=True)
    f(v).sum().backward()
    assert v.grad.abs().max() > 1e-4  # optimizers have somewhere to go


@pytest.mark.parametrize("name", BOUNDED)
def test_no_grid_point_below_min_value(name):
    f = FUNCTIONS[name]
    axes = [np.linspace(lo, hi, 401) for lo, hi in f.domain]
    values = f(np.stack(np.meshgrid(*axes)))
    assert values.min() >= f.min_value - 1e-12


def test_unbounded_functions_go_below_their_listed_minimum():
    cubic, saddle = FUNCTIONS["cubic"], FUNCTIONS["saddle"]
    assert not cubic.bounded_below and not saddle.bounded_below
    assert cubic.minima == ((4 / 3,),) and cubic.min_value == pytest.approx(22 / 27, abs=1e-15)
    assert cubic(np.array([-2.0]))[0] < cubic.min_value  # f(−2) = −14
    # 4/3 is a local minimum: f'' = 6x − 4 > 0 there; 0 is a local maximum
    v = torch.tensor([4 / 3, 0.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(cubic(v).sum(), v, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), v)
    assert torch.allclose(g, torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert h[0] > 0 and h[1] < 0
    assert saddle.minima == () and saddle.min_value is None
    assert saddle(np.array([0.0, -100.0])) == -1e4


def test_ill_conditioned_has_condition_number_100():
    v = torch.zeros(2, dtype=torch.float64)
    hess = torch.autograd.functional.hessian(FUNCTIONS["ill_conditioned"], v)
    eig = torch.linalg.eigvalsh(hess)
    assert eig.max() / eig.min() == pytest.approx(100.0)
