"""adamlab.minimize: the article's example, history semantics, gradients, dtypes, stops, errors, plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import adamlab


def cubic(x):
    return x**3 - 2 * x**2 + 2


def cubic_grad(x):
    return 3 * x**2 - 4 * x


def rosenbrock(v):
    return (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2


def rosenbrock_grad(v):
    x, y = v
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


ARTICLE = dict(optimizer=adamlab.Adam(lr=0.05, eps=1e-7, preset="keras"), steps=100)


def test_the_articles_example():
    """Keras Adam, lr 0.05, ε̂ 1e-7, x0 = 0.001, 100 steps, float32: x ≈ 1.33255 (4/3 = 1.33333), f ≈ 22/27."""
    res = adamlab.minimize(cubic, x0=0.001, dtype="float32", **ARTICLE)
    assert res.status == "max_steps" and res.success and res.nit == 100
    assert isinstance(res.x, float) and isinstance(res.fun, float)
    assert abs(res.x - 4 / 3) < 1e-3  # measured: 7.8e-4 (Adam is still oscillating in towards the minimum)
    assert abs(res.fun - 22 / 27) < 1e-5  # measured: 1.2e-6 (f is flat at a minimum)
    assert res.x == pytest.approx(1.33255, abs=1e-5)
    # float64 gives the same path to float32 precision
    res64 = adamlab.minimize(cubic, x0=0.001, **ARTICLE)
    assert res64.x == pytest.approx(res.x, abs=1e-5)
    # the keras ε̂ form is a different optimizer from Algorithm 1 with the same nominal ε: the path differs
    paper = adamlab.minimize(cubic, x0=0.001, optimizer=adamlab.Adam(lr=0.05, eps=1e-7), steps=100)
    assert np.max(np.abs(paper.history.x - res64.history.x)) > 1e-6


def manual_run(rule, grad, x0, steps):
    """x after each step, the gradient each step used, and the state after each step, by calling the rule."""
    x = np.asarray(x0, dtype=float)
    state = rule.init(x)
    xs, gs, states = [], [], []
    for t in range(1, steps + 1):
        g = grad(x)
        x, state = rule.step(x, g, state, t)
        xs.append(x)
        gs.append(g)
        states.append(state)
    return np.array(xs), np.array(gs), states


def test_history_semantics():
    rule = adamlab.Adam(lr=0.05, eps=1e-7, preset="keras")
    res = adamlab.minimize(cubic, x0=0.001, optimizer=rule, steps=50)
    h = res.history
    assert h.x.shape == (50,) and h.fun.shape == (50,) and h.grad.shape == (50,)
    assert h.state["exp_avg"].shape == (50,) and h.state["exp_avg_sq"].shape == (50,)
    assert h.x0 == 0.001 and h.fun0 == pytest.approx(cubic(0.001), rel=1e-15)
    xs, gs, states = manual_run(rule, cubic_grad, 0.001, 50)
    np.testing.assert_allclose(h.x, xs, rtol=1e-13)  # history.x[i]: x after step i + 1
    np.testing.assert_allclose(h.fun, cubic(h.x), rtol=1e-13)  # history.fun[i] = f(history.x[i])
    np.testing.assert_allclose(h.grad, gs, rtol=1e-13)  # the gradient at the point before step i + 1
    assert h.grad[0] == pytest.approx(cubic_grad(0.001), rel=1e-14)
    np.testing.assert_allclose(h.grad[1:], cubic_grad(h.x[:-1]), rtol=1e-13)
    np.testing.assert_allclose(h.state["exp_avg"], [s["exp_avg"] for s in states], rtol=1e-13)
    np.testing.assert_allclose(h.state["exp_avg_sq"], [s["exp_avg_sq"] for s in states], rtol=1e-13)
    assert res.x == h.x[-1] and res.fun == h.fun[-1]
    np.testing.assert_array_equal(h.path(), np.concatenate([[0.001], h.x]))


def test_vector_x0_rosenbrock():
    """Adam (lr 0.02) from the standard start (−1.2, 1): after 3000 steps within 2e-3 of (1, 1), and the path is
    the rule's."""
    rule = adamlab.Adam(lr=0.02)
    res = adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], optimizer=rule, steps=3000)
    assert isinstance(res.x, np.ndarray) and res.x.shape == (2,) and res.x.dtype == np.float64
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=2e-3)  # measured: (0.99947, 0.99893)
    assert res.fun < 1e-6  # measured: 2.8e-7
    assert res.history.x.shape == (3000, 2) and res.history.grad.shape == (3000, 2)
    assert res.history.state["exp_avg"].shape == (3000, 2)
    xs, gs, _ = manual_run(rule, rosenbrock_grad, [-1.2, 1.0], 200)
    np.testing.assert_allclose(res.history.x[:200], xs, rtol=1e-12)
    np.testing.assert_allclose(res.history.grad[:200], gs, rtol=1e-12)
    # 1000 steps are not enough: the valley is long
    short = adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], optimizer=rule, steps=1000)
    assert np.max(np.abs(short.x - 1)) > 1e-2


def test_user_supplied_gradient_uses_numpy():
    seen = []

    def f(v):
        seen.append(type(v))
        return rosenbrock(v)

    rule = adamlab.Adam(lr=0.02)
    res = adamlab.minimize(f, x0=[-1.2, 1.0], optimizer=rule, steps=300, grad=rosenbrock_grad)
    assert set(seen) == {np.ndarray}
    autograd = adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], optimizer=rule, steps=300)
    np.testing.assert_allclose(res.history.x, autograd.history.x, rtol=1e-12)
    np.testing.assert_allclose(res.history.fun, autograd.history.fun, rtol=1e-12)
    np.testing.assert_allclose(res.history.grad, autograd.history.grad, rtol=1e-12)
    # a scalar problem with a gradient function
    res1 = adamlab.minimize(cubic, x0=0.001, grad=cubic_grad, **ARTICLE)
    np.testing.assert_allclose(res1.history.x, adamlab.minimize(cubic, x0=0.001, **ARTICLE).history.x, rtol=1e-12)
    # a gradient of the wrong shape is an error
    with pytest.raises(ValueError, match=r"^grad must return an array of x's shape \(2,\)"):
        adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], grad=lambda v: np.zeros(3), steps=2)


def test_autograd_receives_torch_tensors():
    seen = []

    def f(x):
        seen.append((type(x), x.dtype))
        return torch.sin(x) + x**2

    adamlab.minimize(f, x0=1.0, steps=3, dtype="float32")
    assert set(seen) == {(torch.Tensor, torch.float32)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("use_grad", [False, True])
def test_dtypes(dtype, use_grad):
    kw = dict(grad=rosenbrock_grad) if use_grad else {}
    res = adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], optimizer="adam", steps=20, dtype=dtype, **kw)
    assert res.x.dtype == np.dtype(dtype)
    assert res.history.x.dtype == np.dtype(dtype) and res.history.grad.dtype == np.dtype(dtype)
    assert res.history.x0.dtype == np.dtype(dtype)
    assert res.history.state["exp_avg"].dtype == np.dtype(dtype)
    assert isinstance(res.fun, float)
    scalar = adamlab.minimize(cubic, x0=0.5, steps=5, dtype=dtype, **({"grad": cubic_grad} if use_grad else {}))
    assert isinstance(scalar.x, float) and scalar.history.x.dtype == np.dtype(dtype)
    if dtype == "float32":  # float32 really is float32: it differs from the float64 path in the last digits
        res64 = adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], optimizer="adam", steps=20, **kw)
        assert not np.array_equal(res.history.x.astype(np.float64), res64.history.x)
        np.testing.assert_allclose(res.history.x, res64.history.x, rtol=1e-5)


def test_nonfinite_log_walking_below_zero():
    """log(x) decreases as x → 0+: Adam steps x below 0 where log is NaN."""
    res = adamlab.minimize(lambda x: torch.log(x), x0=1.0, optimizer=adamlab.Adam(lr=0.1), steps=100)
    assert res.status == "nonfinite" and not res.success
    assert res.nit == 10  # x after the 11th step is negative
    assert res.history.x.shape == (10,) and np.all(res.history.x > 0) and np.all(np.isfinite(res.history.fun))
    assert res.x == res.history.x[-1] and res.fun == pytest.approx(np.log(res.x), rel=1e-12)
    assert res.message == "stopped: f(x) = nan after step 11; the history keeps the 10 finite steps before it"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nonfinite_cubic_diverging(dtype):
    """SGD with lr 1 from x0 = −0.5 on the cubic: x → −∞ faster and faster until f overflows to −inf."""
    res = adamlab.minimize(cubic, x0=-0.5, optimizer=adamlab.SGD(lr=1.0), steps=100, dtype=dtype)
    assert res.status == "nonfinite"
    assert 0 < res.nit < 20 and len(res.history.x) == len(res.history.fun) == res.nit
    assert np.all(np.isfinite(res.history.x)) and np.all(np.isfinite(res.history.fun))
    assert np.all(np.diff(res.history.x) < 0)
    assert "f(x) = -inf" in res.message and f"after step {res.nit + 1}" in res.message


def test_nonfinite_at_x0():
    res = adamlab.minimize(lambda x: torch.log(x), x0=-1.0, steps=10)
    assert res.status == "nonfinite" and res.nit == 0 and res.history.x.shape == (0,)
    assert res.message == "stopped: f(x) = nan at x0"
    res = adamlab.minimize(lambda x: torch.sqrt(x), x0=0.0, steps=10)  # f finite, gradient inf
    assert res.status == "nonfinite" and "gradient is not finite" in res.message


def test_gtol_convergence():
    res = adamlab.minimize(lambda x: (x - 3) ** 2, x0=0.0, optimizer=adamlab.SGD(lr=0.1), steps=1000, gtol=1e-6)
    assert res.status == "converged" and res.success
    assert 10 < res.nit < 1000
    assert abs(2 * (res.x - 3)) <= 1e-6  # the gradient at the final x
    assert abs(res.history.grad[-1]) > 1e-6  # it stopped the first time: the previous gradient was above
    assert "gtol" in res.message and str(res.nit) in res.message
    # gtol already met at x0: zero steps
    res0 = adamlab.minimize(lambda x: (x - 3) ** 2, x0=3.0, steps=10, gtol=0.0)
    assert res0.status == "converged" and res0.nit == 0 and res0.x == 3.0


def test_callback_stop():
    calls = []

    def callback(i, x, f):
        calls.append((i, float(x), f))
        return i == 5

    res = adamlab.minimize(cubic, x0=0.001, callback=callback, **ARTICLE)
    assert res.status == "callback" and res.nit == 5 and not res.success
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([c[1] for c in calls], res.history.x, rtol=0)
    np.testing.assert_allclose([c[2] for c in calls], res.history.fun, rtol=0)
    # a callback returning None never stops the run
    assert adamlab.minimize(cubic, x0=0.001, callback=lambda *a: None, **ARTICLE).nit == 100


def test_optimizer_by_name_and_averaged():
    res = adamlab.minimize(cubic, x0=0.5, optimizer="nesterov", steps=10)
    assert res.optimizer == adamlab.SGD(momentum=0.9, nesterov=True)
    assert adamlab.minimize(cubic, x0=0.5, steps=1).optimizer == adamlab.Adam()
    avg = adamlab.Averaged(adamlab.Adam(lr=0.1), "polyak")
    res = adamlab.minimize(cubic, x0=0.5, optimizer=avg, steps=10)
    assert "param_avg" in res.history.state
    np.testing.assert_allclose(res.history.state["param_avg"][-1], res.history.x.mean(), rtol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(steps=0), r"^steps must be an integer >= 1; got 0"),
        (dict(steps=-5), r"^steps must be an integer >= 1"),
        (dict(steps=2.5), r"^steps must be an integer >= 1; got 2.5"),
        (dict(steps=True), r"^steps must be an integer >= 1; got True"),
        (dict(dtype="float16"), r"^dtype must be one of float32, float64; got 'float16'"),
        (dict(x0=[[1.0, 2.0]]), r"^x0 must be a number or a non-empty 1-D list of numbers; got shape \(1, 2\)"),
        (dict(x0=[]), r"^x0 must be a number or a non-empty 1-D list"),
        (dict(x0=float("nan")), r"^x0 must be finite"),
        (dict(x0=[1.0, float("inf")]), r"^x0 must be finite"),
        (dict(optimizer="adamm"), r"^optimizer must be one of adam, adamw, adamax"),
        (dict(optimizer=42), r"^optimizer must be a rule such as adamlab.Adam"),
        (dict(gtol=-1.0), r"^gtol must be a finite number >= 0"),
        (dict(gtol=float("nan")), r"^gtol must be a finite number >= 0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    args = {"fun": cubic, "x0": 0.5, "steps": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        adamlab.minimize(**args)


def test_fun_must_return_a_scalar():
    with pytest.raises(ValueError, match=r"^fun must return a scalar; it returned shape \(2,\)"):
        adamlab.minimize(lambda v: v * 2, x0=[1.0, 2.0], steps=2)


def test_constant_function_has_zero_gradient():
    res = adamlab.minimize(lambda x: x * 0 + 5.0, x0=1.0, steps=3)
    assert res.x == 1.0 and res.fun == 5.0 and np.all(res.history.grad == 0)
    res = adamlab.minimize(lambda x: 5.0, x0=1.0, steps=3)
    assert res.x == 1.0 and res.fun == 5.0


def test_to_dict():
    res = adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], steps=5)
    d = res.to_dict()
    assert set(d) == {"x", "fun", "nit", "status", "message", "history"}
    assert d["x"] == res.x.tolist() and d["nit"] == 5 and d["history"]["x"] == res.history.x.tolist()
    assert "history" not in res.to_dict(history=False)


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_1d_and_2d(tmp_path):
    res1 = adamlab.minimize(cubic, x0=0.001, steps=20, optimizer=adamlab.Adam(lr=0.05))
    out1 = res1.plot(tmp_path / "cubic.png")
    assert out1.exists() and out1.stat().st_size > 1000 and _is_png(out1)
    res2 = adamlab.minimize(rosenbrock, x0=[-1.2, 1.0], steps=20)
    out2 = res2.plot(str(tmp_path / "rosen.png"))
    assert _is_png(out2)
    loss = res2.plot_loss(tmp_path / "loss.png")
    assert _is_png(loss)
    res3 = adamlab.minimize(lambda v: (v**2).sum(), x0=[1.0, 2.0, 3.0], steps=2)
    with pytest.raises(ValueError, match="plot draws 1-D and 2-D problems; this one has 3 coordinates"):
        res3.plot(tmp_path / "three.png")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(x0="abc"), ValueError, r"^x0 must be a number or a non-empty 1-D list of numbers \(real numbers only\)"),
        (dict(x0=1j), ValueError, r"^x0 must be a number .* \(real numbers only\); got 1j"),
        (dict(x0=[1j, 2.0]), ValueError, r"^x0 must be a number .* \(real numbers only\)"),
        (dict(x0=[1.0, [2.0, 3.0]]), ValueError, r"^x0 must be a number or a non-empty 1-D list of numbers; got"),
        (dict(gtol="a"), ValueError, r"^gtol must be a finite number >= 0 or None; got 'a'"),
        (dict(fun=lambda x: "abc"), ValueError, r"^fun must return real numbers; it returned str 'abc'"),
        (dict(fun=lambda x: None), ValueError, r"^fun must return real numbers; it returned NoneType None"),
        (dict(fun=lambda x: "a", grad=cubic_grad), ValueError, r"^fun must return real numbers; it returned str"),
        (dict(fun=lambda x: None, grad=cubic_grad), ValueError, r"^fun must return real numbers"),
        (dict(grad=lambda x: "a"), ValueError, r"^grad must return real numbers; it returned str 'a'"),
        (dict(fun=3), TypeError, r"^fun must be a function; got 3"),
        (dict(fun=None), TypeError, r"^fun must be a function; got None"),
        (dict(grad=3), TypeError, r"^grad must be a function; got 3"),
        (dict(callback="stop"), TypeError, r"^callback must be a function; got 'stop'"),
    ],
)
def test_invalid_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        adamlab.minimize(**{"fun": cubic, "x0": 0.5, "steps": 3, **kwargs})


def test_overflowing_x_is_reported_as_such():
    """tanh stays finite (f = -1, g = 0) where x overflowed to -inf: the message must say x, not the gradient.

    Adam's first steps have size lr (m̂/√v̂ = 1): x1 = −lr is finite, x2 = −2·lr overflows."""
    res = adamlab.minimize(torch.tanh, x0=0.0, optimizer=adamlab.Adam(lr=1.5e308), steps=5)
    assert res.status == "nonfinite" and res.nit == 1 and res.x == pytest.approx(-1.5e308, rel=1e-6)
    assert res.message.startswith("stopped: x is not finite (the step overflowed) after step 2;")
