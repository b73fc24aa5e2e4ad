"""Keep every title and legend of a figure inside it: wrap long titles, fold wide legends.

:func:`legend_below` puts a figure legend under the plots with as many columns (up to a maximum) as fit
the figure's width. :func:`fit_texts` draws the figure, finds titles (axes titles, super-titles of the
figure and its sub-figures) and legends that reach past the figure's edges, and wraps them at word
boundaries to the width available. It repeats, since a constrained layout moves things when a title gains
a line. :func:`~adamlab.lab.plots.save_figure` calls it before writing any picture.
"""

from __future__ import annotations

import textwrap
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

__all__ = ["fit_texts", "legend_below", "wrap_text"]

_ROUNDS = 6


def wrap_text(text: str, chars: int) -> str:
    """Each line of ``text`` wrapped at word boundaries to at most ``chars`` characters (at least 10)."""
    chars = max(int(chars), 10)
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) if line else "" for line in text.split("\n"))


def _renderer(fig: Any) -> Any:
    root = fig.get_figure(root=True) if hasattr(fig, "get_figure") else fig
    canvas = root.canvas if isinstance(root.canvas, FigureCanvasAgg) else FigureCanvasAgg(root)
    return canvas.get_renderer()


def legend_below(fig: Any, ncols: int = 3, **kwargs: Any) -> Any:
    """``fig.legend(loc="outside lower center")`` of every labelled artist of ``fig``'s axes, with at most
    ``ncols`` columns and fewer when a row would be wider than the figure (then labels are wrapped)."""
    seen: dict[str, Any] = {}  # one entry per label (sub-plots repeat theirs)
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    labels, handles = list(seen), list(seen.values())
    renderer = _renderer(fig)
    for n in range(max(ncols, 1), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=n, **kwargs)
        if legend.get_window_extent(renderer).width <= fig.bbox.width - 8 or n == 1:
            return legend
        legend.remove()
    return legend


def _titles(fig: Any) -> list[Text]:
    out = []
    for f in [fig, *fig.subfigs] if hasattr(fig, "subfigs") else [fig]:
        if getattr(f, "_suptitle", None) is not None:
            out.append(f._suptitle)
        for ax in f.axes:
            out += [ax.title, ax._left_title, ax._right_title]
        for sub in getattr(f, "subfigs", []):
            out += _titles(sub)
    return [t for t in dict.fromkeys(out) if t.get_visible() and t.get_text().strip()]


def _legends(fig: Any) -> list[Any]:
    out = list(getattr(fig, "legends", []))
    for ax in fig.axes:
        if ax.get_legend() is not None:
            out.append(ax.get_legend())
    for sub in getattr(fig, "subfigs", []):
        out += _legends(sub)
    return list(dict.fromkeys(out))


def _overflow(extent: Any, box: Any) -> float:
    """How many pixels ``extent`` reaches past ``box`` horizontally (0 when inside)."""
    return max(box.x0 - extent.x0, extent.x1 - box.x1, 0.0)


def fit_texts(fig: Figure) -> None:
    """Wrap titles and fold legends of ``fig`` until each lies inside the figure (see the module docstring)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    for _ in range(_ROUNDS):
        canvas.draw()
        renderer = canvas.get_renderer()
        box = fig.bbox
        changed = False
        for title in _titles(fig):
            extent = title.get_window_extent(renderer)
            if _overflow(extent, box) > 0.5 and extent.width > 0:
                lines = title.get_text().split("\n")
                longest = max(len(line) for line in lines)
                center = (extent.x0 + extent.x1) / 2  # a title stays centred where it is (over its axes)
                room = max(2 * min(center - box.x0, box.x1 - center) - 8, 0.2 * box.width)
                chars = int(longest * min(room / extent.width, 0.97))
                if chars < longest:
                    title.set_text(wrap_text(title.get_text(), chars))
                    changed = True
        for legend in _legends(fig):
            extent = legend.get_window_extent(renderer)
            if _overflow(extent, box) > 0.5:
                for text in legend.get_texts():
                    width = text.get_window_extent(renderer).width
                    room = box.width * 0.8
                    if width > room:
                        n = len(max(text.get_text().split("\n"), key=len))
                        text.set_text(wrap_text(text.get_text(), int(n * room / width)))
                        changed = True
        if not changed:
            return
