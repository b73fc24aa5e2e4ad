"""Tests for adamlab.lab.plots: formats, validation, robustness and headless import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adamlab.lab import plots

SRC = Path(__file__).resolve().parents[1] / "src"
EXTS = ["png", "svg", "pdf"]


def _check_file(path: Path, ext: str) -> None:
    assert path.is_file() and path.stat().st_size > 0
    data = path.read_bytes()
    if ext == "png":
        assert data.startswith(b"\x89PNG")
    elif ext == "gif":
        assert data.startswith(b"GIF8")
    elif ext == "svg":
        assert b"<svg" in data
    else:
        assert data.startswith(b"%PDF")


def cubic(x):
    return x**3 - 2 * x**2


def rosenbrock(v):
    return (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2


def _path(n: int = 30) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return np.array([-1.5, 2.0]) * (1 - t) + np.array([1.0, 1.0]) * t


@pytest.mark.parametrize("ext", EXTS)
def test_function_path_formats(tmp_path: Path, ext: str) -> None:
    xs = np.linspace(0.2, 1.3, 20)
    (tmp_path / "sub").mkdir()
    out = plots.plot_function_path(cubic, xs, cubic(xs), tmp_path / "sub" / f"f.{ext}", x0=0.0, minima=(4 / 3,))
    assert out == tmp_path / "sub" / f"f.{ext}"
    _check_file(out, ext)


@pytest.mark.parametrize("ext", EXTS)
def test_contour_paths_formats(tmp_path: Path, ext: str) -> None:
    paths = {"Adam (lr=0.05)": _path(), "SGD (lr=0.001)": _path(10)}
    out = plots.plot_contour_paths(rosenbrock, paths, tmp_path / f"c.{ext}", minima=[(1.0, 1.0)])
    _check_file(out, ext)


@pytest.mark.parametrize("ext", EXTS)
def test_loss_curves_formats(tmp_path: Path, ext: str) -> None:
    rng = np.random.default_rng(0)
    curves = {"one run": np.exp(-np.arange(50) / 10), "5 seeds": rng.random((5, 50)) + 0.1}
    out = plots.plot_loss_curves(curves, tmp_path / f"l.{ext}")
    _check_file(out, ext)


def test_save_figure_and_bad_extension(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1])
    _check_file(plots.save_figure(fig, str(tmp_path / "x.PNG")), "png")
    with pytest.raises(ValueError, match=r"the folder .*a/b does not exist$"):  # no folder is created
        plots.save_figure(fig, tmp_path / "a" / "b" / "x.png")
    assert not (tmp_path / "a").exists()
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match=r"afile is a file, not a folder$"):
        plots.save_figure(fig, tmp_path / "afile" / "b" / "x.png")
    with pytest.raises(ValueError, match=r"^out: unsupported file extension '\.xyz'"):
        plots.save_figure(fig, tmp_path / "x.xyz")
    with pytest.raises(ValueError, match="out"):
        plots.plot_loss_curves({"a": np.ones(3)}, tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="out"):
        plots.plot_function_path(cubic, [0.1], [0.0], tmp_path / "noext")
    with pytest.raises(ValueError, match="out"):
        plots.plot_contour_paths(rosenbrock, {"a": _path()}, tmp_path / "x.txt")


def test_non_finite_values_do_not_crash(tmp_path: Path) -> None:
    path = _path()
    path[12] = np.nan
    diverged = _path()
    diverged[20:] = np.inf
    plots.plot_contour_paths(rosenbrock, {"nan": path, "inf": diverged}, tmp_path / "c.png")
    xs = np.array([0.1, 0.5, np.nan, 1.0, 50.0, np.inf])
    with np.errstate(invalid="ignore"):
        fs = cubic(xs)
    plots.plot_function_path(cubic, xs, fs, tmp_path / "f.png", x0=0.0, minima=(4 / 3,))
    runs = np.ones((3, 40))
    runs[1, 25:] = np.nan
    one = np.r_[np.linspace(1, 0, 20), -np.ones(5), [np.inf] * 5]  # crosses zero, then diverges
    out = plots.plot_loss_curves({"seeds": runs, "one": one, "all nan": [np.nan] * 4}, tmp_path / "l.svg")
    _check_file(out, "svg")


def test_torch_functions(tmp_path: Path) -> None:
    plots.plot_function_path(torch.sin, np.linspace(0, 1, 5), np.sin(np.linspace(0, 1, 5)), tmp_path / "f.png")
    fun = lambda v: torch.sin(v[0]) * torch.cos(v[1])  # noqa: E731
    out = plots.plot_contour_paths(fun, {"Adam": torch.tensor(_path())}, tmp_path / "c.png")
    _check_file(out, "png")


def test_pointwise_fallback(tmp_path: Path) -> None:
    calls: list[int] = []

    def scalar_only(v):
        calls.append(1)
        return float(v[0]) ** 2 + float(v[1]) ** 2  # fails on a grid -> point by point

    out = plots.plot_contour_paths(scalar_only, {"p": _path()}, tmp_path / "c.png", log_levels=False)
    _check_file(out, "png")
    assert len(calls) > 1000
    grid = plots._evaluate(scalar_only, np.stack(np.meshgrid([0.0, 1.0], [2.0, 3.0])), 1)
    np.testing.assert_allclose(grid, [[4.0, 5.0], [9.0, 10.0]])
    one_d = plots._evaluate(lambda x: float(x) * 2, np.array([1.0, 2.0]), 0)
    np.testing.assert_allclose(one_d, [2.0, 4.0])
    wrong_shape = plots._evaluate(lambda x: x.sum() if x.ndim else x, np.array([1.0, 2.0]), 0)
    np.testing.assert_allclose(wrong_shape, [1.0, 2.0])
    plots.plot_function_path(lambda x: float(x) ** 2, [0.5], [0.25], tmp_path / "f.pdf", x0=1.0)


def test_import_does_not_load_pyplot() -> None:
    code = "import sys, adamlab.lab.plots; assert 'matplotlib.pyplot' not in sys.modules, 'pyplot loaded'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def _contour_axes(monkeypatch: pytest.MonkeyPatch, paths: dict, **kwargs) -> tuple:
    """Draw ``paths`` with plot_contour_paths; return (xlim, ylim, legend texts) of the figure it built."""
    figs = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: figs.append(fig) or Path(out))
    plots.plot_contour_paths(lambda v: (v[0] - 10) ** 2 + (v[1] - 10) ** 2, paths, "c.png", **kwargs)
    ax = figs[0].axes[0]
    return ax.get_xlim(), ax.get_ylim(), [t.get_text() for t in figs[0].legends[0].get_texts()]


def test_contour_box_fits_a_path_that_leaves_the_default_box(monkeypatch: pytest.MonkeyPatch) -> None:
    far = np.linspace(0, 1, 40)[:, None] * np.array([[10.0, 10.0]])
    (x_lo, x_hi), (y_lo, y_hi), labels = _contour_axes(monkeypatch, {"far": far})
    assert x_lo == -2 and y_lo == -1 and 10.2 < x_hi < 11.5 and 10.2 < y_hi < 11.5  # margin on the moved sides
    assert labels[0] == "far"  # fully in view: no note
    assert _contour_axes(monkeypatch, {"inside": _path()})[:2] == ((-2, 2), (-1, 3))  # the default box unchanged
    runaway = far.copy()
    runaway[-1] = [1e200, -1e200]  # a diverging path cannot shrink the function to a dot
    (x_lo, x_hi), (y_lo, y_hi), labels = _contour_axes(monkeypatch, {"runaway": runaway})
    assert x_hi <= 2 + 10 * 4 * 1.1 and y_lo >= -1 - 10 * 4 * 1.1 and "ends outside the view" in labels[0]


def test_explicit_domain_is_kept_and_a_path_leaving_it_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    far = np.linspace(0, 1, 40)[:, None] * np.array([[10.0, 10.0]])
    xlim, ylim, labels = _contour_axes(monkeypatch, {"far": far, "in": _path()}, domain=((-2, 2), (-1, 3)))
    assert (xlim, ylim) == ((-2, 2), (-1, 3))
    assert labels[:2] == ["far [ends outside the view at (10, 10)]", "in"]


def test_animation_names_a_path_that_leaves_the_box(tmp_path: Path) -> None:
    import json

    from adamlab.lab import animation
    from adamlab.lab.functions import get_function

    f = get_function("rosenbrock")
    far = np.linspace(0, 1, 20)[:, None] * np.array([[9.0, 9.0]]) + np.array(f.start)
    out = animation.write_html(f, {"far": far, "near": far[:2]}, tmp_path / "p.html")
    data = json.loads(out.read_text().split('type="application/json">')[1].split("</script>")[0])
    assert "outside the view" in data["series"][0]["label"] and data["series"][1]["label"] == "near"
    _check_file(animation.write_gif(f, {"far": far}, tmp_path / "p.gif", frames=3), "gif")


def test_loss_curves_are_drawn_at_their_recorded_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """A learning problem records the loss every epoch and at the last step: with x, the point after 20 steps
    of 14 per epoch is drawn at epoch 20/14, not at index 2."""
    figs: list = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: figs.append(fig) or Path(out))
    x = np.array([0, 14, 20]) / 14
    plots.plot_loss_curves({"one": [3.0, 2.0, 1.5], "seeds": [[3.0, 2.0, 1.5], [3.0, 2.5, np.nan]]}, "l.png", x=x)
    lines = figs[0].axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_xdata(), x)
    np.testing.assert_allclose(lines[1].get_xdata(), x)  # the mean over the seeds still finite
    with pytest.raises(ValueError, match="x has 2 positions"):
        plots.plot_loss_curves({"one": [3.0, 2.0, 1.5]}, "l.png", x=[0, 1])
