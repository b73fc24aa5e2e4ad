"""Fig. 3 of Kingma & Ba (§6.3): the convolutional network on CIFAR-10, with and without dropout.

Paper: c64-c64-c128 (5×5 convolutions, 3×3 max pooling with stride 2), a fully connected layer of 1000
ReLU units, whitened inputs, minibatch 128, dropout noise on the input and fully connected layers; AdaGrad,
SGD-Nesterov and Adam, each with and without dropout; left the first 3 epochs, right 45 epochs (log scale).
Claims: early on Adam and AdaGrad make rapid progress (faster than SGD-Nesterov); in the end Adam and
SGD-Nesterov converge considerably faster than AdaGrad.

Choices: ZCA whitening (ε = 1e-2, pixels in [0, 1]) computed on the training images used; dropout 20% on the
input, 50% on the 1000-unit layer; convolutions padded by 2; no L2; the tuning protocol of
:mod:`adamlab.lab.paper.protocol`. CIFAR-10 has no offline copy: it is read from ``--data``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from adamlab.lab import plots
from adamlab.lab.paper.data import load_cifar10
from adamlab.lab.paper.figure import Claim, FigureResult, Panel
from adamlab.lab.paper.plotting import caption_figure, draw_costs
from adamlab.lab.paper.protocol import Budget, Series, base_config, half_decades, tune_series
from adamlab.lab.store import RunStore

NAME = "fig3"
TITLE = "Fig. 3: convolutional network on CIFAR-10 (§6.3)"
OPTIMIZERS = ("adagrad", "nesterov", "adam")
DROPOUT = {"input_dropout": 0.2, "hidden_dropout": 0.5}
EARLY_EPOCHS = 3  #: the paper's left panel
CLAIMS = {
    "early": "In the first epochs Adam and AdaGrad make rapid progress, faster than SGD-Nesterov.",
    "late": "In the end Adam and SGD-Nesterov converge considerably faster than AdaGrad.",
}

FULL = Budget("full", epochs=45, seeds=1, grids={
    "adam": half_decades(1e-4, 3.16e-3), "adagrad": half_decades(1e-3, 3.16e-2),
    "nesterov": half_decades(1e-3, 3.16e-2)})  # fmt: skip
QUICK = Budget("quick", epochs=3, seeds=1, examples=1000, grids={
    "adam": (3.16e-4, 1e-3), "adagrad": (3.16e-3, 1e-2), "nesterov": (3.16e-3, 1e-2)})  # fmt: skip
BUDGETS = {"quick": QUICK, "full": FULL}


def run(budget: Budget, *, data_dir: str | None = None, store: RunStore | None = None, executor: Any = None,
        progress: bool | None = None) -> FigureResult:  # fmt: skip
    """Every run of Fig. 3 (raises DataMissing without CIFAR-10 in ``data_dir``)."""
    data = load_cifar10(data_dir, budget.examples)
    channels = list(budget.scale.get("channels", (64, 64, 128)))
    hidden = int(budget.scale.get("hidden", 1000))
    spec = {**data.identity(), "subset": budget.examples, "whiten": True, "zca_eps": 1e-2}
    series_spec = {}
    for opt in OPTIMIZERS:
        for drop in (False, True):
            model = {"kind": "cnn", "channels": channels, "hidden": hidden, **(DROPOUT if drop else {})}
            series_spec[opt + ("+dropout" if drop else "")] = (opt, {}, base_config(NAME, spec, model,
                                                                                    epochs=budget.epochs))
    notes: list[str] = []
    series, counts = tune_series(series_spec, budget, store=store, executor=executor, progress=progress,
                                 description=NAME, data_dir=data_dir, notes=notes)  # fmt: skip
    panel = Panel("cifar10", "CIFAR-10 ConvNet", data.source, series, budget.epochs)
    grids = "; ".join(f"{k} {min(g):g}…{max(g):g} ({len(g)})" for k, g in budget.grids.items())
    protocol = [
        f"Data: {data.source}, ZCA-whitened (ε = 1e-2). Model: c{'-c'.join(map(str, channels))} (5×5 conv, "
        f"padding 2, ReLU, 3×3 max pool stride 2), FC {hidden} ReLU, 10 outputs; '+dropout': 20% on the input and "
        "50% on the FC layer. Minibatch 128, no L2, float32, one torch thread per run.",
        f"Protocol ({budget.name} budget): {budget.epochs} epochs; α tuned per optimizer and dropout setting on a log "
        f"grid ({grids}) by the final training cost (mean minibatch cost of the last epoch); "
        f"{'seed 0' if budget.seeds == 1 else f'seeds 0–{budget.seeds - 1}'}; SGD-Nesterov momentum 0.9. Left: "
        f"the first {min(EARLY_EPOCHS, budget.epochs)} epochs; right: all {budget.epochs}.",
    ]
    result = FigureResult(NAME, TITLE, budget.name, protocol, {"cifar10": panel}, counts=counts, notes=notes)
    result.claims += verdicts(panel)
    return result


def _epoch_cost(s: Series, epoch: int) -> float:
    """Mean cost over epoch ``epoch`` (1-based) of the seed-mean curve; inf when diverged."""
    y = s.curve()[(epoch - 1) * s.steps_per_epoch : epoch * s.steps_per_epoch]
    return float(np.mean(y)) if len(y) and np.isfinite(y).all() else math.inf


def verdicts(panel: Panel) -> list[Claim]:
    """Early (epoch min(3, E)): Adam and AdaGrad below SGD-Nesterov; late (epoch E): Adam and SGD-Nesterov
    below AdaGrad; each with and without dropout (mean cost over that epoch)."""
    out = []
    for part, epoch in (("early", min(EARLY_EPOCHS, panel.epochs)), ("late", panel.epochs)):
        held, numbers = True, []
        for suffix in ("", "+dropout"):
            c = {k: _epoch_cost(panel.series[k + suffix], epoch) for k in OPTIMIZERS}
            numbers.append(f"{suffix or 'no dropout'}: " + ", ".join(f"{k} {v:.4g}" for k, v in c.items()))
            if part == "early":
                held &= c["adam"] < c["nesterov"] and c["adagrad"] < c["nesterov"]
            else:
                held &= c["adam"] < c["adagrad"] and c["nesterov"] < c["adagrad"]
        who = "Adam and AdaGrad below SGD-Nesterov" if part == "early" else "Adam and SGD-Nesterov below AdaGrad"
        test = f"mean cost of epoch {epoch}: {who}, with and without dropout"
        out.append(Claim(f"cifar10 ({part})", CLAIMS[part], test, bool(held), "; ".join(numbers)))
    return out


def draw(result: FigureResult, out: str | Path) -> Path:
    """The paper's layout: the first epochs on the left (linear), every epoch on the right (log)."""
    panel = result.panels["cifar10"]
    fig, top = caption_figure(11.0, 4.4, result.protocol)
    left, right = top.subplots(1, 2)
    early = min(EARLY_EPOCHS, panel.epochs)
    draw_costs(left, panel, until=early, log=False)
    left.set_title(f"{panel.title}: first {early} epochs", fontsize="medium")
    draw_costs(right, panel)
    right.set_title(f"{panel.title}: {panel.epochs} epochs ({result.budget} budget)", fontsize="medium")
    top.suptitle(result.title, fontsize="large")
    return plots.save_figure(fig, out)
