"""Fig. 2 of Kingma & Ba (§6.2): a multilayer network with dropout on MNIST, five optimizers (the article's figure).

Paper: two fully connected hidden layers of 1000 ReLU units, minibatch 128, dropout stochastic
regularisation; Adam, AdaGrad, RMSProp, SGD-Nesterov and AdaDelta, learning rates from a dense grid
search; training cost against iterations over the data (~200 epochs, log scale). Claim: Adam's training
cost falls fastest (it "shows better convergence than other methods").

Choices the paper leaves open (stated in the figure): dropout 20% on the inputs and 50% after each hidden
layer (Srivastava et al. 2014); no L2 (dropout is the regulariser of Fig. 2a); torch's default
initialisation; pixels scaled to [0, 1]; the tuning protocol of :mod:`adamlab.lab.paper.protocol`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from adamlab.lab import plots
from adamlab.lab.paper.data import load_mnist
from adamlab.lab.paper.figure import Claim, FigureResult, Panel
from adamlab.lab.paper.plotting import caption_figure, draw_costs
from adamlab.lab.paper.protocol import Budget, base_config, half_decades, tune_series
from adamlab.lab.store import RunStore

NAME = "fig2"
TITLE = "Fig. 2: multilayer neural network with dropout on MNIST (§6.2)"
OPTIMIZERS = ("adam", "adagrad", "rmsprop", "nesterov", "adadelta")
HIDDEN = (1000, 1000)
DROPOUT = {"input_dropout": 0.2, "hidden_dropout": 0.5}
PAPER_CLAIM = "Adam shows better convergence than the other methods: its training cost is the lowest (Fig. 2a)."

FULL = Budget("full", epochs=200, seeds=3, grids={
    "adam": half_decades(1e-5, 1e-2), "rmsprop": half_decades(1e-5, 1e-2), "adagrad": half_decades(1e-4, 1e-1),
    "nesterov": half_decades(1e-3, 1.0), "adadelta": half_decades(1e-2, 10.0)})  # fmt: skip
QUICK = Budget("quick", epochs=5, seeds=1, grids={
    "adam": (1e-3, 3.16e-3, 1e-2), "rmsprop": (3.16e-4, 1e-3, 3.16e-3), "adagrad": (3.16e-3, 1e-2, 3.16e-2),
    "nesterov": (3.16e-2, 0.1, 0.316), "adadelta": (0.316, 1.0, 3.16)})  # fmt: skip
BUDGETS = {"quick": QUICK, "full": FULL}


def protocol(budget: Budget, data_source: str, hidden: tuple[int, ...]) -> list[str]:
    grids = "; ".join(f"{k} {min(g):g}…{max(g):g} ({len(g)})" for k, g in budget.grids.items())
    seeds = "seed 0" if budget.seeds == 1 else f"seeds 0–{budget.seeds - 1} (tuned on seed 0)"
    return [
        f"Data: {data_source}. Model: 784-{'-'.join(map(str, hidden))}-10 ReLU, dropout 20% on the inputs and 50% "
        "after each hidden layer, torch's default initialisation from the seed (the same for every optimizer); "
        "minibatch 128; no L2; float32; one torch thread per run.",
        f"Protocol ({budget.name} budget): {budget.epochs} epochs per run; the learning rate of each optimizer is "
        f"tuned on a log grid ({grids}) by the final training cost (mean minibatch cost of the last epoch); "
        f"{seeds}; SGD-Nesterov momentum 0.9, everything else torch's defaults. Curves: cost of every iteration "
        "(thin) and its running mean over one epoch (solid), averaged over the seeds.",
    ]


def run(budget: Budget, *, data_dir: str | None = None, store: RunStore | None = None, executor: Any = None,
        progress: bool | None = None) -> FigureResult:  # fmt: skip
    """Run (or reuse from ``store``) every run of Fig. 2 under ``budget``; returns the figure's results."""
    data = load_mnist(data_dir, budget.examples)
    hidden = tuple(budget.scale.get("hidden", HIDDEN))
    base = base_config(NAME, {**data.identity(), "subset": budget.examples},
                       {"kind": "mlp", "hidden": list(hidden), **DROPOUT}, epochs=budget.epochs)  # fmt: skip
    notes: list[str] = []
    series, counts = tune_series({k: (k, {}, base) for k in OPTIMIZERS}, budget, store=store, executor=executor,
                                 progress=progress, description=NAME, data_dir=data_dir, notes=notes)  # fmt: skip
    panel = Panel("mnist", "MNIST multilayer neural network + dropout", data.source, series, budget.epochs)
    result = FigureResult(NAME, TITLE, budget.name, protocol(budget, data.source, hidden), {"mnist": panel},
                          counts=counts, notes=notes)  # fmt: skip
    result.claims.append(verdict(panel))
    return result


def verdict(panel: Panel) -> Claim:
    """Held when Adam's final training cost is the lowest of the five."""
    finals = {k: s.final_loss for k, s in panel.series.items()}
    ranked = sorted(finals, key=lambda k: finals[k] if math.isfinite(finals[k]) else math.inf)
    detail = "final training cost: " + ", ".join(f"{panel.series[k].label.split(' (')[0]} {finals[k]:.4g}"
                                                 for k in ranked)  # fmt: skip
    adam = finals.get("adam", math.nan)
    held = math.isfinite(adam) and ranked[0] == "adam"
    return Claim("mnist", PAPER_CLAIM, "Adam's final training cost is the lowest of the five", held, detail)


def draw(result: FigureResult, out: str | Path) -> Path:
    """The figure in the paper's layout: one panel, log cost against epochs; the protocol under it."""
    panel = result.panels["mnist"]
    fig, top = caption_figure(7.5, 4.6, result.protocol)
    ax = top.subplots()
    draw_costs(ax, panel)
    ax.set_title(f"{panel.title}\n{result.title.split(': ')[0]}, {result.budget} budget, {panel.epochs} epochs",
                 fontsize="medium")  # fmt: skip
    return plots.save_figure(fig, out)
