"""adamlab claims: memory measured from the real optimizer state, and a small end-to-end report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adamlab.lab.claims import ClaimsSettings, measure_state_bytes, memory_verdict, run_claims, write_claims_report

TINY = ClaimsSettings(
    optimizers=("adam", "sgd"), problems=("digits", "booth"), epochs=1, noise_epochs=1, steps=20,
    noise_levels=(0.0, 1.0), grid=(0.01, 0.1, 1.0), seeds=2, tune_seeds=1,
)  # fmt: skip


def test_state_bytes_per_parameter_are_measured() -> None:
    rows = {r["optimizer"]: r for r in measure_state_bytes(("adam", "adagrad", "rmsprop", "sgd", "momentum", "adamax"))}
    assert rows["adam"]["bytes_per_param"] == 8.0 and rows["adam"]["state"] == ["exp_avg", "exp_avg_sq"]
    assert rows["adagrad"]["bytes_per_param"] == 4.0 and rows["rmsprop"]["bytes_per_param"] == 4.0
    assert rows["sgd"]["bytes_per_param"] == 0.0 and rows["momentum"]["bytes_per_param"] == 4.0
    assert rows["adamax"]["state"] == ["exp_avg", "exp_inf"]
    # torch.optim keeps the same tensors; both keep a float32 step tensor per parameter tensor (4 bytes each)
    assert rows["adam"]["torch_optim"] == "torch.optim.Adam" and rows["adam"]["torch_bytes_per_param"] == 8.0
    assert rows["sgd"]["torch_count_bytes_per_param"] == 0.0 < rows["sgd"]["count_bytes_per_param"]  # no step in torch
    # the measurement follows the shapes: one 10-element tensor → a step count of 4/10 bytes per parameter
    (row,) = measure_state_bytes(("adam",), shapes=((10,),))
    assert row["bytes_per_param"] == 8.0 == row["torch_bytes_per_param"]
    assert row["count_bytes_per_param"] == pytest.approx(0.4) == row["torch_count_bytes_per_param"]


def test_memory_verdict_reports_what_was_measured() -> None:
    rows = measure_state_bytes(("adam", "adagrad", "rmsprop"))
    text = memory_verdict(rows)
    assert "Adam keeps 8 bytes" in text and "AdaGrad 4" in text and "is not supported" in text
    fake = [{"optimizer": "adam", "bytes_per_param": 8.0}, {"optimizer": "adagrad", "bytes_per_param": 12.0},
            {"optimizer": "rmsprop", "bytes_per_param": 4.0}]  # fmt: skip
    assert "holds for AdaGrad" in memory_verdict(fake)


def test_report(tmp_path: Path) -> None:
    claims = run_claims(TINY, executor="serial")
    written = write_claims_report(claims, tmp_path)
    report = written["report"].read_text(encoding="utf-8")
    for heading in ("## 1. Memory", "## 2. Robustness to gradient noise", "## 3. Speed of convergence"):
        assert heading in report
    assert "| adam | exp_avg, exp_avg_sq | 8 |" in report and "σ = 1×" in report
    for key in ("memory", "noise", "loss_digits", "loss_booth"):
        assert written[key].read_bytes()[:4] == b"\x89PNG"
    data = json.loads(written["json"].read_text())
    assert set(data) >= {"memory", "speed", "noise", "memory_verdict", "settings"}
    noise = {s["problem"]: s for s in data["noise"]}
    assert noise["booth"]["levels"] == [0.0, 1.0]
    assert noise["booth"]["sigma"][1] == pytest.approx(noise["booth"]["gradient_rms"])
    # noise-free column = the speed comparison with the same budget (booth: same steps and grid)
    speed = data["speed"]["booth"]["optimizers"]
    for name in ("adam", "sgd"):
        assert noise["booth"]["optimizers"][name]["final_loss"][0] == pytest.approx(speed[name]["final_loss"])
    assert np.isfinite(noise["digits"]["optimizers"]["adam"]["final_loss"]).all()
