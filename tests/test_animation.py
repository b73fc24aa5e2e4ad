"""GIF and interactive HTML of optimizer paths, and the folder of pictures a comparison writes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import adamlab
from adamlab.lab import animation
from adamlab.lab.compare import compare
from adamlab.lab.comparison_plots import write_comparison
from adamlab.lab.functions import get_function
from adamlab.lab.minimize import minimize

ROSENBROCK = get_function("rosenbrock")


@pytest.fixture(scope="module")
def paths() -> dict[str, np.ndarray]:
    out = {}
    for label, rule in (("Adam (lr=0.1)", adamlab.Adam(lr=0.1)), ("SGD (lr=0.01)", adamlab.SGD(lr=0.01))):
        out[label] = minimize(ROSENBROCK, ROSENBROCK.start, rule, 40).history.path()
    return out


def test_frame_steps() -> None:
    steps = animation.frame_steps(500, 60)
    assert steps[0] == 0 and steps[-1] == 500 and np.all(np.diff(steps) > 0) and len(steps) <= 60
    assert steps[10] - steps[9] < steps[-1] - steps[-2]  # denser at the start, where paths move most


def test_gif_frames_move(tmp_path: Path, paths: dict[str, np.ndarray]) -> None:
    out = animation.write_gif(ROSENBROCK, paths, tmp_path / "a" / "p.gif", frames=8, title="t")
    assert out.read_bytes()[:6] == b"GIF89a"
    with Image.open(out) as im:
        assert im.n_frames == len(animation.frame_steps(40, 8))
        im.seek(0)
        first = np.asarray(im.convert("RGB"))
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB"))
    assert first.shape == last.shape and (first != last).any()


def test_gif_of_a_1d_function(tmp_path: Path) -> None:
    cubic = get_function("cubic")
    path = minimize(cubic, 0.001, adamlab.Adam(lr=0.05), 30).history.path()
    out = animation.write_gif(cubic, {"Adam": path}, tmp_path / "c.gif", frames=5)
    assert out.read_bytes()[:6] == b"GIF89a"


def _page_data(text: str) -> dict:
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S).group(1))


def test_html_is_self_contained(tmp_path: Path, paths: dict[str, np.ndarray]) -> None:
    adam = paths["Adam (lr=0.1)"]
    cut = adam.copy()
    cut[20:] = np.nan  # a path drawn up to its divergence: NaN must become JSON null
    paths = {"Adam (lr=0.1)": adam, "cut": cut}
    out = animation.write_html(ROSENBROCK, paths, tmp_path / "p.html", notes=["a <b>note</b>"])
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "a &lt;b&gt;note&lt;/b&gt;" in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing fetched from the network
    data_text = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S).group(1)
    assert "NaN" not in data_text and "Infinity" not in data_text
    data = _page_data(text)
    assert [s["label"] for s in data["series"]] == list(paths) and data["steps"] == 40
    assert data["series"][1]["points"][25] == [None, None]
    np.testing.assert_allclose(data["series"][0]["points"], paths["Adam (lr=0.1)"])
    png = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text).group(1)
    import base64

    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"


STUB = r"""
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const data = page.match(/<script id="data" type="application\/json">([\s\S]*?)<\/script>/)[1];
const code = page.match(/<script>\n([\s\S]*?)<\/script>/)[1];
const calls = {arc: 0, lineTo: 0};
const ctx = new Proxy({}, {get: (t, k) => k in calls ? () => { calls[k]++; } : (k in t ? t[k] : () => {}),
                           set: (t, k, v) => { t[k] = v; return true; }});
const els = {};
function el(id) {
  if (!els[id]) els[id] = {id, textContent: id === "data" ? data : "", innerHTML: "", value: 0, children: [],
    getContext: () => ctx, addEventListener(ev, fn) { this["on" + ev] = fn; },
    appendChild(c) { this.children.push(c); return c; },
    get firstChild() { return this._first || (this._first = el(id + "_box")); }};
  return els[id];
}
let made = 0;
global.document = {getElementById: el, createElement: () => el("made" + made++), createTextNode: t => ({t})};
global.setInterval = () => 1; global.clearInterval = () => {};
eval(code);
const atStart = {...calls};
el("last").onclick();
const out = Object.keys(els).filter(k => /^r\d+$/.test(k)).map(k => els[k].textContent);
console.log(JSON.stringify({atStart, atEnd: calls, step: el("stepno").textContent, readouts: out}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_html_script_runs(tmp_path: Path, paths: dict[str, np.ndarray]) -> None:
    """Run the page's script in node against a minimal DOM: it draws, and 'last' jumps to the final step."""
    page = animation.write_html(ROSENBROCK, paths, tmp_path / "p.html", losses={k: np.arange(41.0) for k in paths})
    (tmp_path / "stub.js").write_text(STUB)
    done = subprocess.run(["node", str(tmp_path / "stub.js"), str(page)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    finite = [int(np.isfinite(p).all(axis=1).sum()) for p in paths.values()]  # SGD diverges on the way
    assert result["step"] == 40 and result["atEnd"]["lineTo"] == sum(n - 1 for n in finite)
    assert result["readouts"][0].startswith("step 40: (") and result["readouts"][0].endswith("f = 40.0000")


def test_write_comparison_folder(tmp_path: Path) -> None:
    res = compare("rosenbrock", ["adam", "sgd"], steps=30, grid=[1e-3, 1e-2, 0.1])
    written = write_comparison(res, tmp_path / "out", fmt="png", frames=5)
    assert set(written) == {"results", "loss", "sensitivity", "paths", "gif", "html", "inside_adam"}
    for key in ("loss", "sensitivity", "paths", "inside_adam"):
        assert written[key].suffix == ".png" and written[key].read_bytes()[:4] == b"\x89PNG"
    assert written["gif"].read_bytes()[:6] == b"GIF89a"
    assert res.disclaimer in written["html"].read_text(encoding="utf-8")
    data = json.loads(written["results"].read_text())
    assert data["problem"] == "rosenbrock" and set(data["optimizers"]) == {"adam", "sgd"}


def test_write_comparison_svg_and_learning_problem(tmp_path: Path) -> None:
    res = compare("digits", ["adam"], epochs=1, grid=[0.01, 0.1], seeds=2)
    written = write_comparison(res, tmp_path, fmt="svg")
    assert set(written) == {"results", "loss", "sensitivity"}  # no paths for a learning problem
    assert b"<svg" in written["loss"].read_bytes()
