"""Inside Adam: m̂, v̂, the effective step, the §2.1 bound, and the PyTorch step summary."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import adamlab
import adamlab.torch
from adamlab.lab.diagnostics import (
    adam_diagnostics,
    paper_step_bound,
    plot_adam_diagnostics,
    worst_case_step_ratio,
)
from adamlab.lab.functions import get_function
from adamlab.lab.minimize import minimize
from adamlab.lab.step_summary import adam_step_summary, tensorboard_writer, watch


def test_paper_bound_cases() -> None:
    assert paper_step_bound(0.9, 0.999) == pytest.approx(0.1 / math.sqrt(0.001))  # (1−β1) > √(1−β2)
    assert paper_step_bound(0.9, 0.9) == 1.0  # (1−β1) = 0.1 < √0.1


def test_effective_step_from_state_equals_the_step_taken() -> None:
    f = get_function("rosenbrock")
    res = minimize(f, f.start, adamlab.Adam(lr=0.1), 300)
    d = adam_diagnostics(res)
    assert d.m_hat.shape == d.v_hat.shape == d.effective_step.shape == (300, 2)
    np.testing.assert_allclose(d.effective_step, d.measured_step, rtol=0, atol=1e-13)
    # m̂ and v̂ are the bias-corrected state: step 1 has m̂ = g1 and v̂ = g1²
    g1 = res.history.grad[0]
    np.testing.assert_allclose(d.m_hat[0], g1, rtol=1e-12)
    np.testing.assert_allclose(d.v_hat[0], g1**2, rtol=1e-12)
    assert d.ratio[0] == pytest.approx([1.0, 1.0], abs=1e-8)  # the first step has size α in every coordinate
    check = d.check()
    assert check["max_step_mismatch"] < 1e-13 and check["within_worst_case"]
    assert check["share_within_paper_bound"] == 1.0


def test_keras_epsilon_form_in_1d() -> None:
    """The article's example (ε̂ before bias correction) in 1-D: the formula still reproduces every step."""
    res = minimize(get_function("cubic"), 0.001, adamlab.Adam(lr=0.05, eps=1e-7, preset="keras"), 100)
    d = adam_diagnostics(res)
    assert d.effective_step.shape == (100, 1)
    assert d.check()["max_step_mismatch"] < 1e-13


def test_worst_case_is_attained_and_exceeds_the_paper_bound() -> None:
    """g_i ∝ (β2/β1)^i attains √(Σa²/b): after 300 steps |Δ| = 3.70α > the paper's 3.16α."""
    b1, b2, steps = 0.9, 0.999, 300
    g = (b2 / b1) ** np.arange(1, steps + 1)
    res = minimize(lambda x: 0 * x[0], [0.0], adamlab.Adam(lr=1.0, eps=0.0), steps, grad=_Sequence(g))
    d = adam_diagnostics(res)
    assert d.ratio[-1, 0] == pytest.approx(worst_case_step_ratio(b1, b2, steps), rel=1e-9)
    assert d.ratio[-1, 0] > paper_step_bound(b1, b2) and d.share_within(paper_step_bound(b1, b2)) < 1
    assert worst_case_step_ratio(b1, b2, 1) == pytest.approx(1.0)
    limit = math.sqrt(0.01 / (0.001 * (1 - 0.81 / 0.999)))
    assert worst_case_step_ratio(b1, b2, 100_000) == pytest.approx(limit, rel=1e-9)


def test_random_gradients_stay_within_the_worst_case() -> None:
    rng = np.random.default_rng(0)
    g = rng.standard_normal((200, 3)) * rng.uniform(0.01, 100, (200, 1))
    res = minimize(lambda x: 0 * x[0], np.zeros(3), adamlab.Adam(lr=0.3, eps=0.0), 200, grad=_Sequence(g))
    assert adam_diagnostics(res).check()["within_worst_case"]


class _Sequence:
    """A gradient oracle that returns the next row of a fixed sequence at each call (after x0's)."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows, self.i = np.asarray(rows, dtype=float), -1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.i += 1
        return self.rows[min(self.i, len(self.rows) - 1)].reshape(x.shape)


def test_non_adam_rule_is_refused_and_plot_is_written(tmp_path: Path) -> None:
    f = get_function("booth")
    with pytest.raises(ValueError, match="need an Adam rule; this run used SGD"):
        adam_diagnostics(minimize(f, f.start, adamlab.SGD(lr=0.01), 5))
    d = adam_diagnostics(minimize(f, f.start, adamlab.Adam(lr=0.5), 50))
    out = plot_adam_diagnostics(d, tmp_path / "inside.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def _train(opt: torch.optim.Optimizer, model: torch.nn.Module, steps: int) -> None:
    x = torch.linspace(-1, 1, 64).reshape(16, 4)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - x[:, :1]) ** 2).mean().backward()
        opt.step()


def test_step_summary_after_one_step_is_at_the_bound() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    _train(opt, model, 1)
    s = adam_step_summary(opt)
    g = s.groups[0]
    assert s.step == 1 and g.numel == 15 and g.lr == 0.01
    assert g.at_bound == 1.0 and g.above_alpha == 0.0 and g.ratio_quantiles[0.5] == pytest.approx(1.0, abs=1e-5)
    after = [p.detach() for p in model.parameters()]
    step_norm = math.sqrt(sum(float(((p - b) ** 2).sum()) for p, b in zip(after, before, strict=True)))
    param_norm = math.sqrt(sum(float((p**2).sum()) for p in after))
    assert g.update_to_param == pytest.approx(step_norm / param_norm, rel=1e-4)


def test_step_summary_matches_torch_optim() -> None:
    summaries = []
    for cls in (adamlab.torch.Adam, torch.optim.Adam):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        opt = cls([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.1}], lr=0.01)
        _train(opt, model, 20)
        summaries.append(adam_step_summary(opt))
    ours, theirs = summaries
    assert [g.index for g in ours.groups] == [0, 1] and ours.step == theirs.step == 20
    for a, b in zip(ours.groups, theirs.groups, strict=True):
        assert a.update_to_param == pytest.approx(b.update_to_param, rel=1e-4)
        assert a.ratio_quantiles[0.9] == pytest.approx(b.ratio_quantiles[0.9], rel=1e-4)
    assert "group 1" in ours.format() and "adam/group1/at_bound" in ours.scalars()


def test_watch_every_n_steps_and_tensorboard_is_optional(tmp_path: Path) -> None:
    model = torch.nn.Linear(4, 1)
    opt = adamlab.torch.Adam(model.parameters(), lr=0.01)
    lines: list[str] = []
    try:
        import tensorboard  # noqa: F401

        has_tensorboard = True
    except ImportError:
        has_tensorboard = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w = watch(opt, every=3, log=lines.append, logdir=str(tmp_path / "tb"))
    _train(opt, model, 7)
    w.remove()
    _train(opt, model, 3)  # removed: no more summaries
    assert [s.step for s in w.summaries] == [3, 6] and len(lines) == 2 and lines[0].startswith("step 3 group 0")
    if has_tensorboard:
        assert w.writer is not None and any((tmp_path / "tb").iterdir())
    else:
        assert w.writer is None
        assert any("tensorboard" in str(c.message) and "pip install tensorboard" in str(c.message) for c in caught)
        with pytest.warns(RuntimeWarning, match="TensorBoard logging skipped"):
            assert tensorboard_writer(str(tmp_path)) is None
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        watch(opt, every=0)


@pytest.mark.parametrize(
    "options",
    [
        {"preset": "keras"},  # the ε̂ form
        {"bias_correction": False},
        {"amsgrad": True, "amsgrad_max_of": "v_hat"},
        {"amsgrad": True, "eps": 1e-3, "eps_root": 1e-6},
        {},
    ],
    ids=["eps_hat", "no_bias_correction", "amsgrad_v_hat", "amsgrad_eps_root", "torch"],
)
def test_step_summary_reports_the_step_the_rule_took(options):
    """The summary reads Adam's step through the rule (effective_step), so its largest |Δ|/α is the step the
    parameters actually took, in each convention (step_summary used to ignore ε̂, bias_correction=False and
    amsgrad_max_of="v_hat")."""
    import adamlab.torch
    from adamlab.lab.step_summary import adam_step_summary

    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(50, dtype=torch.float64))
    opt = adamlab.torch.Adam([p], lr=0.01, **options)
    for _ in range(6):
        before = p.detach().clone()
        p.grad = torch.sin(3 * p.detach()) + 0.1 * torch.randn(50, dtype=torch.float64)
        opt.step()
    taken = ((before - p.detach()).abs() / 0.01).max().item()
    assert adam_step_summary(opt).groups[0].ratio_quantiles[1.0] == pytest.approx(taken, rel=1e-12)
