"""Moving pictures of optimizer paths: an animated GIF and a self-contained interactive HTML page.

Both draw the function once as a background (a contour for 2-D functions, the curve for 1-D ones, where a
path point is (x, f(x))) and the paths on top of it.

- :func:`write_gif`: frames rendered with matplotlib's Agg canvas and joined by Pillow (no ffmpeg).
- :func:`write_html`: one file that works offline: the background is an embedded PNG, the paths are JSON,
  and a little inline JavaScript draws them on a canvas; each path can be toggled, and a slider, step
  buttons and play/pause move through the steps. No network access, no external scripts.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure
from PIL import Image

from adamlab.lab import plots
from adamlab.lab.functions import TestFunction
from adamlab.lab.text_fit import legend_below

__all__ = ["frame_steps", "write_comparison_gif", "write_comparison_html", "write_gif", "write_html"]

MAX_HTML_POINTS = 1500  #: longer paths are subsampled in the HTML page (first and last points kept)


def frame_steps(n_steps: int, frames: int) -> np.ndarray:
    """Steps shown in the frames: quadratically spaced from 0 to ``n_steps`` (more frames early, when paths move)."""
    return np.unique(np.round(np.linspace(0.0, np.sqrt(n_steps), max(frames, 2)) ** 2).astype(int))


def _points(function: TestFunction, path: np.ndarray) -> np.ndarray:
    """Path as (x, y) points: the iterates of a 2-D function, or (x, f(x)) for a 1-D one; shape (T+1, 2)."""
    arr = np.asarray(path, dtype=float)
    if function.dim == 2:
        return arr.reshape(len(arr), 2)
    x = arr.reshape(-1)
    with np.errstate(all="ignore"):
        return np.stack([x, np.asarray(function(x), dtype=float)], axis=1)


def _background(function: TestFunction, ax: Any, paths: list[np.ndarray]) -> tuple[tuple[float, float], ...]:
    """Draw the function on ``ax``; return the axes box ((x_lo, x_hi), (y_lo, y_hi))."""
    (x_lo, x_hi) = function.domain[0]
    if function.dim == 2:
        (y_lo, y_hi) = function.domain[1]
        gx, gy = np.meshgrid(np.linspace(x_lo, x_hi, 200), np.linspace(y_lo, y_hi, 200))
        z = plots._evaluate(function, np.stack([gx, gy]), 1)
        finite = z[np.isfinite(z)]
        if function.bounded_below and finite.min() >= 0 and finite.max() > 0:
            floor = max(float(finite[finite > 0].min()), float(finite.max()) * 1e-6)
            levels, norm = np.geomspace(floor, finite.max(), 25), LogNorm(floor, finite.max())
            z = np.clip(z, floor, None)
        else:
            levels, norm = np.linspace(finite.min(), finite.max(), 25), None
        ax.contourf(gx, gy, z, levels=levels, norm=norm, cmap="viridis", alpha=0.45)
        ax.contour(gx, gy, z, levels=levels, norm=norm, cmap="viridis", linewidths=0.5)
        for i, (mx, my) in enumerate(function.minima):
            ax.plot(mx, my, "*", ms=15, color="gold", mec="k", zorder=6, label="minimum" if i == 0 else None)
        ax.set(xlim=(x_lo, x_hi), ylim=(y_lo, y_hi), xlabel="x", ylabel="y")
        return (x_lo, x_hi), (y_lo, y_hi)
    grid = np.linspace(x_lo, x_hi, 400)
    curve = np.asarray(function(grid), dtype=float)
    ax.plot(grid, curve, color="0.25", lw=1.4)
    for i, m in enumerate(function.minima):
        ax.plot(m[0], function(np.array(m[0])), "*", ms=15, color="gold", mec="k", zorder=6,
                label="minimum" if i == 0 else None)  # fmt: skip
    pad = 0.05 * float(curve.max() - curve.min())
    box = (x_lo, x_hi), (float(curve.min()) - pad, float(curve.max()) + pad)
    ax.set(xlim=box[0], ylim=box[1], xlabel="x", ylabel="f(x)")
    return box


def write_gif(
    function: TestFunction,
    paths: Mapping[str, np.ndarray],
    out: str | Path,
    *,
    title: str = "",
    frames: int = 60,
    fps: int = 12,
) -> Path:
    """Animate ``paths`` ({legend label: iterates (T+1, n)}) on ``function`` into a GIF written by Pillow.

    The view is the function's plotting box; a path that leaves it is clipped and its legend entry says so.
    """
    pts = {label: _points(function, p) for label, p in paths.items()}
    n_steps = max(len(p) for p in pts.values()) - 1
    fig = Figure(figsize=(6.4, 5.6), dpi=80, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    box = _background(function, ax, list(pts.values()))
    start = next(iter(pts.values()))[0]
    ax.plot(*start, "o", ms=10, mfc="white", mec="k", mew=2, zorder=6, label="start")
    lines, heads = [], []
    for i, (label, p) in enumerate(pts.items()):
        (line,) = ax.plot([], [], "-", lw=2.2, color=f"C{i % 10}", label=_legend(label, p, box))
        (head,) = ax.plot([], [], "o", ms=8, color=f"C{i % 10}", mec="k", zorder=7)
        lines.append(line)
        heads.append(head)
    legend_below(fig, 2, fontsize="small")
    text = ax.set_title("")
    images = []
    for step in frame_steps(n_steps, frames):
        for line, head, p in zip(lines, heads, pts.values(), strict=True):
            seen = plots._finite_prefix(p[: step + 1])
            line.set_data(seen[:, 0], seen[:, 1])
            head.set_data(seen[-1:, 0], seen[-1:, 1])
        text.set_text(f"{title}\nstep {step} of {n_steps}" if title else f"step {step} of {n_steps}")
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=128))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    durations = [round(1000 / fps)] * (len(images) - 1) + [2000]  # hold the last frame
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=True)
    return path


def write_html(
    function: TestFunction,
    paths: Mapping[str, np.ndarray],
    out: str | Path,
    *,
    title: str = "",
    losses: Mapping[str, Sequence[float]] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write one self-contained HTML page: toggle each path, step through them with a slider or play them.

    ``paths`` maps a legend label to iterates (T+1, n); ``losses`` (optional) maps the same labels to f at each
    step, shown next to the current point; ``notes`` are paragraphs shown under the picture (e.g. a disclaimer).
    A path that leaves the function's plotting box is clipped; its label says so.
    """
    pts = {label: _points(function, p) for label, p in paths.items()}
    fig = Figure(figsize=(7.0, 6.0), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.09, top=0.97)
    (x_lo, x_hi), (y_lo, y_hi) = view = _background(function, ax, list(pts.values()))
    canvas.draw()
    box = ax.get_window_extent()  # pixels, origin bottom-left
    width, height = canvas.get_width_height()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    series = []
    for i, (label, p) in enumerate(pts.items()):
        keep = _subsample(len(p))
        f = None if losses is None else np.asarray(losses[label], dtype=float)[keep].tolist()
        series.append({
            "label": _legend(label, p, view), "color": to_hex(f"C{i % 10}"), "steps": keep.tolist(),
            "points": _json_numbers(p[keep].tolist()), "loss": None if f is None else _json_numbers(f),
        })  # fmt: skip
    data = {
        "image": {"width": width, "height": height},
        "box": {"left": box.x0, "right": box.x1, "top": height - box.y1, "bottom": height - box.y0},
        "range": {"x": [x_lo, x_hi], "y": [y_lo, y_hi]},
        "series": series,
        "steps": max(len(p) for p in pts.values()) - 1,
        "start": pts[next(iter(pts))][0].tolist(),
    }
    page = _PAGE.format(
        title=html.escape(title or f"Optimizer paths on {function.title}"),
        image=base64.b64encode(buf.getvalue()).decode("ascii"),
        data=json.dumps(data, allow_nan=False).replace("</", "<\\/"),
        notes="".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes),
        width=width,
        height=height,
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _legend(label: str, points: np.ndarray, box: tuple[tuple[float, float], ...]) -> str:
    """``label`` plus a note when the path leaves the drawn box (it would otherwise vanish without a word)."""
    return label + plots._outside_note(plots._finite_prefix(points), box)


def _json_numbers(value: Any) -> Any:
    """Nested lists of floats with NaN/inf replaced by None (JSON null: "no point here")."""
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    return value if np.isfinite(value) else None


def _subsample(n: int) -> np.ndarray:
    if n <= MAX_HTML_POINTS:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, np.sqrt(n - 1), MAX_HTML_POINTS) ** 2).astype(int))


def _comparison_parts(cmp: Any) -> tuple[TestFunction, dict[str, np.ndarray], str]:
    from adamlab.lab.problems import FunctionProblem
    from adamlab.lab.results import unique_labels

    if not isinstance(cmp.problem, FunctionProblem):
        raise ValueError(f"animations exist for test functions only; {cmp.problem.name} is a learning problem")
    labels = unique_labels(cmp.optimizers)
    paths = {labels[k]: r.path for k, r in cmp.optimizers.items() if r.path is not None}
    tuned = "lr tuned per optimizer" if cmp.tune == "grid" else "lr as given"
    return cmp.problem.function, paths, f"{cmp.problem.function.title} ({tuned}; not a benchmark)"


def write_comparison_gif(cmp: Any, out: str | Path, **kwargs: Any) -> Path:
    """:func:`write_gif` of every optimizer's path in a :class:`~adamlab.lab.results.Comparison`."""
    function, paths, title = _comparison_parts(cmp)
    return write_gif(function, paths, out, title=title, **kwargs)


def write_comparison_html(cmp: Any, out: str | Path) -> Path:
    """:func:`write_html` of a comparison, with the loss at each step, the protocol and the disclaimer."""
    from adamlab.lab.results import unique_labels

    function, paths, title = _comparison_parts(cmp)
    labels = unique_labels(cmp.optimizers)
    losses = {labels[k]: r.losses[0] for k, r in cmp.optimizers.items() if r.path is not None}
    notes = [f"f(x, y) = {function.formula}." if function.dim == 2 else f"f(x) = {function.formula}.",
             "Protocol: " + cmp.protocol(), cmp.disclaimer]  # fmt: skip
    return write_html(function, paths, out, title=title, losses=losses, notes=notes)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.2em; color: #222; max-width: 1100px; }}
#wrap {{ position: relative; width: {width}px; height: {height}px; float: left; margin-right: 1.2em; }}
#wrap img, #wrap canvas {{ position: absolute; left: 0; top: 0; }}
#side {{ overflow: hidden; }} label {{ display: block; margin: 0.25em 0; cursor: pointer; }}
.swatch {{ display: inline-block; width: 1.6em; height: 0.5em; margin: 0 0.4em 0.1em 0.2em; }}
.readout {{ font-family: ui-monospace, monospace; font-size: 0.85em; color: #444; margin-left: 2.4em; }}
#controls {{ clear: both; padding-top: 0.8em; }} #slider {{ width: {width}px; }}
.note {{ font-size: 0.9em; color: #555; max-width: 60em; }}
</style></head><body>
<h2>{title}</h2>
<div id="wrap"><img src="data:image/png;base64,{image}" width="{width}" height="{height}" alt="function">
<canvas id="paths" width="{width}" height="{height}"></canvas></div>
<div id="side"><b>Paths</b> (click to show or hide)<div id="toggles"></div></div>
<div id="controls">
<button id="first">&#x23EE;</button> <button id="back">&#x25C0; step</button>
<button id="play">&#x25B6; play</button> <button id="fwd">step &#x25B6;</button> <button id="last">&#x23ED;</button>
&nbsp; step <b id="stepno">0</b> of <span id="nsteps"></span><br>
<input type="range" id="slider" min="0" value="0">
</div>
{notes}
<script id="data" type="application/json">{data}</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const ctx = document.getElementById("paths").getContext("2d");
const slider = document.getElementById("slider");
const shown = D.series.map(() => true);
let step = 0, timer = null;
slider.max = D.steps; document.getElementById("nsteps").textContent = D.steps;
function px(p) {{
  const b = D.box, r = D.range;
  return [b.left + (p[0] - r.x[0]) / (r.x[1] - r.x[0]) * (b.right - b.left),
          b.top + (r.y[1] - p[1]) / (r.y[1] - r.y[0]) * (b.bottom - b.top)];
}}
function upto(s, n) {{ let k = 0; while (k + 1 < s.steps.length && s.steps[k + 1] <= n) k++; return k; }}
function fmt(v) {{
  if (v === null) return "–";
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4);
}}
function draw() {{
  ctx.clearRect(0, 0, D.image.width, D.image.height);
  ctx.save(); ctx.beginPath();
  ctx.rect(D.box.left, D.box.top, D.box.right - D.box.left, D.box.bottom - D.box.top); ctx.clip();
  D.series.forEach((s, i) => {{
    const k = upto(s, step), out = document.getElementById("r" + i);
    let last = null;
    if (shown[i]) {{
      ctx.strokeStyle = s.color; ctx.lineWidth = 2.2; ctx.beginPath();
      for (let j = 0; j <= k; j++) {{
        const p = s.points[j];
        if (p[0] === null || p[1] === null) break;
        const q = px(p); if (j === 0) ctx.moveTo(q[0], q[1]); else ctx.lineTo(q[0], q[1]); last = j;
      }}
      ctx.stroke();
      if (last !== null) {{
        const q = px(s.points[last]); ctx.fillStyle = s.color; ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
        ctx.beginPath(); ctx.arc(q[0], q[1], 5.5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      }}
    }}
    const j = Math.min(k, s.points.length - 1), p = s.points[j];
    const dead = p[0] === null || p[1] === null;
    out.textContent = dead ? "diverged before step " + s.steps[j] :
      "step " + s.steps[j] + ": (" + fmt(p[0]) + ", " + fmt(p[1]) + ")" + (s.loss ? "  f = " + fmt(s.loss[j]) : "");
  }});
  const st = px(D.start); ctx.fillStyle = "#fff"; ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(st[0], st[1], 6, 0, 2 * Math.PI); ctx.fill(); ctx.stroke(); ctx.restore();
  document.getElementById("stepno").textContent = step; slider.value = step;
}}
const toggles = document.getElementById("toggles");
D.series.forEach((s, i) => {{
  const l = document.createElement("label");
  l.innerHTML = "<input type='checkbox' checked><span class='swatch' style='background:" + s.color + "'></span>";
  l.appendChild(document.createTextNode(s.label));
  const r = document.createElement("div"); r.className = "readout"; r.id = "r" + i;
  l.firstChild.addEventListener("change", e => {{ shown[i] = e.target.checked; draw(); }});
  toggles.appendChild(l); toggles.appendChild(r);
}});
function go(n) {{ step = Math.max(0, Math.min(D.steps, n)); draw(); }}
function stop() {{
  if (!timer) return;
  clearInterval(timer); timer = null; document.getElementById("play").innerHTML = "&#x25B6; play";
}}
slider.addEventListener("input", () => {{ stop(); go(+slider.value); }});
document.getElementById("first").onclick = () => {{ stop(); go(0); }};
document.getElementById("last").onclick = () => {{ stop(); go(D.steps); }};
document.getElementById("back").onclick = () => {{ stop(); go(step - 1); }};
document.getElementById("fwd").onclick = () => {{ stop(); go(step + 1); }};
document.getElementById("play").onclick = () => {{
  if (timer) {{ stop(); return; }}
  if (step >= D.steps) step = 0;
  document.getElementById("play").innerHTML = "&#x23F8; pause";
  const inc = Math.max(1, Math.round(D.steps / 150));
  timer = setInterval(() => {{ if (step >= D.steps) stop(); else go(step + inc); }}, 40);
}};
draw();
</script>
</body></html>
"""
