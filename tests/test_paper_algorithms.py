"""The rules against a literal float64 transcription of Kingma & Ba (2014), arXiv:1412.6980 v9.

Every reference below is written in this file as the paper states it (Algorithm 1, Algorithm 2, the
"efficient" ordering at the end of §2, the RMSProp-with-momentum form of §5 and the temporal averaging of
§7.2), as a plain loop over t with NumPy elementwise operations. The rules are run on the same gradients
(random sequences, or a noisy quadratic whose gradient depends on the current θ) and must agree to 1e-12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import adamlab

RTOL = 1e-12
STEPS = 300


def assert_close(actual, expected, rtol=RTOL):
    """Max |a − e| over the array, relative to max |e| (so coordinates that cross 0 do not blow up)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err <= rtol, f"max relative difference {err:.3e} > {rtol:g}"


# --- the problems: a fixed gradient sequence, and a noisy quadratic (the gradient depends on θ) -------


class NoisyQuadratic:
    """f(θ) = ½ Σ a_i (θ_i − c_i)²; the gradient at step t has the t-th draw of N(0, σ²) noise added."""

    def __init__(self, n: int = 6, seed: int = 0, sigma: float = 0.5, steps: int = STEPS) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.uniform(0.1, 10.0, n)
        self.c = rng.normal(0.0, 2.0, n)
        self.noise = rng.normal(0.0, sigma, (steps + 1, n))
        self.theta0 = rng.normal(0.0, 1.0, n)

    def grad(self, theta: np.ndarray, t: int) -> np.ndarray:
        return self.a * (theta - self.c) + self.noise[t]


class RandomGradients:
    """A gradient sequence that ignores θ: heavy-tailed, with a different scale per coordinate."""

    def __init__(self, n: int = 6, seed: int = 1, steps: int = STEPS) -> None:
        rng = np.random.default_rng(seed)
        self.g = rng.standard_t(3, (steps + 1, n)) * np.logspace(-3, 2, n)
        self.theta0 = rng.normal(0.0, 1.0, n)

    def grad(self, theta: np.ndarray, t: int) -> np.ndarray:
        return self.g[t]


PROBLEMS = [NoisyQuadratic, RandomGradients]


# --- literal transcriptions of the paper ----------------------------------------------------------------


def paper_algorithm_1(problem, alpha=0.001, beta1=0.9, beta2=0.999, eps=1e-8, steps=STEPS):
    """Algorithm 1 (Adam). Returns θ_t for t = 1..steps."""
    theta = problem.theta0.copy()
    m = np.zeros_like(theta)  # m_0 ← 0 (initialize 1st moment vector)
    v = np.zeros_like(theta)  # v_0 ← 0 (initialize 2nd moment vector)
    t = 0  # t ← 0 (initialize timestep)
    out = []
    while t < steps:  # while θ_t not converged do
        t = t + 1
        g = problem.grad(theta, t)  # g_t ← ∇θ f_t(θ_{t−1})
        m = beta1 * m + (1 - beta1) * g  # m_t ← β1·m_{t−1} + (1 − β1)·g_t
        v = beta2 * v + (1 - beta2) * g**2  # v_t ← β2·v_{t−1} + (1 − β2)·g_t²
        m_hat = m / (1 - beta1**t)  # m̂_t ← m_t/(1 − β1^t)
        v_hat = v / (1 - beta2**t)  # v̂_t ← v_t/(1 − β2^t)
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + eps)  # θ_t ← θ_{t−1} − α·m̂_t/(√v̂_t + ε)
        out.append(theta)
    return np.array(out)


def paper_efficient_ordering(problem, alpha=0.001, beta1=0.9, beta2=0.999, eps_hat=1e-8, steps=STEPS):
    """End of §2: α_t = α·√(1 − β2^t)/(1 − β1^t) and θ_t ← θ_{t−1} − α_t·m_t/(√v_t + ε̂)."""
    theta = problem.theta0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    out = []
    for t in range(1, steps + 1):
        g = problem.grad(theta, t)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        alpha_t = alpha * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        theta = theta - alpha_t * m / (np.sqrt(v) + eps_hat)
        out.append(theta)
    return np.array(out)


def paper_rmsprop_with_momentum(problem, alpha=0.001, beta1=0.9, beta2=0.999, eps=1e-8, steps=STEPS):
    """§5: Adam without the bias-correction terms (RMSProp with momentum on the raw moments)."""
    theta = problem.theta0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    out = []
    for t in range(1, steps + 1):
        g = problem.grad(theta, t)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        theta = theta - alpha * m / (np.sqrt(v) + eps)
        out.append(theta)
    return np.array(out)


def paper_algorithm_2(problem, alpha=0.002, beta1=0.9, beta2=0.999, steps=STEPS):
    """Algorithm 2 (AdaMax)."""
    theta = problem.theta0.copy()
    m = np.zeros_like(theta)  # m_0 ← 0
    u = np.zeros_like(theta)  # u_0 ← 0 (initialize the exponentially weighted infinity norm)
    t = 0
    out = []
    while t < steps:
        t = t + 1
        g = problem.grad(theta, t)
        m = beta1 * m + (1 - beta1) * g  # m_t ← β1·m_{t−1} + (1 − β1)·g_t
        u = np.maximum(beta2 * u, np.abs(g))  # u_t ← max(β2·u_{t−1}, |g_t|)
        theta = theta - (alpha / (1 - beta1**t)) * m / u  # θ_t ← θ_{t−1} − (α/(1 − β1^t))·m_t/u_t
        out.append(theta)
    return np.array(out)


def paper_polyak_average(thetas):
    """§7.2: θ̄_t = (1/t)·Σ_{k=1..t} θ_k."""
    out = []
    for t in range(1, len(thetas) + 1):
        total = np.zeros_like(thetas[0])
        for k in range(t):
            total = total + thetas[k]
        out.append(total / t)
    return np.array(out)


def paper_ema_average(thetas, beta2=0.999):
    """§7.2: θ̄_t ← β2·θ̄_{t−1} + (1 − β2)·θ_t with θ̄_0 = 0, and the bias-corrected θ̂_t = θ̄_t/(1 − β2^t)."""
    bar = np.zeros_like(thetas[0])
    out = []
    for t in range(1, len(thetas) + 1):
        bar = beta2 * bar + (1 - beta2) * thetas[t - 1]
        out.append(bar / (1 - beta2**t))
    return np.array(out)


# --- running a rule on the same problem ---------------------------------------------------------------


def run_rule(rule, problem, steps=STEPS):
    """θ_t for t = 1..steps, and the final state, from ``rule`` on ``problem``."""
    theta = problem.theta0.copy()
    state = rule.init(theta)
    out = []
    for t in range(1, steps + 1):
        theta, state = rule.step(theta, problem.grad(theta, t), state, t)
        out.append(theta)
    return np.array(out), state


# --- the rules equal the paper ------------------------------------------------------------------------


@pytest.mark.parametrize("problem_type", PROBLEMS)
@pytest.mark.parametrize(
    "hyper",
    [
        dict(),  # the paper's defaults
        dict(alpha=0.05, beta1=0.5, beta2=0.99, eps=1e-6),
        dict(alpha=0.01, beta1=0.0, beta2=0.9, eps=0.0),
    ],
)
def test_adam_equals_algorithm_1(problem_type, hyper):
    problem = problem_type()
    expected = paper_algorithm_1(problem, **hyper)
    kw = dict(lr=hyper.get("alpha", 0.001), betas=(hyper.get("beta1", 0.9), hyper.get("beta2", 0.999)))
    kw["eps"] = hyper.get("eps", 1e-8)
    rule = adamlab.Adam(preset="paper", **kw) if hyper else adamlab.Adam(preset="paper")
    actual, state = run_rule(rule, problem)
    assert_close(actual, expected)
    assert np.max(np.abs(expected[-1] - problem.theta0)) > 10 * kw["lr"]  # the run went somewhere


def test_paper_preset_has_the_papers_defaults():
    rule = adamlab.Adam(preset="paper")
    assert (rule.lr, rule.betas, rule.eps) == (0.001, (0.9, 0.999), 1e-8)
    assert (rule.eps_hat, rule.bias_correction, rule.amsgrad, rule.weight_decay) == (False, True, False, 0.0)
    adamax = adamlab.Adamax(preset="paper")
    assert (adamax.lr, adamax.betas, adamax.eps) == (0.002, (0.9, 0.999), 0.0)
    # the rules' own default preset is the paper
    assert adamlab.Adam() == rule and adamlab.Adamax() == adamax


@pytest.mark.parametrize("problem_type", PROBLEMS)
@pytest.mark.parametrize("hyper", [dict(), dict(alpha=0.02, beta1=0.8, beta2=0.95)])
def test_adamax_equals_algorithm_2(problem_type, hyper):
    problem = problem_type(seed=3)
    expected = paper_algorithm_2(problem, **hyper)
    rule = adamlab.Adamax(
        preset="paper", lr=hyper.get("alpha", 0.002), betas=(hyper.get("beta1", 0.9), hyper.get("beta2", 0.999))
    )
    actual, state = run_rule(rule, problem)
    assert_close(actual, expected)
    # the state is the paper's m and u
    assert set(state) == {"exp_avg", "exp_inf"}


@pytest.mark.parametrize("problem_type", PROBLEMS)
@pytest.mark.parametrize("eps_hat", [1e-8, 1e-3])
def test_eps_hat_equals_the_efficient_ordering(problem_type, eps_hat):
    problem = problem_type(seed=5)
    expected = paper_efficient_ordering(problem, alpha=0.01, eps_hat=eps_hat)
    actual, _ = run_rule(adamlab.Adam(preset="paper", lr=0.01, eps=eps_hat, eps_hat=True), problem)
    assert_close(actual, expected)
    # and it is a different optimizer from Algorithm 1 with the same nominal ε (visible at ε = 1e-3)
    if eps_hat == 1e-3:
        algorithm_1 = paper_algorithm_1(problem, alpha=0.01, eps=eps_hat)
        assert np.max(np.abs(algorithm_1 - expected)) > 1e-6


def test_keras_preset_is_the_efficient_ordering_with_eps_1e_7():
    problem = NoisyQuadratic(seed=11)
    expected = paper_efficient_ordering(problem, alpha=0.01, eps_hat=1e-7)
    actual, _ = run_rule(adamlab.Adam(preset="keras", lr=0.01), problem)
    assert_close(actual, expected)


@pytest.mark.parametrize("problem_type", PROBLEMS)
def test_no_bias_correction_is_rmsprop_with_momentum(problem_type):
    problem = problem_type(seed=7)
    expected = paper_rmsprop_with_momentum(problem, alpha=0.01)
    actual, _ = run_rule(adamlab.Adam(preset="paper", lr=0.01, bias_correction=False), problem)
    assert_close(actual, expected)
    # early on the missing correction matters (the first step is (1−β1)/√(1−β2) ≈ 3.16 times lr, not lr)
    assert np.max(np.abs(expected[:10] - paper_algorithm_1(problem, alpha=0.01)[:10])) > 1e-4


@pytest.mark.parametrize("mode", ["polyak", "ema"])
def test_temporal_averaging(mode):
    problem = NoisyQuadratic(seed=13)
    inner = adamlab.Adam(preset="paper", lr=0.05)
    averaged = adamlab.Averaged(inner, mode, decay=0.999)
    theta = problem.theta0.copy()
    state = averaged.init(theta)
    thetas, avgs = [], []
    for t in range(1, STEPS + 1):
        theta, state = averaged.step(theta, problem.grad(theta, t), state, t)
        thetas.append(theta)
        avgs.append(averaged.averaged(state, t))
    thetas = np.array(thetas)
    # the averaging does not change the trajectory of the wrapped rule, which is still Algorithm 1
    assert_close(thetas, paper_algorithm_1(problem, alpha=0.05))
    expected = paper_polyak_average(thetas) if mode == "polyak" else paper_ema_average(thetas, beta2=0.999)
    assert_close(np.array(avgs), expected)
    # the first average is θ_1 itself in both modes (the EMA's bias correction makes it so)
    assert_close(avgs[0], thetas[0], rtol=1e-15)
    # and the average is not the iterate
    assert np.max(np.abs(avgs[-1] - thetas[-1])) > 1e-3


def test_ema_without_bias_correction_would_be_wrong():
    """θ̄_t alone (no /(1−β2^t)) is shrunk towards 0; the rule must return the corrected θ̂_t."""
    thetas = np.ones((5, 3))
    averaged = adamlab.Averaged(adamlab.SGD(lr=0.0), "ema", decay=0.9)
    theta, state = np.ones(3), averaged.init(np.ones(3))
    for t in range(1, 6):
        theta, state = averaged.step(theta, np.zeros(3), state, t)
        np.testing.assert_allclose(averaged.averaged(state, t), thetas[t - 1], rtol=1e-15)
    np.testing.assert_allclose(state["param_avg"], 1 - 0.9**5, rtol=1e-15)
    with pytest.raises(ValueError, match="t >= 1"):
        averaged.averaged(state, 0)


# --- facts stated in the paper --------------------------------------------------------------------------


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.0, 0.5), (0.99, 0.9999)])
def test_first_step_has_size_lr(betas):
    """At t = 1, m̂ = g and v̂ = g², so with ε = 0 the step is α·sign(g) in every coordinate."""
    rng = np.random.default_rng(17)
    g = rng.normal(size=50) * 10.0 ** rng.uniform(-20, 20, 50)
    theta = rng.normal(size=50)
    rule = adamlab.Adam(preset="paper", lr=0.003, betas=betas, eps=0.0)
    new, _ = rule.step(theta, g, rule.init(theta), 1)
    np.testing.assert_allclose(theta - new, 0.003 * np.sign(g), rtol=1e-12, atol=0)


def _paper_bound(alpha, beta1, beta2):
    """§2.1: |Δ_t| ≤ α·(1−β1)/√(1−β2) if (1−β1) > √(1−β2), else |Δ_t| ≤ α."""
    return alpha * (1 - beta1) / math.sqrt(1 - beta2) if (1 - beta1) > math.sqrt(1 - beta2) else alpha


def _worst_case_bound(alpha, beta1, beta2, t):
    """A bound for ANY gradient sequence (β1² ≤ β2), by Cauchy–Schwarz on m_t = (1−β1)·Σ β1^(t−i)·g_i:

    |m_t| ≤ (1−β1)·√S_t·√(v_t/(1−β2)) with S_t = Σ_{k<t} (β1²/β2)^k, so
    |Δ_t| ≤ α·(1−β1)/√(1−β2)·√S_t·√(1−β2^t)/(1−β1^t). It is 1·α at t = 1 and exactly α when β1 = β2.
    """
    q = beta1**2 / beta2
    s_t = t if q == 1 else (1 - q**t) / (1 - q)
    return alpha * (1 - beta1) / math.sqrt(1 - beta2) * math.sqrt(s_t) * math.sqrt(1 - beta2**t) / (1 - beta1**t)


def _step_sizes(betas, gradients, alpha=0.01):
    """max_i |Δ_t,i| for each step t of Adam with ε = 0 on the gradient sequence (steps × coordinates)."""
    rule = adamlab.Adam(preset="paper", lr=alpha, betas=betas, eps=0.0)
    theta = np.zeros(gradients.shape[1])
    state = rule.init(theta)
    sizes = []
    for t, g in enumerate(gradients, start=1):
        new, state = rule.step(theta, g, state, t)
        sizes.append(float(np.max(np.abs(new - theta))))
        theta = new
    return np.array(sizes)


def _random_sequences(seed, steps=300, n=40):
    """Stationary random gradient sequences: Gaussian (zero and non-zero mean), heavy-tailed, sparse."""
    rng = np.random.default_rng(seed)
    sparse = np.zeros((steps, n))
    hits = rng.random((steps, n)) < 0.02
    sparse[hits] = rng.normal(size=hits.sum()) * 1e3
    return {
        "gaussian": rng.normal(size=(steps, n)),
        "gaussian_with_mean": rng.normal(size=(steps, n)) + 1.0,
        "cauchy": rng.standard_cauchy(size=(steps, n)),
        "sparse": sparse,
        "scales": rng.normal(size=(steps, n)) * 10.0 ** rng.uniform(-4, 4, (steps, n)),
    }


# (1−β1) > √(1−β2): the paper's first case; (1−β1) ≤ √(1−β2): its "≤ α" case
CASE_ONE = [(0.9, 0.999), (0.5, 0.999), (0.0, 0.9), (0.0, 0.999)]
CASE_TWO = [(0.9, 0.9), (0.5, 0.5), (0.99, 0.99)]  # β1 = β2: there |Δ| ≤ α holds for every sequence


@pytest.mark.parametrize("betas", CASE_ONE + CASE_TWO + [(0.9, 0.99), (0.8, 0.999)])
def test_step_size_worst_case_bound(betas):
    """With ε = 0 every step obeys the Cauchy–Schwarz bound above, for random and adversarial sequences."""
    alpha = 0.01
    sequences = dict(_random_sequences(seed=19))
    sequences["growing"] = np.outer(1.1 ** np.arange(300), np.ones(3))
    quiet_then_spikes = np.zeros((400, 3))
    quiet_then_spikes[-3:] = 1.0
    sequences["quiet_then_spikes"] = quiet_then_spikes
    bounds = np.array([_worst_case_bound(alpha, *betas, t) for t in range(1, 401)])
    for name, gs in sequences.items():
        sizes = _step_sizes(betas, gs, alpha)
        excess = sizes / bounds[: len(sizes)]
        assert excess.max() <= 1 + 1e-12, f"{name}: a step is {excess.max()} times the worst-case bound"
    # at t = 1 the bound is α, and the first step attains it
    assert _step_sizes(betas, np.ones((1, 1)), alpha)[0] == pytest.approx(alpha, rel=1e-14)


@pytest.mark.parametrize("betas", CASE_ONE + CASE_TWO)
def test_step_size_paper_bound(betas):
    """§2.1 on stationary random sequences; the first case is attained in "the most severe case of sparsity"."""
    alpha = 0.01
    bound = _paper_bound(alpha, *betas)
    for name, gs in _random_sequences(seed=29).items():
        largest = _step_sizes(betas, gs, alpha).max()
        assert largest <= bound * (1 + 1e-12), f"{name}: |Δ| = {largest} exceeds the §2.1 bound {bound}"
    # a gradient that was zero (here 1e-12) at every step except the current one
    spike = np.full((3000, 2), 1e-12)
    spike[-1] = [3.0, -1e5]
    last = _step_sizes(betas, spike, alpha)[-1]
    assert last <= bound * (1 + 1e-12)
    if betas in CASE_ONE:
        assert last >= 0.95 * bound  # the bound is attained up to the bias-correction factor √(1−β2^t)
    # and a constant gradient gives m̂/√v̂ = 1 exactly: |Δ| = α at every step
    np.testing.assert_allclose(_step_sizes(betas, np.full((50, 2), -0.3), alpha), alpha, rtol=1e-12)


def test_step_size_paper_bound_is_not_a_worst_case():
    """The §2.1 bounds are heuristic: sequences the paper does not consider exceed them (and the worst-case
    bound above still holds, see test_step_size_worst_case_bound)."""
    alpha = 0.01
    # gradients growing by 10% a step: m keeps up with v, and m̂/√v̂ exceeds (1−β1)/√(1−β2) = 3.16
    growing = np.outer(1.1 ** np.arange(300), np.ones(2))
    assert _step_sizes((0.9, 0.999), growing, alpha).max() > 1.1 * _paper_bound(alpha, 0.9, 0.999)
    # (1−β1) = √(1−β2), where the paper says |Δ| < α: two equal gradients after a long quiet stretch
    # give (β1 + 1)/√(β2 + 1) = 1.347 times α
    quiet = np.zeros((2000, 1))
    quiet[-2:] = 1.0
    assert _step_sizes((0.9, 0.99), quiet, alpha)[-1] == pytest.approx(alpha * 1.9 / math.sqrt(1.99), rel=1e-3)


@pytest.mark.parametrize("scale", [2.0**-30, 2.0**40, 1e-7, 3e5])
@pytest.mark.parametrize("rule_name", ["adam", "adamax", "keras_adam"])
def test_invariant_to_gradient_scale(scale, rule_name):
    """§2.1: with ε = 0, multiplying the gradient by c > 0 leaves the trajectory unchanged."""
    rule = {
        "adam": adamlab.Adam(preset="paper", lr=0.01, eps=0.0),
        "adamax": adamlab.Adamax(preset="paper", lr=0.01),
        "keras_adam": adamlab.Adam(preset="keras", lr=0.01, eps=0.0),
    }[rule_name]
    problem = NoisyQuadratic(seed=23)

    class Scaled:
        theta0 = problem.theta0

        @staticmethod
        def grad(theta, t):
            return scale * problem.grad(theta, t)

    base, _ = run_rule(rule, problem)
    scaled, _ = run_rule(rule, Scaled)
    if math.log2(scale).is_integer():  # powers of two scale m, v, √v exactly: bitwise equal
        np.testing.assert_array_equal(scaled, base)
    else:
        assert_close(scaled, base)
    # with ε > 0 the invariance is broken for tiny gradients: the test can tell the difference
    if scale < 1e-6 and rule_name == "adam":
        with_eps, _ = run_rule(adamlab.Adam(preset="paper", lr=0.01, eps=1e-8), Scaled)
        assert np.max(np.abs(with_eps - base)) > 1e-4


@pytest.mark.parametrize("t", [1, 2, 10, 100, 1000, 10_000])
def test_eps_hat_equals_algorithm_1_with_rescaled_eps(t):
    """Keras form with ε̂ equals Algorithm 1 with ε_t = ε̂/√(1−β2^t), at any step t."""
    rng = np.random.default_rng(t)
    beta2, eps_hat = 0.999, 1e-3  # β1 = 0.9, the presets' default
    theta = rng.normal(size=20)
    g = rng.normal(size=20) * 1e-2
    state = {"exp_avg": rng.normal(size=20) * 1e-2, "exp_avg_sq": rng.uniform(0, 1e-4, 20)}
    keras = adamlab.Adam(preset="keras", lr=0.01, eps=eps_hat, decoupled_weight_decay=False)
    eps_t = eps_hat / math.sqrt(1 - beta2**t)
    paper = adamlab.Adam(preset="paper", lr=0.01, eps=eps_t)
    a, sa = keras.step(theta, g, state, t)
    b, sb = paper.step(theta, g, state, t)
    assert_close(theta - a, theta - b)  # compare the steps themselves, not θ (which hides them)
    for key in ("exp_avg", "exp_avg_sq"):  # the same moments, each preset rounding its EMA its framework's way
        np.testing.assert_allclose(sa[key], sb[key], rtol=0, atol=1e-15 * np.max(np.abs(sb[key])))
    # the same nominal ε is a different step (the factor √(1−β2^t) is 31.6 at t = 1)
    c, _ = adamlab.Adam(preset="paper", lr=0.01, eps=eps_hat).step(theta, g, state, t)
    if t <= 1000:
        assert np.max(np.abs((theta - c) - (theta - a))) / np.max(np.abs(theta - a)) > 1e-3


@pytest.mark.parametrize("doc", ["presets.md", "why-adam-differs.md"])
def test_eps_factor_values_in_docs(doc):
    """The docs' values of the factor 1/√(1−β2^t) (β2 = 0.999), read from the docs, are the computed ones."""
    import re
    from pathlib import Path

    text = " ".join((Path(__file__).parents[1] / "docs" / doc).read_text(encoding="utf-8").split())
    match = re.search(r"factor (?:1/√\(1−β2\^t\) )?is ((?:[\d.]+ at t = \d+(?:,| and|, and)? ?)+)", text)
    assert match, f"{doc} no longer states the factor"
    pairs = re.findall(r"([\d.]+) at t = (\d+)", match.group(1))
    assert len(pairs) == 4
    for value, t in pairs:
        exact = 1 / math.sqrt(1 - 0.999 ** int(t))
        assert abs(float(value) - exact) <= 0.5 * 10 ** -(len(value.split(".")[1]) if "." in value else 0), (t, value)
