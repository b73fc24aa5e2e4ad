"""Static, headless-safe plots for the optimizer lab.

Figures are built as :class:`matplotlib.figure.Figure` objects and written with ``fig.savefig``;
``matplotlib.pyplot`` is never imported, so no GUI backend is chosen and no global figure state
is kept. The output format follows the file extension (``.png``, ``.svg`` or ``.pdf``).

Objective functions take a torch tensor whose first axis is the coordinate (``v[0]`` is x and
``v[1]`` is y for 2-D functions; 1-D functions are elementwise). They are evaluated on a float64
torch grid under ``torch.no_grad()``; if the vectorised call raises or returns the wrong shape,
the function is evaluated point by point instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator

from adamlab.lab.text_fit import fit_texts, legend_below

__all__ = ["check_output_path", "save_figure", "plot_function_path", "plot_contour_paths", "plot_loss_curves"]

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: the 2-D box drawn when no ``domain`` is given and the paths stay inside it
DEFAULT_BOX: tuple[tuple[float, float], tuple[float, float]] = ((-2.0, 2.0), (-1.0, 3.0))
#: the default 2-D box grows to fit the paths by at most this many box widths on each side (a diverging path
#: would otherwise shrink the function to a dot); points beyond are clipped and named in the legend
FIT_WIDTHS = 10.0
#: loss values beyond this magnitude are drawn as diverged (log ticks cannot be placed near 1e308)
HUGE_LOSS = 1e100
ArrayLike = Any  # numpy array, torch tensor or nested sequence of numbers


def check_output_path(out: str | Path) -> Path:
    """``out`` as a Path whose folder exists: a ``ValueError`` names a missing folder or a file in the way."""
    path = Path(out)
    if not path.name:
        raise ValueError(f"out: {str(out)!r} names a folder, not a file")
    parent = path.parent
    if not parent.is_dir():
        part = next((p for p in reversed(parent.parents) if p.exists() and not p.is_dir()), None)
        if part is None and parent.exists():
            part = parent
        if part is not None:
            raise ValueError(f"{out}: {part} is a file, not a folder")
        raise ValueError(f"{out}: the folder {parent} does not exist")
    return path


def save_figure(fig: Figure, out: str | Path) -> Path:
    """Write ``fig`` to ``out`` (format from the extension; the folder must exist), every title and legend
    fitted inside the figure first (:func:`~adamlab.lab.text_fit.fit_texts`)."""
    path = Path(out)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"out: unsupported file extension '{path.suffix}'; use .png, .svg or .pdf")
    check_output_path(path)
    fit_texts(fig)
    fig.savefig(path, format=fmt, dpi=150)
    return path


def _as_array(a: ArrayLike) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _evaluate(fun: Callable[[Any], Any], pts: np.ndarray, point_ndim: int) -> np.ndarray:
    """Evaluate ``fun`` on ``pts`` (coordinate on axis 0 when ``point_ndim == 1``).

    Returns an array of shape ``pts.shape[point_ndim:]``; points where the point-by-point fallback
    raises become NaN (the last error is re-raised if every point fails).
    """
    shape = pts.shape[point_ndim:]
    with torch.no_grad():
        try:
            res = _as_array(fun(torch.as_tensor(pts, dtype=torch.float64)))
            if res.shape == shape:
                return res
        except Exception:
            pass
        flat = pts.reshape(pts.shape[0], -1).T if point_ndim else pts.reshape(-1)
        vals = np.full(len(flat), np.nan)
        error: Exception | None = None
        for i, p in enumerate(flat):
            try:
                vals[i] = _as_array(fun(torch.as_tensor(p, dtype=torch.float64))).item()
            except Exception as exc:  # any user error marks the point undefined
                error = exc
        if error is not None and not np.isfinite(vals).any():
            raise error
    return vals.reshape(shape)


def _name(fun: Callable[..., Any]) -> str:
    name = getattr(fun, "__name__", "f")
    return "f" if name.startswith("<") else name


def _formula(fun: Callable[..., Any]) -> str | None:
    """The formula of a typed-in expression (its text) or of a registered test function, else None."""
    text = getattr(fun, "formula", None) or getattr(fun, "text", None)
    return text if isinstance(text, str) and text else None


def _widen(lo: float, hi: float, values: np.ndarray, widths: float) -> tuple[float, float]:
    """``(lo, hi)`` widened to include the finite ``values``, by at most ``widths`` times its width on each side."""
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v)]
    if not len(v):
        return lo, hi
    width = hi - lo
    return max(min(lo, float(v.min())), lo - widths * width), min(max(hi, float(v.max())), hi + widths * width)


def _fit_box(points: np.ndarray) -> tuple[tuple[float, float], ...]:
    """:data:`DEFAULT_BOX` if it holds the finite ``points`` (shape (N, 2)), else widened to them (see
    :data:`FIT_WIDTHS`) with a 5% margin on each side that moved."""
    box = []
    for axis, (lo, hi) in enumerate(DEFAULT_BOX):
        new_lo, new_hi = _widen(lo, hi, points[:, axis], FIT_WIDTHS)
        pad = 0.05 * (new_hi - new_lo)
        box.append((new_lo - pad if new_lo < lo else lo, new_hi + pad if new_hi > hi else hi))
    return tuple(box)


def _outside_note(drawn: np.ndarray, box: Sequence[tuple[float, float]]) -> str:
    """Legend note for a path (finite rows, shape (N, 2)) with points outside ``box``; "" if it stays inside."""
    (x_lo, x_hi), (y_lo, y_hi) = box
    inside = (drawn[:, 0] >= x_lo) & (drawn[:, 0] <= x_hi) & (drawn[:, 1] >= y_lo) & (drawn[:, 1] <= y_hi)
    if inside.all():
        return ""
    if not inside[-1]:
        return f" [ends outside the view at ({drawn[-1, 0]:.3g}, {drawn[-1, 1]:.3g})]"
    return f" [{int((~inside).sum())} points outside the view]"


def _finite_prefix(a: np.ndarray) -> np.ndarray:
    """Rows of ``a`` up to (excluding) the first row containing a non-finite value."""
    ok = np.isfinite(a).reshape(len(a), -1).all(axis=1)
    return a if ok.all() else a[: int(np.argmin(ok))]


def plot_function_path(
    fun: Callable[[Any], Any],
    xs: ArrayLike,
    fs: ArrayLike,
    out: str | Path,
    *,
    domain: tuple[float, float] = (-2.0, 2.0),
    x0: float | None = None,
    f0: float | None = None,
    minima: Sequence[float] = (),
    title: str | None = None,
    label: str = "Adam",
) -> Path:
    """Plot a 1-D function over ``domain`` with an optimizer path coloured by step.

    ``xs``/``fs`` are x and f(x) after each step (step 1, 2, ...). The x-range is ``domain``
    widened to include the finite path points, ``x0`` and ``minima``, but by at most one domain
    width on each side; path points beyond it are clipped by the axes and counted in the legend.
    The y-range covers the curve over that x-range plus the visible path (8% padding). Non-finite
    path points are skipped. ``f0`` defaults to ``fun(x0)``. Returns the written path.
    """
    xs, fs = _as_array(xs).reshape(-1), _as_array(fs).reshape(-1)
    if xs.shape != fs.shape:
        raise ValueError(f"xs and fs: shapes differ ({xs.shape} vs {fs.shape})")
    steps = np.arange(1, len(xs) + 1)
    ok = np.isfinite(xs) & np.isfinite(fs)
    xs, fs, steps = xs[ok], fs[ok], steps[ok]
    lo, hi = float(domain[0]), float(domain[1])
    extra = np.concatenate([xs, np.asarray([] if x0 is None else [x0]), np.asarray(minima, float)])
    xlo, xhi = _widen(lo, hi, extra, 1.0)
    grid = np.linspace(xlo, xhi, 600)
    curve = _evaluate(fun, grid, 0)
    visible = (xs >= xlo) & (xs <= xhi)
    if x0 is not None and f0 is None:
        f0 = float(_evaluate(fun, np.array([x0]), 0)[0])
    fmin = _evaluate(fun, np.asarray(minima, float), 0) if len(minima) else np.empty(0)
    ys = np.concatenate([curve, fs[visible], fmin, np.asarray([] if f0 is None else [f0])])
    ys = ys[np.isfinite(ys)]
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(grid, curve, color="0.2", lw=1.6, label=f"f(x) = {_formula(fun)}" if _formula(fun) else f"{_name(fun)}(x)",
            zorder=1)  # fmt: skip
    for i, m in enumerate(minima):
        ax.axvline(m, color="tab:green", ls="--", lw=1, zorder=0)
        star = "known minimum" if i == 0 else None
        ax.plot(m, fmin[i], "*", ms=16, color="gold", mec="k", zorder=8, label=star)  # above the final marker
    if len(xs):
        ax.plot(xs, fs, color="tab:blue", lw=0.6, alpha=0.4, zorder=2)
        hidden = f", {int((~visible).sum())} outside view" if (~visible).any() else ""
        sc = ax.scatter(
            xs, fs, c=steps, cmap="viridis", s=18, zorder=3, label=f"{label} path ({len(xs)} steps{hidden})"
        )
        fig.colorbar(sc, ax=ax, label="step")
        where = "" if visible[-1] else ", outside view"
        final = f"final x={xs[-1]:.4g} (step {steps[-1]}{where})"
        ax.plot(xs[-1], fs[-1], "X", ms=11, color="crimson", mec="k", zorder=6, label=final)
    if x0 is not None:
        ax.plot(x0, f0, "o", ms=10, mfc="white", mec="crimson", mew=2, zorder=6, label=f"start x0={x0:.4g}")
    if len(ys):
        ylo, yhi = float(ys.min()), float(ys.max())
        pad = 0.08 * (yhi - ylo) or 1.0
        ax.set_ylim(ylo - pad, yhi + pad)
    pad = 0.02 * (xhi - xlo)
    ax.set_xlim(xlo - pad, xhi + pad)
    formula = _formula(fun)
    default = f"{label} on f(x) = {formula}" if formula else f"{label} on {_name(fun)}(x)"
    ax.set(xlabel="x", ylabel="f(x)", title=title or default)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    return save_figure(fig, out)


def plot_contour_paths(
    fun: Callable[[Any], Any],
    paths: Mapping[str, ArrayLike],
    out: str | Path,
    *,
    domain: tuple[tuple[float, float], tuple[float, float]] | None = None,
    minima: Sequence[tuple[float, float]] = (),
    start: tuple[float, float] | None = None,
    title: str | None = None,
    log_levels: bool = True,
) -> Path:
    """Contour plot of a 2-D ``fun`` over ``domain`` with one optimizer path per mapping entry.

    Without ``domain`` the box is :data:`DEFAULT_BOX`, widened to the finite path points, ``start`` and
    ``minima`` when they leave it (by at most :data:`FIT_WIDTHS` box widths per side, plus a 5% margin).
    Levels are log-spaced (spanning at most 6 decades below the maximum) when ``log_levels`` and
    ``fun`` is non-negative on the grid, linear otherwise. Each path (shape ``(steps+1, 2)``, start
    included) is drawn up to its first non-finite row; parts outside the box are clipped by the
    axes and the path's legend entry says so. ``start`` defaults to the first point of the first path.
    The legend sits below the axes so it never covers a path. Returns the written path.
    """
    drawn = {}
    for name, path in paths.items():
        arr = _as_array(path)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"paths[{name!r}]: expected shape (steps+1, 2), got {arr.shape}")
        drawn[name] = (_finite_prefix(arr), len(arr))
    if start is None:
        start = next(((float(d[0, 0]), float(d[0, 1])) for d, _ in drawn.values() if len(d)), None)
    if domain is None:
        extra = [() if start is None else tuple(start), minima]
        marks = [d for d, _ in drawn.values()] + [np.reshape(m, (-1, 2)) for m in extra]
        domain = _fit_box(np.concatenate(marks).astype(float))
    fig = Figure(figsize=(7.5, 6.4), layout="constrained")
    ax = fig.add_subplot()
    _draw_contour(fig, ax, fun, domain, log_levels)
    for i, (name, (path, n_rows)) in enumerate(drawn.items()):
        note = f" [diverged after {len(path) - 1} steps]" if len(path) < n_rows else ""
        color = f"C{i % 10}"
        width = max(4.2 - 1.6 * i, 1.0)  # earlier paths wider so overlapping ones stay visible
        style = {"color": color, "lw": width, "ms": max(width + 0.5, 3.0), "mew": 0}
        ax.plot(path[:, 0], path[:, 1], "-o", label=f"{name}{note}{_outside_note(path, domain)}", **style)
        if len(path):
            ax.plot(*path[-1], "X", ms=10, color=color, mec="k", zorder=5)
    if paths:
        ax.plot([], [], "X", ms=10, color="0.6", mec="k", label="final point")
    if start is not None:
        ax.plot(*start, "o", ms=11, mfc="white", mec="k", mew=2, zorder=6, label="start")
    for i, (mx, my) in enumerate(minima):
        ax.plot(mx, my, "*", ms=18, color="gold", mec="k", zorder=8, label="minimum" if i == 0 else None)
    (x_lo, x_hi), (y_lo, y_hi) = domain
    ax.set(xlim=(x_lo, x_hi), ylim=(y_lo, y_hi), xlabel="x", ylabel="y")
    if 0.25 <= (y_hi - y_lo) / (x_hi - x_lo) <= 4:  # equal aspect, unless the box is a long strip
        ax.set_aspect("equal", adjustable="box")
    formula = _formula(fun)
    where = f"f(x, y) = {formula}" if formula else f"{_name(fun)}(x, y)"
    ax.set_title(title or (f"{next(iter(paths))} on {where}" if len(paths) == 1 else f"Optimizer paths on {where}"))
    legend_below(fig, 3, fontsize="small")
    return save_figure(fig, out)


def _draw_contour(
    fig: Figure, ax: Any, fun: Callable[[Any], Any], domain: Sequence[tuple[float, float]], log_levels: bool
) -> None:
    """Filled and line contours of ``fun`` over ``domain`` with a colour bar (log levels when possible)."""
    (x_lo, x_hi), (y_lo, y_hi) = domain
    gx, gy = np.meshgrid(np.linspace(x_lo, x_hi, 240), np.linspace(y_lo, y_hi, 240))
    z = _evaluate(fun, np.stack([gx, gy]), 1)
    finite = z[np.isfinite(z)]
    if len(finite) and finite.max() > finite.min():
        zmin, zmax = float(finite.min()), float(finite.max())
        if log_levels and zmin >= 0:
            floor = max(float(finite[finite > 0].min()), zmax * 1e-6)
            levels, norm, extra = np.geomspace(floor, zmax, 25), LogNorm(floor, zmax), " (log levels)"
            z = np.clip(z, floor, None)
        else:
            levels, norm, extra = np.linspace(zmin, zmax, 25), None, ""
        zm = np.ma.masked_invalid(z)
        cf = ax.contourf(gx, gy, zm, levels=levels, norm=norm, cmap="viridis", alpha=0.45)
        ax.contour(gx, gy, zm, levels=levels, norm=norm, cmap="viridis", linewidths=0.6)
        ticks = LogLocator() if norm is not None else None
        fig.colorbar(cf, ax=ax, label=f"{_name(fun)}(x, y){extra}", ticks=ticks)


def plot_loss_curves(
    curves: Mapping[str, ArrayLike],
    out: str | Path,
    *,
    log_y: bool = True,
    title: str = "Loss vs step",
    xlabel: str = "step",
    ylabel: str = "loss",
    x: ArrayLike | None = None,
) -> Path:
    """Plot loss against step for each named run; index ``i`` of a curve is drawn at ``x[i]`` (default: i),
    e.g. the epoch of each recorded point.

    A 1-D value is one run, drawn up to its first non-finite value. A 2-D value is seeds x steps:
    each seed is cut at its first non-finite value, and the mean over the seeds still finite at a
    step is drawn with a shaded min-max band (diverged seeds are counted in the legend); a value beyond
    ±:data:`HUGE_LOSS` counts as diverged. With
    ``log_y`` the y-axis is logarithmic when every plotted value is positive, otherwise symlog
    (linear within the smallest non-zero magnitude, at least 1e-8 of the largest), so values <= 0
    never break the plot. Returns the written path.
    """
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    plotted: list[np.ndarray] = []
    for i, (name, values) in enumerate(curves.items()):
        arr, color = _as_array(values), f"C{i % 10}"
        with np.errstate(invalid="ignore"):
            arr = np.where(np.abs(arr) > HUGE_LOSS, np.nan, arr)  # on its way to overflow: drawn as diverged
        at = np.arange(arr.shape[-1]) if x is None else np.asarray(x, dtype=float)
        if at.shape != (arr.shape[-1],):
            raise ValueError(f"x has {at.size} positions; curves[{name!r}] has {arr.shape[-1]} points")
        if arr.ndim == 1:
            y = _finite_prefix(arr)
            ax.plot(at[: len(y)], y, color=color, lw=1.5, label=name)
            plotted.append(y)
            continue
        if arr.ndim != 2:
            raise ValueError(f"curves[{name!r}]: expected a 1-D or 2-D (seeds x steps) array, got {arr.ndim}-D")
        alive = np.cumprod(np.isfinite(arr), axis=1).astype(bool)  # each seed up to divergence
        n = int(alive.any(axis=0).sum())
        runs = np.where(alive, arr, np.nan)[:, :n]
        steps = at[:n]
        mean, low, high = (f(runs, axis=0) for f in (np.nanmean, np.nanmin, np.nanmax))
        diverged = int((~alive.all(axis=1)).sum())
        note = f", {diverged} diverged" if diverged else ""
        ax.plot(steps, mean, color=color, lw=1.5, label=f"{name} (mean of {len(runs)} seeds{note})")
        ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0, label=f"{name} min-max band")
        plotted += [np.asarray(low), np.asarray(high)]
    values = np.concatenate(plotted) if plotted else np.empty(0)
    if log_y and len(values):
        if (values > 0).all():
            ax.set_yscale("log")
        else:
            mags = np.abs(values[values != 0])
            top = float(mags.max()) if len(mags) else 1.0
            ax.set_yscale("symlog", linthresh=max(float(mags.min()) if len(mags) else 1.0, top * 1e-8))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    return save_figure(fig, out)
