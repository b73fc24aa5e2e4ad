"""Every text of every picture kind lies inside its figure (no clipped titles, legends or captions).

Each picture is drawn as the lab draws it; every Text that matplotlib actually draws records its window
extent, and the test asserts that it lies within the figure's bounding box (1 pixel of tolerance).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.text import Text

import adamlab
from adamlab.lab import animation, plots
from adamlab.lab.compare import compare
from adamlab.lab.comparison_plots import write_comparison
from paper_fixtures import write_cifar10

#: per drawn text, the verdict of its LAST draw (a figure is drawn several times while its layout settles)
LAST: dict[int, str | None] = {}


@pytest.fixture(autouse=True)
def record_texts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Check every drawn text against the figure's box at draw time."""
    original = Text.draw
    LAST.clear()

    def draw(self: Text, renderer: object) -> None:
        original(self, renderer)
        if not self.get_visible() or not self.get_text().strip() or self.figure is None:
            return
        extent = self.get_window_extent(renderer)
        box = self.figure.get_figure(root=True).bbox
        inside = not (extent.x0 < box.x0 - 1 or extent.y0 < box.y0 - 1 or extent.x1 > box.x1 + 1
                      or extent.y1 > box.y1 + 1)  # fmt: skip
        LAST[id(self)] = None if inside else f"{self.get_text()[:70]!r}: {extent} outside {box}"

    monkeypatch.setattr(Text, "draw", draw)
    yield


def outside() -> list[str]:
    return [v for v in LAST.values() if v is not None]


def _check() -> None:
    assert not outside(), "text outside the figure:\n" + "\n".join(outside())


@pytest.mark.parametrize("name", ["rosenbrock", "saddle", "cubic", "goldstein_price"])
def test_comparison_pictures(name: str, tmp_path: Path) -> None:
    optimizers = ["adam", "nesterov", "adagrad", "rmsprop", "sgd"]
    cmp = compare(name, optimizers, steps=40, grid=np.logspace(-3, 0, 4), tune="grid" if name != "cubic" else "none")
    write_comparison(cmp, tmp_path, frames=3)
    _check()


def test_digits_comparison_pictures(tmp_path: Path) -> None:
    cmp = compare("digits", ["adam", "nesterov", "adagrad", "rmsprop", "sgd"], epochs=1, grid=[0.01, 0.1, 1.0],
                  seeds=2, executor="serial")  # fmt: skip
    write_comparison(cmp, tmp_path)
    _check()


def test_minimize_pictures(tmp_path: Path) -> None:
    res = adamlab.minimize(lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2, [-1.2, 1.0],
                           adamlab.Adam(lr=0.02), 300)  # fmt: skip
    res.plot(tmp_path / "a.png")
    res.plot_loss(tmp_path / "b.png")
    one = adamlab.minimize(lambda x: x**3 - 2 * x**2 + 2, 0.001, adamlab.Adam(lr=0.05), 100)
    one.plot(tmp_path / "c.png", minima=[4 / 3], title="a long title " * 3)
    _check()


def test_gif_frames(tmp_path: Path) -> None:
    cmp = compare("saddle", ["adam", "sgd", "nesterov", "rmsprop"], steps=30, tune="none")
    animation.write_comparison_gif(cmp, tmp_path / "p.gif", frames=3)
    _check()


def test_paper_and_claims_pictures(tmp_path: Path) -> None:
    from adamlab.lab.claims import ClaimsSettings, run_claims, write_claims_report
    from adamlab.lab.paper import Budget, run_figure, write_figure

    grids = {k: (1e-2,) for k in ("adam", "adagrad", "rmsprop", "nesterov", "adadelta")}
    small = Budget("test", 1, grids, examples=256, scale={"hidden": [8, 8]})
    for name in ("fig1", "fig2"):
        write_figure(run_figure(name, small, out=tmp_path, executor="serial"), tmp_path)
    vae = Budget("test", 1, {"adam": (1e-3, 1e-1)}, examples=256, checkpoints=(1,), scale={"hidden": 8, "latent": 2})
    write_figure(run_figure("fig4", vae, out=tmp_path, executor="serial"), tmp_path)
    write_cifar10(tmp_path / "data", per_batch=30)
    cnn = Budget("test", 1, grids, scale={"channels": [4, 4, 8], "hidden": 8})
    write_figure(run_figure("fig3", cnn, data_dir=tmp_path / "data", out=tmp_path, executor="serial"), tmp_path)
    settings = ClaimsSettings(optimizers=("adam", "sgd"), problems=("digits", "booth"), epochs=1, noise_epochs=1,
                              steps=20, noise_levels=(0.0, 1.0), grid=(0.01, 0.1), seeds=1, tune_seeds=1)  # fmt: skip
    write_claims_report(run_claims(settings, executor="serial"), tmp_path)
    _check()


def test_the_check_finds_clipped_text(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2), layout="constrained")
    fig.add_subplot().set_title("a title far too long to fit in a figure only three inches wide, clipped")
    fig.savefig(tmp_path / "clipped.png")  # without save_figure's fitting
    assert outside()
    LAST.clear()
    plots.save_figure(fig, tmp_path / "fitted.png")  # with it
    assert not outside()
