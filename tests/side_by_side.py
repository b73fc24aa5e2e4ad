"""Runs of a framework's optimizer and adamlab's face for it on the same chaotic problem (for the Lion and
Adafactor tests): each returns both final parameter lists (NumPy), so a test can compare them bit for bit.

The problem is a per-element quadratic plus 0.3·cos(3θ) with a fixed random offset (its curvature changes
sign, so last-bit differences would grow instead of dying out), on tensors of several ranks: a vector, a
matrix, a one-column matrix, a rank-3 tensor and a 0-d scalar (optax's default factors only axes ≥ 128
long, so its runs add a 130×129 matrix). ``python tests/side_by_side.py NAME JSON`` runs the Keras
comparison of class NAME for each keyword dict of the JSON list on the configured Keras backend and prints
the outcomes (for the tests' jax-backend subprocess).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

SHAPES: tuple[tuple[int, ...], ...] = ((8,), (4, 8), (8, 1), (3, 5, 7), ())


def problem(shapes: tuple[tuple[int, ...], ...] = SHAPES, dtype: Any = np.float64) -> tuple[list, list]:
    """(starting points, offsets) of the problem, one array per shape."""
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    return start, [rng.standard_normal(s).astype(dtype) for s in shapes]


def gradient(xp: Any, params: list, offsets: list) -> list:
    return [0.5 * p + a + 0.3 * xp.cos(3 * p) for p, a in zip(params, offsets, strict=True)]


def torch_runs(make_ref: Any, make_ours: Any, dtype: Any, steps: int = 300, shapes: Any = SHAPES) -> tuple:
    """(torch.optim's params, adamlab's params, torch's state, adamlab's state) after ``steps`` steps."""
    import torch

    init, offsets = problem(shapes)
    offsets = [torch.tensor(a, dtype=dtype) for a in offsets]
    out = []
    for make in (make_ref, make_ours):
        params = [torch.nn.Parameter(torch.tensor(p, dtype=dtype)) for p in init]
        opt = make(params)
        for _ in range(steps):
            for p, g in zip(params, gradient(torch, [p.detach() for p in params], offsets), strict=True):
                p.grad = g
            opt.step()
        out.append((params, opt))
    (ref, ref_opt), (ours, our_opt) = out
    states = [[dict(o.state[p]) for p in ps] for o, ps in ((ref_opt, ref), (our_opt, ours))]
    return [p.detach() for p in ref], [p.detach() for p in ours], *states


def optax_runs(ref: Any, ours: Any, dtype: Any, steps: int = 300, shapes: Any = SHAPES) -> tuple:
    """(optax's params, adamlab's params, optax's state, adamlab's state), each run one jitted ``lax.scan``."""
    import jax
    import jax.numpy as jnp
    import optax

    init, offsets = problem(shapes)
    offsets = [jnp.asarray(a, dtype) for a in offsets]
    out = []
    for opt in (ref, ours):

        def body(carry: Any, _: Any, opt: Any = opt) -> Any:
            params, state = carry
            updates, state = opt.update(gradient(jnp, params, offsets), state, params)
            return (optax.apply_updates(params, updates), state), None

        @jax.jit
        def run(params: Any, opt: Any = opt, body: Any = body) -> Any:
            (params, state), _ = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
            return params, state

        out.append(run([jnp.asarray(p, dtype) for p in init]))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def keras_runs(name: str, kwargs: dict[str, Any], steps: int = 300, shapes: Any = SHAPES) -> tuple[list, list]:
    """(Keras's params, adamlab's params) in float32 on the configured Keras backend (eager apply_gradients)."""
    import keras

    import adamlab.keras

    init, offsets = problem(shapes, np.float32)
    out = []
    for module in (keras.optimizers, adamlab.keras):
        opt = getattr(module, name)(**kwargs)
        variables = [keras.Variable(p) for p in init]
        for _ in range(steps):
            values = [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in variables]
            grads = [keras.ops.convert_to_tensor(g.astype(np.float32)) for g in gradient(np, values, offsets)]
            opt.apply_gradients(zip(grads, variables, strict=True))
        out.append([np.asarray(keras.ops.convert_to_numpy(v.value)) for v in variables])
    return out[0], out[1]


def keras_equal(name: str, kwargs: dict[str, Any], steps: int = 300) -> bool:
    ref, ours = keras_runs(name, kwargs, steps)
    return all(np.array_equal(a, b) for a, b in zip(ref, ours, strict=True))


def keras_in_subprocess(name: str, cases: list[dict[str, Any]], backend: str, home: str) -> dict[str, Any]:
    """Run :func:`keras_equal` for each of ``cases`` in a fresh interpreter with ``KERAS_BACKEND=backend``."""
    import os
    import subprocess

    env = {**os.environ, "KERAS_BACKEND": backend, "KERAS_HOME": home, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, __file__, name, json.dumps(cases)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.splitlines()[-1])


if __name__ == "__main__":  # python tests/side_by_side.py Lion '[{"learning_rate": 0.01}]'
    import keras

    name, cases = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"backend": keras.backend.backend(), "equal": [keras_equal(name, kw) for kw in cases]}))
