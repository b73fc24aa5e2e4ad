"""Fig. 1 of Kingma & Ba (§6.1): L2-regularised logistic regression on MNIST and on IMDB bag of words.

Paper: multinomial logistic regression with L2, minibatch 128, step size decayed as α_t = α/√t; left MNIST
(Adam, SGD-Nesterov, AdaGrad, ~45 epochs), right IMDB reviews as bag-of-words vectors of the 10,000 most
frequent words with 50% dropout noise on the features (Adam, AdaGrad, RMSProp, SGD-Nesterov, ~160 epochs).
Claims: on MNIST Adam converges like SGD-Nesterov, both faster than AdaGrad; on the sparse IMDB features
AdaGrad beats SGD-Nesterov by a large margin and Adam is as fast as AdaGrad.

Choices the paper leaves open: L2 λ = 1e-4 on the weights (cost + λ/2·‖W‖²); the α/√t decay applied to
every optimizer alike; the tuning protocol of :mod:`adamlab.lab.paper.protocol`. IMDB has no offline copy:
without it the MNIST panel is drawn and the IMDB one is listed as not run (``result.missing``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from adamlab.lab import plots
from adamlab.lab.paper.data import DataMissing, load_mnist
from adamlab.lab.paper.figure import Claim, FigureResult, Panel
from adamlab.lab.paper.plotting import caption_figure, draw_costs
from adamlab.lab.paper.protocol import Budget, base_config, half_decades, tune_series
from adamlab.lab.store import RunStore

NAME = "fig1"
TITLE = "Fig. 1: logistic regression on MNIST and IMDB bag of words (§6.1)"
L2 = 1e-4
PANELS = {"mnist": ("adam", "nesterov", "adagrad"), "imdb": ("adam", "adagrad", "rmsprop", "nesterov")}
CLAIMS = {
    "mnist": "Adam converges similarly to SGD with Nesterov momentum, and both converge faster than AdaGrad.",
    "imdb": "AdaGrad outperforms SGD-Nesterov by a large margin; Adam converges as fast as AdaGrad.",
}
#: "as fast as" / "similarly": a final cost at most this factor above the other's
SIMILAR = 1.1

_FULL_GRIDS = {"adam": half_decades(1e-4, 0.316), "rmsprop": half_decades(1e-4, 0.316),
               "adagrad": half_decades(1e-3, 3.16), "nesterov": half_decades(1e-3, 3.16)}  # fmt: skip
_QUICK_GRIDS = {"adam": (3.16e-3, 1e-2, 3.16e-2, 0.1), "rmsprop": (3.16e-3, 1e-2, 3.16e-2, 0.1),
                "adagrad": (0.1, 0.316, 1.0, 3.16), "nesterov": (0.1, 0.316, 1.0, 3.16)}  # fmt: skip
FULL = Budget("full", epochs=45, seeds=3, grids=_FULL_GRIDS,
              panels={"imdb": Budget("full", epochs=160, seeds=3, grids=_FULL_GRIDS)})  # fmt: skip
QUICK = Budget("quick", epochs=10, seeds=1, grids=_QUICK_GRIDS,
               panels={"imdb": Budget("quick", epochs=3, seeds=1, grids=_QUICK_GRIDS)})  # fmt: skip
BUDGETS = {"quick": QUICK, "full": FULL}


def _protocol(name: str, budget: Budget, source: str, dropout: str) -> str:
    grids = "; ".join(f"{k} {min(budget.grids[k]):g}…{max(budget.grids[k]):g} ({len(budget.grids[k])})"
                      for k in PANELS[name])  # fmt: skip
    seeds = "seed 0" if budget.seeds == 1 else f"seeds 0–{budget.seeds - 1} (tuned on seed 0)"
    return (f"{name.upper()} ({budget.name} budget): {source}; logistic regression, L2 λ = {L2:g} on the weights, "
            f"{dropout}minibatch 128, α_t = α/√t for every optimizer, {budget.epochs} epochs; α tuned on a log grid "
            f"({grids}) by the final training cost (mean minibatch cost of the last epoch); {seeds}; SGD-Nesterov "
            "momentum 0.9, everything else torch's defaults; float32, one torch thread per run.")  # fmt: skip


def run(budget: Budget, *, data_dir: str | None = None, store: RunStore | None = None, executor: Any = None,
        progress: bool | None = None) -> FigureResult:  # fmt: skip
    """Fig. 1's MNIST panel, and its IMDB panel when ``data_dir`` holds aclImdb."""
    result = FigureResult(NAME, TITLE, budget.name, [])
    for name in PANELS:
        b = budget.panel(name)
        try:
            if name == "mnist":
                data = load_mnist(data_dir, b.examples)
                model: dict[str, Any] = {"kind": "logistic", "classes": 10}
                dropout = ""
            else:
                from adamlab.lab.paper.imdb import load_imdb

                data = load_imdb(data_dir, 10_000, b.examples)
                model = {"kind": "logistic", "classes": 2, "input_dropout": 0.5}
                dropout = "50% dropout on the features, "
        except DataMissing as exc:
            result.missing.append(f"the {name.upper()} panel was not run: {exc}")
            continue
        base = base_config(NAME, {**data.identity(), "subset": b.examples}, model, epochs=b.epochs, l2=L2,
                           schedule="inv_sqrt")  # fmt: skip
        series, counts = tune_series({k: (k, {}, base) for k in PANELS[name]}, b, store=store, executor=executor,
                                     progress=progress, description=f"{NAME} {name}", data_dir=data_dir,
                                     notes=result.notes)  # fmt: skip
        result.counts += counts
        title = "MNIST logistic regression" if name == "mnist" else "IMDB bag-of-words logistic regression"
        result.panels[name] = Panel(name, title, data.source, series, b.epochs)
        result.protocol.append(_protocol(name, b, data.source, dropout))
        result.claims.append(verdict(result.panels[name]))
    return result


def verdict(panel: Panel) -> Claim:
    """MNIST: Adam and SGD-Nesterov both below AdaGrad, Adam within 10% of SGD-Nesterov. IMDB: AdaGrad below
    SGD-Nesterov, Adam within 10% of AdaGrad (final training costs)."""
    f = {k: s.final_loss if math.isfinite(s.final_loss) else math.inf for k, s in panel.series.items()}
    detail = "final training cost: " + ", ".join(f"{panel.series[k].label.split(' (')[0]} {f[k]:.4g}" for k in f)
    if panel.name == "mnist":
        test = (f"Adam and SGD-Nesterov end below AdaGrad, and Adam ends at most {SIMILAR:g}× SGD-Nesterov's "
                "final training cost")  # fmt: skip
        held = f["adam"] < f["adagrad"] and f["nesterov"] < f["adagrad"] and f["adam"] <= SIMILAR * f["nesterov"]
    else:
        test = f"AdaGrad ends below SGD-Nesterov, and Adam ends at most {SIMILAR:g}× AdaGrad's final training cost"
        held = f["adagrad"] < f["nesterov"] and f["adam"] <= SIMILAR * f["adagrad"]
    return Claim(panel.name, CLAIMS[panel.name], test, bool(held and math.isfinite(f["adam"])), detail)


def draw(result: FigureResult, out: str | Path) -> Path:
    """The paper's layout: MNIST on the left, IMDB on the right (a note where it was not run)."""
    fig, top = caption_figure(11.0, 4.4, result.protocol + result.missing)
    axes = top.subplots(1, 2)
    for ax, name in zip(axes, PANELS, strict=True):
        panel = result.panels.get(name)
        if panel is None:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{name.upper()}: not run\n(no data; see below)", ha="center", va="center",
                    transform=ax.transAxes, fontsize="large", color="0.4")  # fmt: skip
            continue
        draw_costs(ax, panel)
        ax.set_title(f"{panel.title}\n{result.budget} budget, {panel.epochs} epochs", fontsize="medium")
    top.suptitle(result.title, fontsize="large")
    return plots.save_figure(fig, out)
