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


@pytest.mark.parametrize(
    ("layouts", "message"),
    [
        ("1000000x1000000", "layout '1000000x1000000' has 1,000,000,000,000 parameters; the benchmark takes at most"),
        ("99999999999999x1", "layout '99999999999999x1' has more than 1,000,000 tensors"),
        ("1x301M", "the benchmark takes at most 300,000,000"),
    ],
)
def test_cli_layout_too_large_is_one_line(layouts, message, capsys):
    assert main(["bench", "step", "--layouts", layouts, "--repeat", "1", "--rules", "adam", "--no-memory"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_cli_out_of_memory_is_one_line(monkeypatch, capsys):
    """torch's failed allocation (a RuntimeError) becomes one line and exit code 2."""
    import adamlab.lab.step_benchmark as step_benchmark

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 4000000000000 bytes. Error code 12 (Cannot allocate memory)")  # fmt: skip

    monkeypatch.setattr(step_benchmark, "Ceiling", no_memory)
    assert main(["bench", "step", "--layouts", "2x10", "--repeat", "1", "--rules", "adam", "--no-flush"]) == 2
    err = capsys.readouterr().err
    expected = "out of memory: the benchmark's arrays do not fit in this machine's memory: use smaller --layouts"
    assert err == f"adamlab: error: {expected}\n"


def test_repeat_is_bounded(capsys):
    assert main(["bench", "step", "--layouts", "2x10", "--repeat", "1001"]) == 2
    assert "--repeat must be between 1 and 1,000; got 1001" in capsys.readouterr().err
    with pytest.raises(ValueError, match="repeat must be an integer from 1 to 1,000; got 0"):
        run_benchmark(["2x10"], ["sgd"], repeat=0)
