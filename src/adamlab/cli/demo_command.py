"""``adamlab demo``: the article's example, x³ − 2x² + 2 minimized by Adam, printed, plotted and, where TensorFlow is
installed, compared with TensorFlow's own run ulp by ulp.

The article ran ``tf.keras.optimizers.Adam(learning_rate=0.05)`` (ε̂ = 1e-7, before bias correction) for 100 steps
from x = 0.001 in float32. The demo runs adamlab's Adam with the keras preset and counts steps as Keras does:
t reaches the rule as a float32 value (Keras casts ``iterations + 1`` to the variable's dtype), so β^t and the
step size are float32 scalars, as in TensorFlow. TensorFlow runs in a separate process (it is not a dependency
of adamlab), only when it is importable by this Python.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import adamlab
from adamlab.conformance.problems import relative_difference, ulp_distance
from adamlab.lab.functions import get_function
from adamlab.rules import Adam

DEFAULT_OUT = "adamlab_demo.png"
X0, LR, STEPS = 0.001, 0.05, 100

ORDER = 10

#: the article's TensorFlow code, run in a fresh process; prints the iterates as JSON
TENSORFLOW_RUN = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
import keras
x0, lr, steps = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
x = tf.Variable(x0, dtype=tf.float32)
opt = tf.keras.optimizers.Adam(learning_rate=lr)
path = []
for _ in range(steps):
    with tf.GradientTape() as tape:
        y = x**3 - 2 * x**2 + 2
    opt.apply_gradients(zip(tape.gradient(y, [x]), [x]))
    path.append(float(x.numpy()))
print(json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__, "backend": keras.backend.backend(),
                  "x": path}))
"""


@dataclasses.dataclass(frozen=True)
class KerasCountAdam(Adam):
    """Adam whose step count t reaches the rule as Keras passes it: a 0-d array of the variable's dtype (here
    float32), so the keras preset computes β^t and α = lr·√(1−β2^t)/(1−β1^t) in float32, as tf.keras does."""

    def coefficients(self, t: Any, state: dict[str, Any]) -> dict[str, Any]:
        return super().coefficients(np.asarray(t, dtype=np.float32), state)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="minimize x^3 - 2x^2 + 2 with Adam, as in the article, plot the path and compare it with TensorFlow's",
        description="Minimize f(x) = x³ − 2x² + 2 with Adam (Keras conventions: lr 0.05, ε̂ = 1e-7, the step "
        "count in float32), starting at x = 0.001, 100 steps in float32, and plot the function with the path. "
        "Where TensorFlow is importable, run the article's tf.keras code too (in a separate process) and print "
        "how many ulps the two paths are apart.",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"plot file, .png/.svg/.pdf (default {DEFAULT_OUT})")
    parser.set_defaults(handler=run)


def article_run() -> Any:
    """adamlab's run of the article's example: a :class:`~adamlab.lab.minimize.MinimizeResult`."""
    rule = KerasCountAdam(lr=LR, eps=1e-7, preset="keras")
    return adamlab.minimize(get_function("cubic"), x0=X0, optimizer=rule, steps=STEPS, grad=_gradient, dtype="float32")


def _gradient(x: np.ndarray) -> np.ndarray:
    """f'(x) = 3x² − 4x, in float32 (the value TensorFlow's autodiff of the article's expression gives)."""
    return 3 * x**2 - 4 * x


def tensorflow_installed() -> bool:
    """Whether this Python can import TensorFlow (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


def tensorflow_run(timeout: float = 600.0) -> dict[str, Any] | None:
    """TensorFlow's iterates of the article's example (``{"x": [...], "tensorflow": version, ...}``), or None when
    TensorFlow is not importable here; ``{"error": message}`` when its run failed."""
    if not tensorflow_installed():
        return None
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    command = [sys.executable, "-c", TENSORFLOW_RUN, repr(X0), repr(LR), str(STEPS)]
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"TensorFlow's run took more than {timeout:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = [line for line in proc.stderr.splitlines() if line.strip()]
        return {"error": tail[-1] if tail else f"exit code {proc.returncode}"}
    return json.loads(lines[-1])


def distance_line(ours: np.ndarray, theirs: dict[str, Any] | None) -> str:
    """One line saying how far adamlab's iterates are from TensorFlow's (or why there is no comparison)."""
    if theirs is None:
        return "TensorFlow is not installed here, so no distance from its trajectory is shown"
    if "error" in theirs:
        return f"TensorFlow is installed, but its run failed: {theirs['error']}"
    reference = np.asarray(theirs["x"], dtype=np.float32)
    what = f"TensorFlow {theirs['tensorflow']} (tf.keras.optimizers.Adam, Keras {theirs['keras']})"
    if reference.shape != ours.shape:
        return f"{what} returned {reference.size} iterates, not {ours.size}: no comparison"
    ulps = ulp_distance(ours, reference)
    if ulps == 0:
        return f"{what}: all {ours.size} iterates identical (0 ulp)"
    first = int(np.argmax(ours != reference)) + 1
    return (
        f"{what}: iterates differ from step {first}, at most {int(ulps)} ulp "
        f"({relative_difference(ours, reference):.1e} relative)"
    )


def run(args: argparse.Namespace) -> int:
    cubic = get_function("cubic")
    res = article_run()
    out = res.plot(
        args.out,
        domain=cubic.domain[0],
        minima=[m[0] for m in cubic.minima],
        title="Adam on f(x) = x³ − 2x² + 2 (lr 0.05, ε̂ 1e-7, keras preset)",
    )
    x_star, f_star = cubic.minima[0][0], cubic.min_value
    print("Adam (keras preset: lr=0.05, eps=1e-7 before bias correction) on f(x) = x^3 - 2x^2 + 2")
    print(f"start x0 = {X0}, {STEPS} steps, float32 (the step count in float32, as Keras counts it)")
    print(f"optimized:  x = {res.x:.6f}   f(x) = {res.fun:.6f}   ({res.message})")
    print(f"analytic:   x = 4/3 = {x_star:.6f}   f = 22/27 = {f_star:.6f}   (local minimum)")
    print(distance_line(np.asarray(res.history.x, dtype=np.float32).reshape(-1), tensorflow_run()))
    print(f"plot written to {Path(out).resolve()}")
    return 0
