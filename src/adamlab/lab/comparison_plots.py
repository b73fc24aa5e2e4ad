"""Pictures of a :class:`~adamlab.lab.results.Comparison`: paths, loss curves, learning-rate sensitivity.

All figures are headless :class:`matplotlib.figure.Figure` objects (no pyplot); the format follows the file
extension (``.png``, ``.svg``, ``.pdf``). Legends carry the tuned learning rates and titles say how they
were tuned; test-function figures say that they are not a benchmark. :func:`write_comparison` writes every
picture plus ``results.json`` into one folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from adamlab.lab import plots
from adamlab.lab.problems import FunctionProblem
from adamlab.lab.results import Comparison, unique_labels
from adamlab.lab.text_fit import legend_below

__all__ = ["plot_comparison_losses", "plot_comparison_paths", "plot_sensitivity", "write_comparison"]

NOT_A_BENCHMARK = "an illustration on one test function, not a benchmark"
#: sensitivity scores beyond this magnitude are drawn as diverged: matplotlib cannot place log ticks near 1e308
HUGE_SCORE = 1e100


def _tuned(cmp: Comparison) -> str:
    if cmp.tune != "grid":
        return "learning rates as given"
    return "lr tuned per optimizer by " + ("mean loss" if cmp.objective == "mean" else "final loss")


def _offset(cmp: Comparison) -> tuple[float, str]:
    """Plot f − f* when the minimum is known (log scale shows the approach to it), else f."""
    f_star = cmp.problem.min_value
    return (float(f_star), "f − f*") if f_star is not None else (0.0, "loss")


def plot_comparison_paths(cmp: Comparison, out: str | Path) -> Path:
    """Every optimizer's path on the test function: start, minima and final points marked; lr in the legend."""
    problem = cmp.problem
    if not isinstance(problem, FunctionProblem):
        raise ValueError(f"paths exist for test functions only; {problem.name} is a learning problem")
    f = problem.function
    labels = unique_labels(cmp.optimizers)
    paths = {labels[k]: r.path for k, r in cmp.optimizers.items() if r.path is not None}
    title = f"{f.title}: {cmp.steps} steps, {_tuned(cmp)}\n({NOT_A_BENCHMARK})"
    if f.dim == 2:
        return plots.plot_contour_paths(
            f, {k: p.reshape(len(p), 2) for k, p in paths.items()}, out,
            domain=f.domain, minima=f.minima, start=f.start, title=title,
        )  # fmt: skip
    return _plot_paths_1d(f, {k: p.reshape(-1) for k, p in paths.items()}, out, title)


def _plot_paths_1d(f: Any, paths: dict[str, np.ndarray], out: str | Path, title: str) -> Path:
    lo, hi = f.domain[0]
    grid = np.linspace(lo, hi, 600)
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    curve = np.asarray(f(grid), dtype=float)
    ax.plot(grid, curve, color="0.2", lw=1.5, label=f"f(x) = {f.formula}")
    for i, (label, xs) in enumerate(paths.items()):
        xs = xs[np.isfinite(xs)]
        visible = xs[(xs >= lo) & (xs <= hi)]
        if len(xs) and not lo <= xs[-1] <= hi:
            label += f" (ends outside the view, x = {xs[-1]:.3g})"
        ax.plot(visible, f(visible), "o-", ms=3, lw=0.8, alpha=0.8, color=f"C{i}", label=label)
        if len(xs) and lo <= xs[-1] <= hi:
            ax.plot(xs[-1], f(xs[-1]), "X", ms=11, color=f"C{i}", mec="k", zorder=5)
    ax.plot([], [], "X", ms=11, color="0.6", mec="k", label="final point")
    ax.plot(f.start[0], f(np.array(f.start[0])), "o", ms=11, mfc="white", mec="k", mew=2, zorder=6, label="start")
    for i, m in enumerate(f.minima):
        ax.plot(m[0], f(np.array(m[0])), "*", ms=17, color="gold", mec="k", zorder=6,
                label="minimum" if i == 0 else None)  # fmt: skip
    span = float(curve.max() - curve.min())
    ax.set(xlim=(lo, hi), ylim=(curve.min() - 0.05 * span, curve.max() + 0.05 * span), xlabel="x", ylabel="f(x)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_below(fig, 3, fontsize="small")
    return plots.save_figure(fig, out)


def plot_comparison_losses(cmp: Comparison, out: str | Path) -> Path:
    """Loss against step (or epoch), log scale; mean and min–max band over the seeds."""
    offset, what = _offset(cmp)
    curves, labels = {}, unique_labels(cmp.optimizers)
    for key, r in cmp.optimizers.items():
        losses = r.losses - offset
        curves[labels[key]] = losses[0] if len(losses) == 1 else losses
    unit = cmp.problem.unit
    seeds = f", {cmp.seeds} seeds" if cmp.seeds > 1 else ""
    title = f"{cmp.problem.title}: {what} vs {unit}\n{_tuned(cmp)}{seeds}"
    if cmp.problem.kind == "function":
        title += f" ({NOT_A_BENCHMARK})"
    points = next(iter(cmp.optimizers.values())).points  # the recorded step of each point (same for all)
    x = points / cmp.problem.steps_per_epoch if unit == "epoch" else points
    return plots.plot_loss_curves(curves, out, title=title, xlabel=unit, ylabel=f"training {what}", x=x)


def _log_limits(values: np.ndarray) -> tuple[float, float]:
    """Log-axis limits for positive ``values``: 3× below the smallest, and above the largest a quarter of the
    span (in decades) as headroom for the divergence marks; computed in log space, kept within 1e-300..1e150."""
    lo, hi = float(np.log10(values.min())), float(np.log10(values.max()))
    bottom = max(lo - np.log10(3.0), -300.0)
    top = max(min(hi + 0.25 * (hi - lo), 150.0), bottom + 1.0)
    return 10.0**bottom, 10.0**top


def plot_sensitivity(cmp: Comparison, out: str | Path) -> Path:
    """Tuning objective against learning rate per optimizer; x marks a diverged run, a ring the chosen lr.

    A score beyond ±:data:`HUGE_SCORE` counts as diverged (it is on its way to overflow), so the axis limits
    stay finite and drawable.
    """
    if cmp.grid is None:
        raise ValueError("no sensitivity curves: nothing was tuned (tune='none')")
    offset, what = _offset(cmp)
    objective = f"final {what}" if cmp.objective == "final" else f"mean {what} over the run"
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    top = blended_transform_factory(ax.transData, ax.transAxes)
    values = []
    for i, r in enumerate(cmp.optimizers.values()):
        if r.grid_objective is None:
            continue
        with np.errstate(all="ignore"):
            color, y = f"C{i % 10}", r.grid_objective - offset
            ok = np.isfinite(y) & (np.abs(y) <= HUGE_SCORE)
        ax.plot(r.grid[ok], y[ok], "o-", ms=3.5, lw=1.4, color=color, label=r.label)
        row = 0.97 - 0.035 * i  # one row of divergence marks per optimizer, so they never hide each other
        ax.plot(r.grid[~ok], np.full((~ok).sum(), row), "x", ms=6, mew=1.8, color=color, transform=top, clip_on=False)
        best = np.flatnonzero(r.grid == r.lr)
        if len(best) and ok[best[0]]:
            ax.plot(r.lr, y[best[0]], "o", ms=12, mfc="none", mec=color, mew=2)
        values.append(y[ok])
    diverged = f"diverged or |value| > {HUGE_SCORE:.0e} (marked along the top)"
    ax.plot([], [], "x", ms=7, mew=2, color="0.4", label=diverged)
    ax.plot([], [], "o", ms=12, mfc="none", mec="0.4", mew=2, label="chosen learning rate")
    ax.set_xscale("log")
    finite = np.concatenate(values) if values else np.empty(0)
    if len(finite) and (finite > 0).all():
        ax.set_yscale("log")
        ax.set_ylim(*_log_limits(finite))
    elif len(finite):
        mags = np.abs(finite[finite != 0])
        ax.set_yscale("symlog", linthresh=max(float(mags.min()), float(mags.max()) * 1e-8) if len(mags) else 1.0)
    ax.set(xlabel="learning rate", ylabel=objective,
           title=f"{cmp.problem.title}: learning-rate sensitivity ({cmp.steps} steps, seed 0)")  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    return plots.save_figure(fig, out)


def write_comparison(
    cmp: Comparison, out_dir: str | Path, fmt: str = "png", animate: bool = True, frames: int = 60
) -> dict[str, Path]:
    """Write ``results.json`` and every picture that applies into ``out_dir``; returns {what: path}.

    Test functions: ``paths.<fmt>``, ``loss.<fmt>``, ``sensitivity.<fmt>``, ``paths.gif``, ``paths.html`` and,
    when Adam is compared, ``inside_adam.<fmt>`` (its m̂, v̂ and step against the §2.1 bound, from a re-run of
    the compared seed-0 run: same gradient noise and seed). Learning
    problems: ``loss.<fmt>``, ``sensitivity.<fmt>``. ``fmt`` is ``png``, ``svg`` or ``pdf``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"results": cmp.save_json(out / "results.json")}
    written["loss"] = plot_comparison_losses(cmp, out / f"loss.{fmt}")
    if cmp.grid is not None:
        written["sensitivity"] = plot_sensitivity(cmp, out / f"sensitivity.{fmt}")
    if isinstance(cmp.problem, FunctionProblem):
        written["paths"] = plot_comparison_paths(cmp, out / f"paths.{fmt}")
        if animate:
            from adamlab.lab import animation

            written["gif"] = animation.write_comparison_gif(cmp, out / "paths.gif", frames=frames)
            written["html"] = animation.write_comparison_html(cmp, out / "paths.html")
        adam = next((r for r in cmp.optimizers.values() if r.rule.name == "adam"), None)
        if adam is not None and not adam.diverged:
            from adamlab.lab import diagnostics

            written["inside_adam"] = diagnostics.inside_adam_figure(
                cmp.problem.function, adam.rule, cmp.steps, out / f"inside_adam.{fmt}",
                grad_noise=cmp.problem.grad_noise, seed=0, dtype=cmp.problem.dtype,
            )  # fmt: skip
    return written
