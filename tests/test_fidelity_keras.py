"""The keras preset against Keras 3 itself, bit for bit, on Keras's torch backend and on its jax backend.

Keras computes a step differently per backend: on torch its ``torch_*.py`` optimizers replace ``update_step`` with
``torch._foreach_*`` operations (and decay the weights by one float32 factor 1 − λ·lr), elsewhere the
backend-neutral ``update_step`` runs, eagerly or inside ``jax.jit``. Each face class and Keras's class of the same
name train the chaotic problem of the conformance check for 300 steps from the same start, in float32 and float64,
and must end equal (``np.array_equal``); ``model.fit`` of a small network must end with equal weights too.

Keras picks its backend once per process, so each backend runs in a fresh process: this module is also the
worker (``python tests/test_fidelity_keras.py BACKEND`` prints one JSON line of results).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

STEPS = 300
CASES = [
    ("Adam", {"learning_rate": 1e-2, "amsgrad": True, "weight_decay": 0.05}),
    ("AdamW", {"learning_rate": 1e-2}),
    ("Adamax", {"learning_rate": 1e-2, "weight_decay": 0.05}),
    ("Nadam", {"learning_rate": 1e-2, "weight_decay": 0.05}),
    ("SGD", {"learning_rate": 1e-2, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("Adagrad", {"learning_rate": 0.1, "weight_decay": 0.05}),
    ("RMSprop", {"learning_rate": 1e-2, "momentum": 0.9, "centered": True, "weight_decay": 0.05}),
    ("Adadelta", {"learning_rate": 1.0, "weight_decay": 0.05}),
    ("Lion", {"learning_rate": 1e-3, "beta_1": 0.85, "weight_decay": 0.05}),
    ("Adafactor", {"learning_rate": 1e-2}),
    (
        "Adafactor",
        {
            "learning_rate": 1e-2,
            "beta_2_decay": -0.6,
            "epsilon_1": 1e-20,
            "epsilon_2": 1e-2,
            "clip_threshold": 0.7,
            "weight_decay": 0.05,
        },
    ),
]
FIT = ["Adam", "Nadam", "RMSprop"]
#: how each backend steps: the torch backend eagerly (its foreach code), jax inside jax.jit (stateless_apply)
MODES = {"torch": "apply_gradients", "jax": "jit"}
#: each case's name in the checks: the class name, numbered from the second case of a class on (Adafactor, Adafactor2)
LABELS = [name + (str(n) if (n := [c for c, _ in CASES[: i + 1]].count(name)) > 1 else "") for i, (name, _) in
          enumerate(CASES)]  # fmt: skip
CHECKS = [f"{label}/{dtype}" for label in LABELS for dtype in ("float32", "float64")] + [f"fit/{n}" for n in FIT]


# --- the worker (runs in a fresh process with KERAS_BACKEND set) -------------------------------------------


def _chaotic(module, name, options, dtype, mode):
    import keras

    from adamlab.conformance.problems import Problem, flatten, gradient

    problem = Problem(seed=5, steps=STEPS)
    q = problem.matrix(dtype)
    variables = [keras.Variable(p, dtype=dtype) for p in problem.initial(dtype)]
    opt = getattr(module, name)(**options)
    if mode == "apply_gradients":
        for _ in range(STEPS):
            grads = gradient([_numpy(v.value) for v in variables], q)
            grads = [keras.ops.convert_to_tensor(g, dtype=dtype) for g in grads]
            opt.apply_gradients(zip(grads, variables, strict=True))
        return flatten([_numpy(v.value) for v in variables])
    import jax

    opt.build(variables)
    step = jax.jit(lambda values, state, grads: opt.stateless_apply(state, grads, values))
    values, state = [v.value for v in variables], [v.value for v in opt.variables]
    for _ in range(STEPS):
        values, state = step(values, state, gradient(values, jax.numpy.asarray(q)))
    return flatten(values)


def _fit(module, name):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = np.sin(x.sum(axis=1, keepdims=True))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=getattr(module, name)(learning_rate=1e-2), loss="mse")
    model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0)
    return np.concatenate([w.reshape(-1) for w in model.get_weights()])


def _numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def worker(backend: str) -> dict[str, dict]:
    import importlib

    face = importlib.import_module("adamlab.keras")  # first: it picks the backend KERAS_BACKEND names
    keras = importlib.import_module("keras")

    assert keras.backend.backend() == backend
    out = {}
    for label, (name, options) in zip(LABELS, CASES, strict=True):
        for dtype in ("float32", "float64"):
            ours = _chaotic(face, name, options, dtype, MODES[backend])
            theirs = _chaotic(keras.optimizers, name, options, dtype, MODES[backend])
            out[f"{label}/{dtype}"] = _verdict(ours, theirs, dtype)
    for name in FIT:
        out[f"fit/{name}"] = _verdict(_fit(face, name), _fit(keras.optimizers, name), "float32")
    return out


def _verdict(ours, theirs, dtype):
    return {
        "identical": bool(np.array_equal(ours, theirs)),
        "dtypes": [str(ours.dtype), str(theirs.dtype), dtype],
        "finite": bool(np.isfinite(theirs).all()),
        "relative": float(np.abs(ours - theirs).max() / np.abs(theirs).max()),
    }


# --- the tests -----------------------------------------------------------------------------------------------


def _run_worker(backend: str) -> dict[str, dict]:
    pytest.importorskip("keras")
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_ENABLE_X64": "1"}  # x64: jax's float64 variables
    proc = subprocess.run([sys.executable, __file__, backend], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def torch_backend():
    return _run_worker("torch")


@pytest.fixture(scope="module")
def jax_backend():
    return _run_worker("jax")


def _check(results, check):
    result = results[check]
    assert result["finite"], result
    assert result["dtypes"][0] == result["dtypes"][1] == result["dtypes"][2], result
    assert result["identical"], f"{check}: relative difference {result['relative']:.1e}"


@pytest.mark.parametrize("check", CHECKS)
def test_on_keras_s_torch_backend(torch_backend, check):
    _check(torch_backend, check)


@pytest.mark.parametrize("check", CHECKS)
def test_on_keras_s_jax_backend_under_jit(jax_backend, check):
    _check(jax_backend, check)


if __name__ == "__main__":
    print(json.dumps(worker(sys.argv[1])))
