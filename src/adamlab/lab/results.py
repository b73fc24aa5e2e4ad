"""What :func:`~adamlab.lab.compare.compare` returns: per optimizer the tuned setting, curves and summary numbers.

Curves are kept per seed (NaN after a seed diverged); the mean and spread are computed from them. Everything
converts to JSON with :meth:`Comparison.to_dict` (NaN and inf become null).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from adamlab.lab.problems import Problem
from adamlab.rules import Averaged, Rule

__all__ = ["Comparison", "OptimizerResult", "DISCLAIMER_FUNCTION", "DISCLAIMER_LEARNING", "unique_labels"]

DISCLAIMER_FUNCTION = (
    "Not a benchmark: this is one small test function from one start point, with only the learning rate tuned "
    "(on a grid, objective stated) and every other hyperparameter at its default. Paths on a toy function "
    "show how an optimizer moves, not which optimizer to pick; results change with the function, the start "
    "and the tuning objective."
)
DISCLAIMER_LEARNING = (
    "One small convex problem: only the learning rate was tuned (on a grid, objective stated), every other "
    "hyperparameter is at its default, and the curves are training loss. Other problems, budgets or tuning "
    "protocols can order the optimizers differently."
)


@dataclasses.dataclass(repr=False)
class OptimizerResult:
    """One optimizer in a comparison.

    Attributes:
        name: the key (``"adam"``).   label: legend text with the tuned hyperparameters.
        rule: the rule as run (tuned learning rate).   lr: that learning rate.
        grid, grid_objective: the learning rates tried and the tuning objective of each (inf: diverged);
            None when nothing was tuned.
        losses: ``(seeds, P)`` loss at each recorded point per seed, NaN after a seed diverged.
        points: ``(P,)`` step number of each point.
        diverged_at: per seed the divergence step, or None.
        path: ``(P, n)`` iterates of the first seed on a test function, else None.
    """

    name: str
    label: str
    rule: Rule | Averaged
    lr: float
    losses: np.ndarray
    points: np.ndarray
    diverged_at: list[int | None]
    grid: np.ndarray | None = None
    grid_objective: np.ndarray | None = None
    path: np.ndarray | None = None
    target: float | None = None

    def __repr__(self) -> str:
        return (f"OptimizerResult({self.name!r}, lr={self.lr:.4g}, final_loss={self.final_loss:.6g}, "
                f"seeds={len(self.diverged_at)}, diverged={self.diverged})")  # fmt: skip

    @property
    def diverged(self) -> bool:
        """True when any seed's loss became non-finite."""
        return any(d is not None for d in self.diverged_at)

    @property
    def final_losses(self) -> np.ndarray:
        """The last loss of each seed (NaN for a seed that diverged)."""
        return self.losses[:, -1]

    @property
    def final_loss(self) -> float:
        """Mean final loss over the seeds that did not diverge (NaN if all diverged)."""
        ok = self.final_losses[np.isfinite(self.final_losses)]
        return float(ok.mean()) if len(ok) else math.nan

    def curve(self) -> np.ndarray:
        """Mean loss over the seeds still finite at each point (NaN where none is)."""
        with np.errstate(all="ignore"):
            finite = np.isfinite(self.losses)
            total = np.where(finite, self.losses, 0.0).sum(axis=0)
            count = finite.sum(axis=0)
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def spread(self) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise (min, max) over the seeds still finite."""
        alive = np.where(np.isfinite(self.losses), self.losses, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points give NaN, as intended
            return np.nanmin(alive, axis=0), np.nanmax(alive, axis=0)

    @property
    def steps_to_target(self) -> int | None:
        """First step at which the mean curve is at or below ``target`` (None: never, or no target)."""
        if self.target is None:
            return None
        hit = np.flatnonzero(self.curve() <= self.target)
        return int(self.points[hit[0]]) if len(hit) else None

    def hyperparameters(self) -> dict[str, Any]:
        rule = self.rule.base
        return {k: _plain(v) for k, v in rule.hyperparameters().items()}

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        low, high = self.spread()
        out: dict[str, Any] = {
            "label": self.label,
            "lr": self.lr,
            "hyperparameters": self.hyperparameters(),
            "final_loss": self.final_loss,
            "final_losses": self.final_losses.tolist(),
            "diverged": self.diverged,
            "diverged_at": self.diverged_at,
            "steps_to_target": self.steps_to_target,
            "curve": self.curve().tolist(),
        }
        if curves:
            out.update(curve_min=low.tolist(), curve_max=high.tolist(), curves=self.losses.tolist())
        if self.grid is not None and self.grid_objective is not None:
            out["grid"] = self.grid.tolist()
            out["grid_objective"] = self.grid_objective.tolist()
        if self.path is not None:
            out["path"] = self.path.tolist()
        return out


@dataclasses.dataclass(repr=False)
class Comparison:
    """The results of a fair comparison (see :func:`adamlab.lab.compare.compare`)."""

    problem: Problem
    optimizers: dict[str, OptimizerResult]
    steps: int
    seeds: int
    tune: str
    objective: str
    grid: np.ndarray | None
    target: float | None
    target_rule: str
    notes: list[str] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    tune_seeds: int = 1
    runs: dict[str, int] = dataclasses.field(default_factory=lambda: {"computed": 0, "reused": 0})

    def __repr__(self) -> str:
        parts = "; ".join(f"{k}: lr={r.lr:.3g}, final loss {r.final_loss:.4g}{' (diverged)' if r.diverged else ''}"
                          for k, r in self.optimizers.items())  # fmt: skip
        return f"Comparison({self.problem.name!r}, {self.steps} steps, {self.seeds} seed(s); {parts})"

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{h}</th>" for h in ("optimizer", "lr", "final loss", "steps to target", "diverged"))
        rows = "".join(
            f"<tr><td>{html.escape(r.label)}</td><td>{r.lr:.3g}</td><td>{r.final_loss:.6g}</td>"
            f"<td>{'never' if r.steps_to_target is None else r.steps_to_target}</td>"
            f"<td>{'yes' if r.diverged else 'no'}</td></tr>"
            for r in self.optimizers.values()
        )  # fmt: skip
        return (f"<p><b>{html.escape(self.problem.title)}</b>: {html.escape(self.protocol())}</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
                f"<p><i>{html.escape(self.disclaimer)}</i></p>")  # fmt: skip

    @property
    def disclaimer(self) -> str:
        return DISCLAIMER_FUNCTION if self.problem.kind == "function" else DISCLAIMER_LEARNING

    @property
    def points(self) -> np.ndarray:
        return next(iter(self.optimizers.values())).points

    def protocol(self) -> str:
        """The comparison protocol in one paragraph (what was tuned, on what, how many seeds)."""
        if self.tune == "grid" and self.grid is not None:
            what = "mean loss over the run" if self.objective == "mean" else "final training loss"
            on = "seed 0" if self.tune_seeds == 1 else f"mean over seeds 0–{self.tune_seeds - 1}"
            tuned = (
                f"learning rate of each optimizer tuned on a log grid of {len(self.grid)} values "
                f"({self.grid.min():.0e} to {self.grid.max():.0e}) by {what} ({on}; diverged = worst)"
            )
        else:
            tuned = "learning rates as given (not tuned)"
        seeds = f"{self.seeds} seed{'s' if self.seeds > 1 else ''}"
        per = self.problem.steps_per_epoch
        budget = f"{self.steps} steps" + (f" ({self.steps / per:g} epochs)" if self.problem.unit == "epoch" else "")
        return f"{budget}; {tuned}; best setting re-run with {seeds}; every optimizer from the same initialisation."

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """JSON-ready results (non-finite numbers become None)."""
        out = {
            "problem": self.problem.name,
            "title": self.problem.title,
            "description": self.problem.describe(),
            "kind": self.problem.kind,
            "unit": self.problem.unit,
            "steps": self.steps,
            "steps_per_epoch": self.problem.steps_per_epoch,
            "points": self.points.tolist(),
            "seeds": self.seeds,
            "tune": self.tune,
            "tune_seeds": self.tune_seeds,
            "objective": self.objective,
            "grid": None if self.grid is None else self.grid.tolist(),
            "target": self.target,
            "target_rule": self.target_rule,
            "protocol": self.protocol(),
            "disclaimer": self.disclaimer,
            "notes": self.notes,
            "elapsed_s": round(self.elapsed_s, 3),
            "runs": dict(self.runs),
            "optimizers": {name: r.to_dict(curves) for name, r in self.optimizers.items()},
        }
        return finite_or_none(out)

    def save_json(self, out: str | Path) -> Path:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    def write(self, out_dir: str | Path, fmt: str = "png", animate: bool = True) -> dict[str, Path]:
        """Write ``results.json`` and the pictures into ``out_dir`` (``comparison_plots.write_comparison``)."""
        from adamlab.lab.comparison_plots import write_comparison

        return write_comparison(self, out_dir, fmt=fmt, animate=animate)

    def summary(self) -> str:
        """A plain-text table: optimizer, tuned lr, final loss (± spread), steps to target, diverged."""
        unit = "step"
        lines = [
            f"{self.problem.title}: {self.protocol()}",
            f"target: {self.target_rule}" if self.target is not None else "target: none",
            "",
            f"{'optimizer':<12} {'lr':>10} {'final loss':>14} {'± std':>10} {f'{unit}s to target':>16}  diverged",
        ]
        for name, r in self.optimizers.items():
            finals = r.final_losses[np.isfinite(r.final_losses)]
            std = f"{finals.std():.2e}" if len(finals) > 1 else "-"
            reached = "never" if r.steps_to_target is None else str(r.steps_to_target)
            n_div = sum(d is not None for d in r.diverged_at)
            div = f"yes ({n_div}/{len(r.diverged_at)} seeds)" if r.diverged else "no"
            lines.append(f"{name:<12} {r.lr:>10.3g} {r.final_loss:>14.6g} {std:>10} {reached:>16}  {div}")
        lines += ["", self.disclaimer]
        return "\n".join(lines)


def unique_labels(optimizers: Mapping[str, OptimizerResult]) -> dict[str, str]:
    """{optimizer key: label}, unique: a label that several results share gets its key appended
    (``Adam (lr=0.01) [amsgrad]``), so that nothing keyed by label loses a series."""
    labels = [r.label for r in optimizers.values()]
    return {key: r.label if labels.count(r.label) == 1 else f"{r.label} [{key}]" for key, r in optimizers.items()}


def _plain(value: Any) -> Any:
    """Hyperparameter values as JSON types (tuples → lists, arrays → lists, numpy scalars → Python)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN or inf: replace them (in nested lists and dicts) by None, written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    return value
