"""The lab's commands: adamlab functions, compare and claims (in-process and as a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from adamlab.cli.main import main
from adamlab.lab import claims as claims_module
from adamlab.lab.functions import FUNCTIONS

SRC = Path(__file__).resolve().parents[1] / "src"


def test_functions_lists_every_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["functions"]) == 0
    out = capsys.readouterr().out
    for name in FUNCTIONS:
        assert f"\n{name} " in out
    assert "digits" in out and "-78.3323" in out
    assert main(["functions", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rosen = next(f for f in data["functions"] if f["name"] == "rosenbrock")
    assert rosen["minima"] == [[1.0, 1.0]] and rosen["min_value"] == 0.0 and rosen["start"] == [-1.2, 1.0]
    assert [p["name"] for p in data["learning_problems"]] == ["digits"]


def test_compare_writes_pictures_and_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    code = main(["compare", "booth", "--optimizers", "adam,sgd", "--steps", "30", "--grid", "1e-3,1,4",
                 "--out", str(out), "--no-animation"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "adam" in text and "Not a benchmark" in text and "results.json" in text
    data = json.loads((out / "results.json").read_text())
    assert data["problem"] == "booth" and set(data["optimizers"]) == {"adam", "sgd"}
    for r in data["optimizers"].values():
        assert isinstance(r["lr"], float) and isinstance(r["final_loss"], float)
        assert r["diverged"] is False and len(r["curve"]) == 31
    assert len(data["grid"]) == 4
    for name in ("paths.png", "loss.png", "sensitivity.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert not (out / "paths.gif").exists()


def test_compare_json_and_tune_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compare", "rosenbrock", "--optimizers", "sgd", "--tune", "none", "--lr", "0.01", "--steps", "50",
                 "--out", str(tmp_path), "--no-animation", "--json", "--format", "svg"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    sgd = data["optimizers"]["sgd"]
    assert sgd["lr"] == 0.01 and sgd["diverged"] is True and sgd["final_loss"] is None and data["grid"] is None
    assert b"<svg" in (tmp_path / "loss.svg").read_bytes()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "rosenbrok"], "unknown problem 'rosenbrok'; choose one of: ackley, beale"),
        (["compare", "booth", "--optimizers", "adam,adamm"], "optimizer must be one of adam, "),
        (["compare", "booth", "--steps", "5", "--epochs", "1"], "not allowed with argument"),
        (["compare", "booth", "--epochs", "1"], "epochs apply to learning problems"),
        (["compare", "booth", "--tune", "bayes"], "--tune must be one of grid, none"),
        (["compare", "booth", "--objective", "best"], "--objective must be one of final, mean"),
        (["compare", "booth", "--format", "jpg"], "--format must be one of png, svg, pdf"),
        (["compare", "booth", "--grid", "1,2"], "--grid must be LO,HI,N"),
        (["compare", "booth", "--lr", "0.1"], "--lr sets a fixed learning rate: use it with --tune none"),
        (["claims", "--format", "gif"], "--format must be one of png, svg, pdf"),
    ],
)
def test_mistakes_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_claims_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = claims_module.ClaimsSettings(
        optimizers=("adam", "adagrad"), problems=("booth",), steps=20, noise_levels=(0.0, 1.0),
        grid=(0.01, 0.1, 1.0), seeds=1, tune_seeds=1,
    )  # fmt: skip
    monkeypatch.setattr(claims_module.ClaimsSettings, "quick", classmethod(lambda cls: tiny))
    assert main(["claims", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "is not supported" in out and "report written to" in out
    report = (tmp_path / "claims.md").read_text(encoding="utf-8")
    assert "| adagrad | sum | 4 |" in report and (tmp_path / "memory.png").exists()


def test_compare_as_a_subprocess(tmp_path: Path) -> None:
    """The real entry point: stdout carries only the JSON (progress bars go to stderr)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "adamlab", "compare", "booth", "--optimizers", "adam", "--steps", "10",
           "--grid", "0.1,1,2", "--out", str(tmp_path), "--no-animation", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["optimizers"]["adam"]["lr"] in (0.1, 1.0)
    bad = subprocess.run([*cmd[:4], "nope"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "unknown problem 'nope'" in bad.stderr and bad.stdout == ""


BAD_BUDGETS = [
    (["--steps", "1000001", "--tune", "none", "--lr", "0.01"], "--steps must be between 1 and 1,000,000; got 1000001"),
    (["--seeds", "1001", "--noise", "1", "--tune", "none", "--lr", "0.01"], "--seeds must be between 1 and 1,000"),
    (["--grid", "1e-3,1,1001"], "--grid needs finite 0 < LO <= HI and N from 1 to 1000; got '1e-3,1,1001'"),
    (["--grid", "1e-3,1,100000000000"], "--grid needs finite 0 < LO <= HI and N from 1 to 1000"),
    (["--grid", "1e-3,1e400,3"], "--grid needs finite 0 < LO <= HI and N from 1 to 1000; got '1e-3,1e400,3'"),
    (["--grid", "inf,inf,3"], "--grid needs finite 0 < LO <= HI"),
    (["--grid", "nan,1,3"], "--grid needs finite 0 < LO <= HI"),
    (["--grid", "1,0.1,3"], "--grid needs finite 0 < LO <= HI"),
    (["--grid", "1e-3,1,1000", "--steps", "1000000"], "× steps must be at most 100,000,000; got 1,000 runs"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_BUDGETS, ids=[" ".join(e) for e, _ in BAD_BUDGETS])
def test_compare_budget_and_grid_out_of_range_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Caps on --steps, --seeds and --grid; a non-finite grid is refused before NumPy warns about it."""
    argv = ["compare", "rosenbrock", "--optimizers", "sgd", "--out", str(tmp_path / "out"), "--no-animation", *extra]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would be printed before the error line
        code = main(argv if "--steps" in extra else [*argv, "--steps", "2"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert message in captured.err and not (tmp_path / "out").exists()


def test_compare_epochs_cap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "digits", "--epochs", "10001"]) == 2
    assert "--epochs must be between 1 and 10,000; got 10001" in capsys.readouterr().err


def test_compare_grid_warning_free_as_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "adamlab", "compare", "rosenbrock", "--steps", "50", "--no-animation",
           "--out", str(tmp_path), "--grid", "1e-3,1e400,3"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "adamlab: error: --grid needs finite 0 < LO <= HI and N from 1 to 1000; got '1e-3,1e400,3'\n"
