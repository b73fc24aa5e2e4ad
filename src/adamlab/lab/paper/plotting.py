"""Drawing the reproduced figures in the paper's layout: training cost per iteration, the protocol below.

The x-axis is the paper's "iterations over entire dataset" (epochs, fractional: iteration t of an epoch of
n minibatches is drawn at t/n). Every iteration's cost is drawn as a thin line and its running mean over one
epoch as a solid one, so that the noise of minibatch costs does not hide the trend. The protocol of the
figure (data, grid, objective, seeds, budget) is printed under the plot, wrapped to the figure's width.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure, SubFigure

from adamlab.lab.paper.figure import Panel

__all__ = ["caption_figure", "draw_costs", "running_mean"]

CAPTION_FONT = 7.5  #: points
_CHAR_WIDTH = 0.62  #: a generous average character width, in font sizes, for wrapping the caption


def running_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start); NaN stays NaN."""
    y = np.asarray(y, dtype=float)
    window = max(1, min(window, len(y)))
    ok = np.isfinite(y)
    total = np.concatenate([[0.0], np.cumsum(np.where(ok, y, 0.0))])
    count = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    n = count[idx] - count[lo]
    with np.errstate(all="ignore"):
        mean = (total[idx] - total[lo]) / n
    return np.where(ok & (n > 0), mean, np.nan)


def caption_figure(width: float, height: float, caption: Sequence[str]) -> tuple[Figure, SubFigure]:
    """A figure of ``width`` inches with a plot area ``height`` inches tall and ``caption`` printed below it.

    Returns the figure and the sub-figure to draw the plot in.
    """
    chars = int((width * 72 - 24) / (CAPTION_FONT * _CHAR_WIDTH))
    lines = [wrapped for para in caption for wrapped in textwrap.wrap(para, chars)]
    caption_h = 0.12 + len(lines) * CAPTION_FONT * 1.3 / 72
    fig = Figure(figsize=(width, height + caption_h), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, caption_h])
    bottom.text(0.012, 0.97, "\n".join(lines), va="top", ha="left", fontsize=CAPTION_FONT, linespacing=1.3,
                color="0.25")  # fmt: skip
    return fig, top


def draw_costs(ax: object, panel: Panel, *, until: float | None = None, log: bool = True) -> None:
    """Draw every series of ``panel`` on ``ax``: per-iteration cost (thin) and its one-epoch running mean."""
    tops = []
    for i, s in enumerate(panel.series.values()):
        y = s.curve()
        x = np.arange(1, len(y) + 1) / s.steps_per_epoch
        if until is not None:
            keep = x <= until
            x, y = x[keep], y[keep]
        color = f"C{i % 10}"
        smooth = running_mean(y, s.steps_per_epoch)
        ax.plot(x, y, color=color, lw=0.5, alpha=0.3)
        diverged = " (diverged)" if any(s.diverged) else ""
        ax.plot(x, smooth, color=color, lw=1.6, label=f"{s.label}{diverged}")
        tops.append(y[np.isfinite(y)])
    values = np.concatenate(tops) if tops else np.empty(0)
    if log and len(values) and (values > 0).all():
        ax.set_yscale("log")
    ax.set(xlabel="iterations over entire dataset (epochs)", ylabel="training cost")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
