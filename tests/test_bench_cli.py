"""``adamlab bench step`` on tiny layouts: the report's shape and numbers, in process and as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adamlab.cli.main import main
from adamlab.lab.model_shapes import GPT2_SMALL_PARAMS, RESNET50_PARAMS, layout_shapes, total_params
from adamlab.lab.step_benchmark import RULES, run_benchmark


def test_model_layouts_are_the_real_models():
    assert len(layout_shapes("resnet50")) == 161 and total_params(layout_shapes("resnet50")) == RESNET50_PARAMS
    assert len(layout_shapes("gpt2-small")) == 148 and total_params(layout_shapes("gpt2-small")) == GPT2_SMALL_PARAMS
    assert layout_shapes("10000x1k") == [(1000,)] * 10000 and layout_shapes("1x50M") == [(50_000_000,)]
    with pytest.raises(ValueError, match="layout must be"):
        layout_shapes("bert")


def test_report_rows_and_ratios():
    report = run_benchmark(["3x2000"], ["adam", "rmsprop"], repeat=1, flush=False)
    assert report["meta"]["torch threads"] >= 1
    adam, rmsprop = report["results"]
    assert (adam["params"], adam["tensors"], adam["bytes per param"]) == (6000, 3, 28)
    assert adam["x torch is relative to"] == "torch fused" and rmsprop["x torch is relative to"] == "torch foreach"
    cases = [r["case"] for r in adam["rows"]]
    assert cases == [
        "torch for-loop",
        "torch foreach",
        "torch fused",
        "adamlab",
        "adamlab, grads in flat buffer",
        "adamlab, grads in flat buffer, nonfinite=ignore",
        "ceiling",
    ]
    assert "torch fused" not in [r["case"] for r in rmsprop["rows"]]
    for r in adam["rows"]:
        assert r["Mparam/s"] == pytest.approx(6000 / (r["ms"] / 1e3) / 1e6)
        assert r["GB/s"] == pytest.approx(r["Mparam/s"] * 28 / 1e3)
    ceiling = next(r for r in adam["rows"] if r["case"] == "ceiling")
    fused = next(r for r in adam["rows"] if r["case"] == "torch fused")
    assert ceiling["% ceiling"] == pytest.approx(100) and fused["x torch"] == pytest.approx(1)
    assert RULES["amsgrad"].bytes_per_param == 36 and RULES["sgd"].bytes_per_param == 12


def test_cli_json_in_process(capsys):
    assert main(["bench", "step", "--layouts", "2x100", "--rules", "sgd", "--repeat", "1", "--no-flush", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["rule"] for r in report["results"]] == ["sgd"] and report["results"][0]["layout"] == "2x100"


def test_cli_errors_are_one_line(capsys):
    assert main(["bench", "step", "--layouts", "bert", "--repeat", "1"]) == 2
    assert main(["bench", "step", "--layouts", "2x10", "--rules", "lion", "--repeat", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "layout must be" in err[0] and "rule must be one of" in err[1]


def test_cli_table_as_a_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", "adamlab", "bench", "step", "--layouts", "2x100", "--rules", "adam", "--repeat", "1",
         "--no-flush"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert "| 2x100 (2 tensors) | adam (28 B) | torch fused |" in out.stdout
    assert "| ceiling |" in out.stdout and out.stderr.count("\n") <= 2
