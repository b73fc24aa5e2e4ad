"""The demo (the article's example) against TensorFlow, bit for bit.

TensorFlow is not a dependency, so the reference is TensorFlow's own run of the article's code recorded once
(tests/data/tensorflow_article.json: TensorFlow 2.21 / Keras 3.15 on CPU, by the demo's ``TENSORFLOW_RUN``), and
the demo's live comparison runs where TensorFlow is importable. The recording is the framework's output, not
adamlab's: the test fails if adamlab's arithmetic moves by one bit in any of the 100 steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adamlab.cli import demo_command
from adamlab.rules import moments

RECORDED = json.loads((Path(__file__).parent / "data" / "tensorflow_article.json").read_text())


def tensorflow_path() -> np.ndarray:
    return np.array([int(b, 16) for b in RECORDED["x_bits"]], dtype=np.uint32).view(np.float32)


def demo_path() -> np.ndarray:
    return np.asarray(demo_command.article_run().history.x, dtype=np.float32).reshape(-1)


def test_the_demo_path_is_tensorflow_s_bit_for_bit():
    ours, theirs = demo_path(), tensorflow_path()
    assert ours.shape == theirs.shape == (100,)
    assert np.array_equal(ours, theirs)
    assert demo_command.distance_line(ours, {"tensorflow": "2.21.0", "keras": "3.15.1", "x": theirs.tolist()}) == (
        "TensorFlow 2.21.0 (tf.keras.optimizers.Adam, Keras 3.15.1): all 100 iterates identical (0 ulp)"
    )


def test_numpy_s_own_powf_would_move_the_path(monkeypatch):
    """β^t through NumPy's float32 pow (not TensorFlow's: float64, rounded once) differs at step 9 (β2^9)."""
    monkeypatch.setattr(moments, "keras_power", lambda x, t: moments.like_step(x, t) ** t)
    monkeypatch.setattr("adamlab.rules.adam.keras_power", lambda x, t: moments.like_step(x, t) ** t)
    ours, theirs = demo_path(), tensorflow_path()
    assert not np.array_equal(ours, theirs)
    assert int(np.argmax(ours != theirs)) + 1 == 9


def test_a_host_step_count_is_not_tensorflow_s():
    """With adamlab's default host arithmetic (t a Python int, bias corrections in float64) the path differs."""
    import adamlab
    from adamlab.lab.functions import get_function

    res = adamlab.minimize(get_function("cubic"), x0=0.001, optimizer=adamlab.Adam(lr=0.05, eps=1e-7, preset="keras"),
                           steps=100, grad=demo_command._gradient, dtype="float32")  # fmt: skip
    recorded = {"tensorflow": "2.21.0", "keras": "3.15.1", "x": tensorflow_path().tolist()}
    line = demo_command.distance_line(np.asarray(res.history.x, np.float32).reshape(-1), recorded)
    assert "iterates differ from step 1, at most" in line and "ulp" in line


def test_distance_line_without_tensorflow_and_after_a_failure():
    ours = demo_path()
    assert demo_command.distance_line(ours, None) == (
        "TensorFlow is not installed here, so no distance from its trajectory is shown"
    )
    assert demo_command.distance_line(ours, {"error": "boom"}) == "TensorFlow is installed, but its run failed: boom"
    nudged = ours.copy()
    nudged[41] = np.nextafter(nudged[41], np.float32(2))
    line = demo_command.distance_line(ours, {"tensorflow": "x", "keras": "y", "x": nudged.tolist()})
    assert line.startswith("TensorFlow x (tf.keras.optimizers.Adam, Keras y): ")
    assert "iterates differ from step 42, at most 1 ulp (" in line


def test_the_demo_says_so_when_tensorflow_is_missing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(demo_command, "tensorflow_installed", lambda: False)
    from adamlab.cli.main import main

    assert main(["demo", "--out", str(tmp_path / "d.png")]) == 0
    assert "TensorFlow is not installed here, so no distance from its trajectory is shown" in capsys.readouterr().out


@pytest.mark.skipif(not demo_command.tensorflow_installed(), reason="TensorFlow is not installed")
def test_live_tensorflow_run_is_identical():  # runs where TensorFlow is importable (not in CI)
    theirs = demo_command.tensorflow_run()
    assert theirs is not None and "error" not in theirs, theirs
    assert np.array_equal(demo_path(), np.asarray(theirs["x"], dtype=np.float32))
