"""``adamlab conformance``: the table, --json, skipped frameworks, errors; in-process and as a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import adamlab.conformance as conformance
from adamlab.cli.main import main


def test_table_lists_each_pair_with_pass(capsys):
    code = main(["conformance", "--frameworks", "torch", "--optimizers", "adam,nadam", "--steps", "30"])
    out = capsys.readouterr().out
    assert code == 0
    assert "torch (float64)" in out and "result: all pass" in out
    assert any(line.startswith("adam ") and "pass (n=4)" in line for line in out.splitlines())
    assert any(line.startswith("nadam ") and "pass (n=3)" in line for line in out.splitlines())


def test_json_has_one_result_per_variant(capsys):
    assert main(["conformance", "--json", "--frameworks", "torch", "--optimizers", "sgd", "--steps", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and report["steps"] == 20
    assert [r["variant"] for r in report["results"]] == [0, 1, 2, 3]
    first = report["results"][0]
    assert first["reference"] == "torch.optim.SGD" and first["dtype"] == "float64"
    assert set(first["max_relative_difference"]) == {"quadratic", "mlp"}
    assert report["missing"] == {"keras/radam": "Keras 3 has no RAdam", "torch/lion": "torch.optim has no Lion"}


def test_frameworks_not_installed_are_listed_as_skipped_with_their_extra(monkeypatch, capsys):
    monkeypatch.setattr(conformance, "installed", lambda fw: fw == "torch")
    assert main(["conformance", "--optimizers", "adadelta", "--steps", "10"]) == 0
    out = capsys.readouterr().out
    assert "skipped: optax (not installed: pip install 'adamlab[jax]')" in out
    assert "skipped: keras (not installed: pip install 'adamlab[keras]')" in out


def test_a_failure_gives_exit_code_1(monkeypatch, capsys):
    monkeypatch.setattr(conformance, "TOLERANCE", {"float64": -1.0, "float32": -1.0})
    assert main(["conformance", "--frameworks", "torch", "--optimizers", "adam", "--steps", "5"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_unknown_framework_is_one_line_and_exit_2(capsys):
    assert main(["conformance", "--frameworks", "mxnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "framework must be one of torch, optax, keras" in err


def test_as_a_subprocess():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "adamlab",
            "conformance",
            "--frameworks",
            "torch",
            "--optimizers",
            "radam",
            "--steps",
            "10",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["optimizer"] == "radam"


def test_empty_lists_and_bad_numbers_are_one_line_and_exit_2(capsys):
    cases = [
        (["--frameworks", ""], "adamlab: error: --frameworks: give at least one of torch, optax, keras; got ''"),
        (["--optimizers", " , "], "adamlab: error: --optimizers: give at least one of adam, adamw"),
        (["--seed", "-1"], "adamlab conformance: argument --seed: --seed must be >= 0; got -1"),
        (["--steps", "0"], "--steps must be between 1 and 1,000,000; got 0"),
        (["--steps", "1000001"], "--steps must be between 1 and 1,000,000"),
    ]
    for args, message in cases:
        assert main(["conformance", "--steps", "2", *args]) == 2, args
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err, captured.err


def test_run_conformance_checks_its_arguments():
    for kwargs, message in [
        (dict(frameworks=()), "frameworks: give at least one of torch, optax, keras"),
        (dict(optimizers=()), "optimizers: give at least one of adam"),
        (dict(seed=-1), "seed must be an integer >= 0; got -1"),
        (dict(steps=0), "steps must be an integer from 1 to 1,000,000; got 0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            conformance.run_conformance(**{"steps": 2, **kwargs})
