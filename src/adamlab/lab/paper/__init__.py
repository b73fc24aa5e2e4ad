"""The experiments of Kingma & Ba (2015), §6, reproduced offline: ``adamlab paper fig1|fig2|fig3|fig4|all``.

- Fig. 1 (:mod:`~adamlab.lab.paper.fig1`): L2-regularised logistic regression on MNIST and on IMDB bag of words;
- Fig. 2 (:mod:`~adamlab.lab.paper.fig2`): the 2×1000 ReLU network with dropout on MNIST, five optimizers;
- Fig. 3 (:mod:`~adamlab.lab.paper.fig3`): the c64-c64-c128-1000 CNN on CIFAR-10;
- Fig. 4 (:mod:`~adamlab.lab.paper.fig4`): bias correction in Adam, on a VAE.

Every run is a record in ``OUT/runs`` (:mod:`adamlab.lab.store`), computed by an executor
(:mod:`adamlab.lab.executor`): a sweep that is interrupted and started again reuses its finished runs and
ends with the same bytes. Each figure is drawn in the paper's layout with its protocol under it, and
:func:`write_report` sets every figure beside the paper's claim with the verdict our numbers give.

Example (a tiny budget; ``"quick"`` and ``"full"`` are the documented ones)::

    from adamlab.lab.paper import Budget, run_figure
    result = run_figure("fig2", "quick", out="paper_out")
    result.claims[0].verdict          # 'held' or 'did not hold'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from adamlab.lab.executor import open_executor
from adamlab.lab.paper.data import DataMissing
from adamlab.lab.paper.figure import Claim, FigureResult, Panel
from adamlab.lab.paper.protocol import Budget
from adamlab.lab.store import RunStore

__all__ = ["FIGURE_NAMES", "Budget", "Claim", "DataMissing", "FigureResult", "Panel", "figure_module", "run_figure",
           "write_figure", "write_report"]  # fmt: skip

FIGURE_NAMES: tuple[str, ...] = ("fig1", "fig2", "fig3", "fig4")


def figure_module(name: str) -> ModuleType:
    """The module of figure ``name`` (``"fig1"`` … ``"fig4"``)."""
    if name not in FIGURE_NAMES:
        raise ValueError(f"figure must be one of {', '.join(FIGURE_NAMES)} or all; got {name!r}")
    import importlib

    return importlib.import_module(f"adamlab.lab.paper.{name}")


def run_figure(
    name: str,
    budget: str | Budget = "quick",
    *,
    data_dir: str | Path | None = None,
    out: str | Path | None = "adamlab_paper",
    executor: Any = None,
    progress: bool | None = None,
) -> FigureResult:
    """Run figure ``name`` under ``budget`` (``"quick"``, ``"full"`` or a :class:`Budget`).

    Runs are stored in ``out/runs`` (reused when present; ``out=None`` keeps nothing) and executed by
    ``executor`` (see :mod:`adamlab.lab.executor`: None = local processes, ``"serial"``, a Dask address or
    client, any ``concurrent.futures.Executor``). The figure, its JSON and nothing else are written by
    :func:`write_figure`. A figure that needs a data set absent from ``data_dir`` raises :class:`DataMissing`
    (Fig. 1 runs its MNIST panel and lists the IMDB one in ``result.missing`` instead).
    """
    module = figure_module(name)
    if isinstance(budget, str):
        if budget not in module.BUDGETS:
            raise ValueError(f"budget must be one of {', '.join(module.BUDGETS)} or a Budget; got {budget!r}")
        budget = module.BUDGETS[budget]
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"--data: {data_dir} is not a folder")
    store = None if out is None else RunStore(Path(out) / "runs")
    with open_executor(executor) as pool:  # one pool for every wave of the figure
        return module.run(budget, data_dir=None if data_dir is None else str(data_dir), store=store,
                          executor="serial" if pool is None else pool, progress=progress)  # fmt: skip


def write_figure(result: FigureResult, out: str | Path, fmt: str = "png") -> dict[str, Path]:
    """Write ``<figure>.<fmt>`` (when something was run) and ``<figure>.json`` into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if result.panels or result.table:
        written["figure"] = figure_module(result.figure).draw(result, folder / f"{result.figure}.{fmt}")
    path = folder / f"{result.figure}.json"
    path.write_text(json.dumps(result.to_dict(), allow_nan=False) + "\n", encoding="utf-8")
    written["json"] = path
    return written


def write_report(results: Sequence[FigureResult], out: str | Path, fmt: str = "png",
                 not_run: Sequence[str] = ()) -> dict[str, Path]:  # fmt: skip
    """``report.md`` and a self-contained ``report.html`` for ``results`` (pictures written by write_figure);
    ``not_run`` lists the figures that could not run, one line each."""
    from adamlab.lab.paper.report import write_report as _write

    return _write(results, Path(out), fmt, not_run)
