"""The rough edges a new user met (issue 12, item 4), each checked the way it was seen."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import adamlab
from adamlab.cli.main import BROKEN_PIPE, main
from adamlab.lab import plots
from adamlab.lab.claims import _noise_budget
from adamlab.lab.compare import compare
from adamlab.lab.functions import get_function
from adamlab.lab.paper.training import OPTIMIZER_LABELS

ROOT = Path(__file__).resolve().parents[1]


def _adamlab(*args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "adamlab", *args], env=env, **kwargs)  # type: ignore[call-overload]


# --- plot paths ----------------------------------------------------------------------------------------


def test_minimize_plot_into_a_missing_folder_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    target = tmp_path / "nonexistent" / "dir" / "a.png"
    assert main(["minimize", "x**2", "--x0", "1", "--plot", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"adamlab: error: {target}: the folder {target.parent} does not exist\n"
    assert not (tmp_path / "nonexistent").exists()  # nothing was created
    (tmp_path / "afile").write_text("")
    assert main(["minimize", "x**2", "--x0", "1", "--plot", str(tmp_path / "afile" / "a.png")]) == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder" in capsys.readouterr().err
    assert main(["minimize", "x**2", "--x0", "1", "--plot", str(tmp_path / "a.jpg")]) == 2
    assert "unsupported file extension '.jpg'" in capsys.readouterr().err


# --- gradients of math.* and numpy.* ---------------------------------------------------------------------


def test_math_sin_is_caught_before_a_wrong_step() -> None:
    with pytest.raises(ValueError, match=r"derivative 2 vs 2\.5403.*torch functions \(torch\.sin"):
        adamlab.minimize(lambda x: math.sin(x) + x**2, 1.0, steps=5)
    with pytest.raises(ValueError, match=r"torch functions \(torch\.sin"):
        adamlab.minimize(lambda v: math.sin(v[0]) + v[1] ** 2, [1.0, 2.0], steps=5)


def test_numpy_sin_gets_the_same_advice() -> None:
    with pytest.raises(ValueError, match=r"Can't call numpy\(\).*torch functions \(torch\.sin"):
        adamlab.minimize(lambda x: np.sin(x) + x**2, 1.0, steps=5)


def test_differentiable_functions_pass_the_check() -> None:
    import torch

    assert adamlab.minimize(lambda x: torch.sin(x) + x**2, 1.0, steps=3).nit == 3
    assert adamlab.minimize(lambda x: abs(x), 1e-9, steps=3).nit == 3  # a kink next to x0 is not a wrong gradient
    assert adamlab.minimize(lambda x: math.sin(x), 1.0, steps=2, grad=np.cos).nit == 2  # grad= given: no check


# --- pipes and the bare command --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("functions",), ("functions", "--json")])
def test_a_closed_pipe_ends_quietly(args: tuple[str, ...]) -> None:
    proc = _adamlab(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before adamlab writes (as `| head` does after its lines)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == BROKEN_PIPE
    assert err == ""


def test_bare_adamlab_prints_usage_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: adamlab")
    for command in ("demo", "minimize", "functions", "compare", "paper", "claims"):
        assert f"    {command}" in out


# --- minimize by name, one label per optimizer, the plot's markers ---------------------------------------


def test_minimize_accepts_a_registered_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["minimize", "rosenbrock", "--steps", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.allclose(out["history"]["x"][0], (-1.2, 1.0), atol=2e-3)  # one small step from the standard start
    assert main(["minimize", "rosenbrock", "--x0", "1"]) == 2
    assert "rosenbrock is 2-D, so give 2" in capsys.readouterr().err


def test_one_label_per_optimizer() -> None:
    res = adamlab.minimize(lambda x: x**2, 1.0, "nesterov", 3)
    assert "optimizer=SGD-Nesterov (lr=" in repr(res)
    cmp = compare("booth", ["nesterov", "sgd"], steps=5, tune="none")
    assert cmp.optimizers["nesterov"].label.startswith("SGD-Nesterov (lr=")
    assert cmp.optimizers["sgd"].label.startswith("SGD (lr=")
    assert OPTIMIZER_LABELS["nesterov"] == "SGD-Nesterov"
    assert adamlab.minimize(lambda x: x**2, 1.0, adamlab.SGD(lr=0.1, momentum=0.9, nesterov=True), 2).__repr__().count(
        "SGD-Nesterov") == 1  # fmt: skip


def _captured_figure(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    figures: list[Figure] = []
    original = plots.save_figure

    def capture(fig: Figure, out: object) -> Path:
        figures.append(fig)
        return original(fig, out)

    monkeypatch.setattr(plots, "save_figure", capture)
    return figures


def test_minimize_plots_show_minimum_expression_equal_axes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = _captured_figure(monkeypatch)
    rosenbrock = get_function("rosenbrock")
    res = adamlab.minimize(rosenbrock, [0.99, 0.99], adamlab.Adam(lr=1e-3), 50)  # ends on the minimum
    res.plot(tmp_path / "a.png", minima=rosenbrock.minima)
    ax = figures[-1].axes[0]
    marks = {line.get_marker(): line.get_zorder() for line in ax.get_lines() if len(line.get_xdata())}
    assert marks["*"] > marks["X"]  # the known-minimum star is drawn over the final marker
    assert ax.get_aspect() == 1.0
    assert "(1−x)² + 100(y−x²)²" in ax.get_title()
    main(["minimize", "x**3 - 2*x**2 + 2", "--x0", "0.5", "--plot", str(tmp_path / "b.png")])
    ax = figures[-1].axes[0]
    assert "x**3 - 2*x**2 + 2" in ax.get_title()


# --- reports, reprs, packaging ---------------------------------------------------------------------------


def test_claims_report_says_the_noise_budget() -> None:
    text = _noise_budget({"noise_epochs": 10, "epochs": 30, "steps": 500})
    assert "10 epochs per noise level" in text and "shorter than the 30 epochs of the speed section" in text


def test_short_reprs_and_notebook_tables() -> None:
    res = adamlab.minimize(lambda x: (x**2).sum(), np.ones(1000), adamlab.Adam(lr=0.1), 200)
    assert len(repr(res)) < 300 and "history=200 steps" in repr(res)
    assert "<table>" in res._repr_html_()
    cmp = compare("booth", ["adam", "sgd"], steps=200, grid=[1e-2, 1e-1])
    assert len(repr(cmp)) < 300 and repr(cmp).startswith("Comparison('booth'")
    assert len(repr(cmp.optimizers["adam"])) < 150
    html = cmp._repr_html_()
    assert "<table>" in html and "Adam (lr=" in html and "not a benchmark" in html.lower()


def test_packaging_files() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "src" / "adamlab" / "py.typed").is_file()
    assert "## [0.1.0]" in (ROOT / "CHANGELOG.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "Adam optimizer: A Quick Introduction" in readme and 'pip install ".[lab]"' in readme
    assert {"mlxtend", "dask[distributed]"} <= {d.split(">")[0] for d in project["optional-dependencies"]["lab"]}
