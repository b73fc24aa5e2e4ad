"""``adamlab conformance``: the table, --json, skipped frameworks and backends, errors; in-process and as a process."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import adamlab.conformance as conformance
from adamlab.cli.main import main


def test_table_lists_each_pair_and_dtype(capsys):
    code = main(["conformance", "--frameworks", "torch", "--optimizers", "adam,nadam", "--steps", "30"])
    out = capsys.readouterr().out
    assert code == 0
    assert "float32" in out and "float64" in out and "torch CPU capability" in out
    lines = out.splitlines()
    adam = [line for line in lines if "adamlab.torch (plain path) vs torch.optim" in line]
    assert adam[0].startswith("adam ") and adam[0].count("identical (n=4)") == 2
    assert any(line.startswith("nadam ") and line.count("identical (n=3)") == 2 for line in lines)
    assert sum("torch.optim foreach vs its for-loop [reference]" in line for line in lines) == 2
    assert "result: every adamlab run identical to its framework's" in out


def test_json_has_one_result_per_variant_pair_and_dtype(capsys):
    assert main(["conformance", "--json", "--frameworks", "torch", "--optimizers", "sgd", "--steps", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and report["steps"] == 20
    results = report["results"]
    assert len(results) == 4 * 2 * 3  # variants × dtypes × pairs (plain, fast, foreach)
    assert {(r["pair"], r["dtype"]) for r in results} == {
        (p, d) for p in ("torch/plain", "torch/fast", "torch/foreach") for d in ("float32", "float64")
    }
    first = results[0]
    assert first["framework_optimizer"] == "torch.optim.SGD" and first["max_ulp_distance"] == 0
    assert first["identical"] is True and first["reference_pair"] is False
    assert report["missing"] == {"keras/radam": "Keras 3 has no RAdam", "torch/lion": "torch.optim has no Lion"}
    assert report["versions"]["torch"]


def test_frameworks_not_installed_are_listed_as_skipped_with_their_extra(monkeypatch, capsys):
    monkeypatch.setattr(conformance, "installed", lambda fw: fw == "torch")
    assert main(["conformance", "--optimizers", "adadelta", "--steps", "10"]) == 0
    out = capsys.readouterr().out
    assert "skipped: optax (not installed: pip install 'adamlab[jax]')" in out
    assert "skipped: keras (not installed: pip install 'adamlab[keras]')" in out


def test_a_keras_backend_not_installed_is_listed_as_skipped(monkeypatch, capsys):
    pytest.importorskip("keras")
    monkeypatch.setattr(conformance.runners, "backend_installed", lambda backend: False)
    monkeypatch.setattr(conformance.runners, "keras_backend", lambda: "torch")
    assert main(["conformance", "--frameworks", "keras", "--optimizers", "sgd", "--steps", "5"]) == 0
    assert "skipped: keras/jax (Keras's jax backend needs jax: not installed)" in capsys.readouterr().out


def test_a_failed_keras_process_is_a_failure(monkeypatch, capsys):
    pytest.importorskip("keras")
    monkeypatch.setattr(conformance.runners, "keras_backend", lambda: "torch")
    monkeypatch.setattr(conformance.runners, "backend_installed", lambda backend: True)
    failed = {"error": "the Keras jax process failed"}
    monkeypatch.setattr(conformance.runners, "keras_in_subprocess", lambda *args: failed)
    assert main(["conformance", "--frameworks", "keras", "--optimizers", "sgd", "--steps", "5"]) == 1
    out = capsys.readouterr().out
    assert "error (see --json)" in out and "result: 8 run(s) not identical" in out


def test_unknown_framework_is_one_line_and_exit_2(capsys):
    assert main(["conformance", "--frameworks", "mxnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "framework must be one of torch, optax, keras" in err


def test_as_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "adamlab", "conformance", "--frameworks", "torch", "--optimizers", "radam",
         "--steps", "10", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert results[0]["optimizer"] == "radam" and {r["pair"] for r in results} >= {"torch/plain", "torch/fast"}


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
