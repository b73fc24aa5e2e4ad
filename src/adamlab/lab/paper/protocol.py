"""The tuning protocol of the reproduced figures, and what a tuned series is.

Paper §6: every optimizer starts from the same initialisation; its learning rate (and momentum) was found
by a dense grid search and the best setting is shown. The paper states no seeds, grids or objective; ours:

1. every learning rate of the optimizer's log grid (:class:`Budget`) is run on seed 0;
2. the best is the one with the lowest *final training cost* (the mean minibatch cost of the last epoch,
   what the figures plot); a diverged run is worst; ties go to the smaller learning rate;
3. the best learning rate is run again on seeds 1 … S−1; the curve is the mean over the S seeds.

Only the learning rate is tuned: momentum stays 0.9 for SGD-Nesterov (β1 = 0.9 for Adam) and every other
hyperparameter is torch's default. A best learning rate at the edge of its grid is reported in a note.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adamlab.lab.executor import RunCounts, Task, run_tasks
from adamlab.lab.paper.training import train_task
from adamlab.lab.store import RunStore

__all__ = ["PROTOCOL_VERSION", "Budget", "Series", "base_config", "half_decades", "tune_series"]

#: bump when a change to the training code changes what a configuration computes
PROTOCOL_VERSION = "adamlab-paper/1"


def half_decades(low: float, high: float) -> tuple[float, ...]:
    """10^k for k from log10(low) to log10(high) in steps of 0.5 (rounded to 3 significant digits)."""
    k = np.arange(round(2 * math.log10(low)), round(2 * math.log10(high)) + 1) / 2
    return tuple(float(f"{10.0**v:.3g}") for v in k)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much of a figure to run.

    Attributes:
        name: ``"quick"``, ``"full"`` or any label (tests use tiny ones).
        epochs: passes over the training set per run.
        grids: learning rates tried per optimizer key.
        seeds: seeds of the best setting (tuning is on seed 0).
        examples: a fixed subset of the training set (None: all of it).
        scale: model overrides (e.g. ``{"hidden": [64, 64]}``) for tests; empty for the paper's sizes.
        checkpoints: epochs at which a figure reads the loss (Fig. 4: 10 and 100).
        panels: a budget per panel where a figure's panels differ (Fig. 1: MNIST and IMDB).
    """

    name: str
    epochs: int
    grids: Mapping[str, tuple[float, ...]]
    seeds: int = 1
    examples: int | None = None
    scale: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    checkpoints: tuple[int, ...] = ()
    panels: Mapping[str, Budget] = dataclasses.field(default_factory=dict)

    def panel(self, name: str) -> Budget:
        """The budget of panel ``name`` (this one unless ``panels`` overrides it)."""
        return self.panels.get(name, self)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1; got {self.epochs!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= 100:
            raise ValueError(f"seeds must be an integer from 1 to 100; got {self.seeds!r}")
        for key, grid in self.grids.items():
            if not grid or not all(isinstance(v, float) and v > 0 and math.isfinite(v) for v in grid):
                raise ValueError(f"grids[{key!r}] must be a non-empty tuple of finite learning rates > 0")
        if not all(isinstance(e, int) and 1 <= e <= self.epochs for e in self.checkpoints):
            raise ValueError(f"checkpoints must be epochs from 1 to {self.epochs}; got {self.checkpoints!r}")


def base_config(figure: str, data: Mapping[str, Any], model: Mapping[str, Any], *, epochs: int,
                batch_size: int = 128, l2: float = 0.0, schedule: str = "constant") -> dict[str, Any]:  # fmt: skip
    """The part of a run's configuration shared by all optimizers of a panel (no optimizer, no seed)."""
    import torch

    from adamlab import __version__

    return {"protocol": PROTOCOL_VERSION, "adamlab": __version__, "torch": torch.__version__, "figure": figure,
            "data": dict(data), "model": dict(model), "epochs": epochs, "batch_size": batch_size, "l2": l2,
            "schedule": schedule, "threads": 1, "dtype": "float32"}  # fmt: skip


def run_config(base: Mapping[str, Any], optimizer: str, lr: float, seed: int,
               options: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {**base, "optimizer": {"name": optimizer, "lr": lr, "options": dict(options or {})}, "seed": seed}


@dataclasses.dataclass
class Series:
    """One tuned curve of a figure: the optimizer, its tuned lr, per-seed costs and the grid's scores."""

    key: str
    optimizer: str
    label: str
    lr: float
    grid: list[float]
    grid_scores: list[float]  #: final training cost per grid value (inf: diverged)
    costs: np.ndarray  #: (seeds, iterations) minibatch cost, NaN after a divergence
    final_losses: list[float]
    diverged: list[bool]
    steps_per_epoch: int

    @property
    def final_loss(self) -> float:
        """Mean final training cost over the seeds (NaN when every seed diverged)."""
        ok = [v for v in self.final_losses if math.isfinite(v)]
        return float(np.mean(ok)) if ok else math.nan

    def curve(self) -> np.ndarray:
        """Mean cost over the seeds at each iteration."""
        with np.errstate(all="ignore"):
            return np.nanmean(self.costs, axis=0) if np.isfinite(self.costs).any() else self.costs[0]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "lr": self.lr, "final_loss": self.final_loss, "final_losses": self.final_losses,
                "diverged": self.diverged, "grid": self.grid, "grid_final_loss": self.grid_scores,
                "steps_per_epoch": self.steps_per_epoch, "curve": self.curve().tolist()}  # fmt: skip


def _score(result: Mapping[str, Any]) -> float:
    value = result["final_loss"]
    return value if isinstance(value, float) and math.isfinite(value) else math.inf


def tune_series(
    series: Mapping[str, tuple[str, Mapping[str, Any], Mapping[str, Any]]],
    budget: Budget,
    *,
    store: RunStore | None,
    executor: Any,
    progress: bool | None,
    description: str,
    data_dir: str | None,
    notes: list[str],
) -> tuple[dict[str, Series], RunCounts]:
    """Tune and re-run every series ``{key: (optimizer, options, base_config)}`` by the module's protocol."""
    counts = RunCounts()
    grids = {key: tuple(budget.grids[opt]) for key, (opt, _, _) in series.items()}
    wave = [(key, lr) for key in series for lr in grids[key]]
    tasks = [_task(series[key], lr, 0, data_dir) for key, lr in wave]
    results, n = run_tasks(tasks, store, executor, description=f"{description}: tuning", progress=progress)
    counts += n
    by_key: dict[str, list[dict[str, Any]]] = {key: [] for key in series}
    for (key, _), out in zip(wave, results, strict=True):
        by_key[key].append(out[0])
    best: dict[str, int] = {}
    for key, runs in by_key.items():
        scores = [_score(r) for r in runs]
        lasted = [r["diverged_at"] or math.inf for r in runs]
        best[key] = int(np.argmin(scores)) if np.isfinite(scores).any() else int(np.argmax(lasted))
        grid = grids[key]
        label = series[key][0]
        if not np.isfinite(scores).any():
            notes.append(f"{key}: every learning rate of the grid diverged; the one that lasted longest is shown.")
        elif best[key] in (0, len(grid) - 1) and len(grid) > 2:
            notes.append(f"{key} ({label}): the best learning rate {grid[best[key]]:g} is at the edge of its grid "
                         f"({grid[0]:g} … {grid[-1]:g}).")  # fmt: skip
    reruns = [(key, seed) for key in series for seed in range(1, budget.seeds)]
    tasks = [_task(series[key], grids[key][best[key]], seed, data_dir) for key, seed in reruns]
    results, n = run_tasks(tasks, store, executor, description=f"{description}: seeds", progress=progress)
    counts += n
    seeded: dict[str, list[dict[str, Any]]] = {key: [by_key[key][best[key]]] for key in series}
    for (key, _), out in zip(reruns, results, strict=True):
        seeded[key].append(out[0])
    out_series = {}
    from adamlab.lab.paper.training import OPTIMIZER_LABELS

    for key, (opt, _, _) in series.items():
        runs = seeded[key]
        lr = grids[key][best[key]]
        suffix = key[len(opt):] if key.startswith(opt) else ""  # e.g. "+dropout"
        out_series[key] = Series(
            key=key, optimizer=opt, label=f"{OPTIMIZER_LABELS[opt]}{suffix} (lr={lr:g})", lr=lr, grid=list(grids[key]),
            grid_scores=[_score(r) for r in by_key[key]], costs=np.stack([r["cost"] for r in runs]),
            final_losses=[float(r["final_loss"]) for r in runs], diverged=[r["diverged_at"] is not None for r in runs],
            steps_per_epoch=int(runs[0]["steps_per_epoch"]),
        )  # fmt: skip
    return out_series, counts


def _task(spec: tuple[str, Mapping[str, Any], Mapping[str, Any]], lr: float, seed: int, data_dir: str | None) -> Task:
    optimizer, options, base = spec
    config = run_config(base, optimizer, lr, seed, options)
    return Task(train_task, {"config": config, "data_dir": data_dir}, (config,))


def grid_runs(configs: Sequence[dict[str, Any]], data_dir: str | None) -> list[Task]:
    """One task per configuration (for sweeps without tuning, such as Fig. 4)."""
    return [Task(train_task, {"config": c, "data_dir": data_dir}, (c,)) for c in configs]
