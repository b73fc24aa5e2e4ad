"""Run one case along one code path and return the trajectory, for the framework's run and for adamlab's.

Each runner returns the parameters of the chaotic problem (:mod:`.problems`) after every step, as a NumPy array of
shape ``(steps, 64)`` in the run's dtype. Gradients come from :func:`problems.gradient` on each run's own
parameters, negated for ``maximize`` cases (so those still descend the loss). Frameworks are imported inside the
runners only.

Keras runs on the backend its process is configured with; the other backend runs in a fresh process
(``python -m adamlab.conformance.runners``, :func:`keras_in_subprocess`), since Keras picks its backend once
per process.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from adamlab.conformance.cases import Case, Schedule, cases
from adamlab.conformance.problems import Problem, flatten, gradient

#: the import each Keras backend needs
KERAS_BACKENDS: dict[str, str] = {"torch": "torch", "jax": "jax"}


# --- torch -------------------------------------------------------------------------------------------------


def run_torch(case: Case, problem: Problem, dtype: str, path: str) -> np.ndarray:
    """``path``: ``"torch"`` (torch.optim, its default CPU path: the for-loop), ``"foreach"`` (torch.optim with
    ``foreach=True``), ``"plain"`` / ``"fast"`` (adamlab.torch with ``fast=False`` / ``True``).

    Two param groups, the second with half the learning rate, as a model with per-group settings."""
    import torch

    import adamlab.torch

    options = dict(case.options)
    schedule = options.get("lr") if isinstance(options.get("lr"), Schedule) else None
    if schedule is not None:
        options["lr"] = schedule.lr
    lr = options["lr"]  # every torch case sets it (the second group gets half)
    sign = -1.0 if case.maximize else 1.0
    params = [torch.nn.Parameter(torch.from_numpy(p)) for p in problem.initial(dtype)]
    groups = [{"params": [params[0]]}, {"params": [params[1]], "lr": lr * 0.5}]
    if path in ("torch", "foreach"):
        extra = {"foreach": True} if path == "foreach" else {}
        opt = getattr(torch.optim, case.alias)(groups, **options, **extra)
    else:
        opt = getattr(adamlab.torch, case.alias)(groups, **options, fast=path == "fast")
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, schedule.rate) if schedule else None
    q = problem.matrix(dtype)
    path = []
    for _ in range(problem.steps):
        grads = gradient([p.detach().numpy() for p in params], q)
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.from_numpy(np.ascontiguousarray(sign * g).astype(dtype))
        opt.step()
        if scheduler is not None:
            scheduler.step()
        path.append(flatten([p.detach().numpy() for p in params]))
    return np.stack(path)


# --- optax -------------------------------------------------------------------------------------------------


def x64(enabled: bool = True) -> Any:
    """A context in which JAX computes in float64 (``jax.enable_x64``; ``enabled=False``: in its default float32)."""
    import jax

    return jax.enable_x64(enabled)


def run_optax(case: Case, problem: Problem, dtype: str, ours: bool) -> np.ndarray:
    """optax (or adamlab.optax), the whole run one jitted ``lax.scan``; float64 in ``jax.enable_x64``."""
    with x64(dtype == "float64"):
        return np.asarray(_optax_trajectory(case, problem, dtype, ours))


def _optax_trajectory(case: Case, problem: Problem, dtype: str, ours: bool) -> Any:
    import jax
    import jax.numpy as jnp
    import optax

    import adamlab.optax

    options = dict(case.options)
    if isinstance(options.get("learning_rate"), Schedule):
        s = options["learning_rate"]
        options["learning_rate"] = optax.exponential_decay(s.lr, transition_steps=1, decay_rate=s.rate)
    opt = getattr(adamlab.optax if ours else optax, case.alias)(**options)
    q = jnp.asarray(problem.matrix(dtype))

    def body(carry: Any, _: Any) -> Any:
        params, state = carry
        updates, state = opt.update(gradient(params, q), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), jnp.concatenate([p.reshape(-1) for p in params])

    @jax.jit
    def run(params: Any) -> Any:
        _, path = jax.lax.scan(body, (params, opt.init(params)), None, length=problem.steps)
        return path

    return run([jnp.asarray(p) for p in problem.initial(dtype)])


# --- Keras -------------------------------------------------------------------------------------------------


def run_keras(case: Case, problem: Problem, dtype: str, ours: bool) -> np.ndarray:
    """keras.optimizers (or adamlab.keras) on this process's Keras backend: ``apply_gradients`` each step."""
    keras, face = _keras()
    options = dict(case.options)
    if isinstance(options.get("learning_rate"), Schedule):
        s = options["learning_rate"]
        options["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(s.lr, 1, s.rate)
    opt = getattr(face if ours else keras.optimizers, case.alias)(**options)
    variables = [keras.Variable(p, dtype=dtype) for p in problem.initial(dtype)]
    q = problem.matrix(dtype)
    path = []
    for _ in range(problem.steps):
        grads = gradient([_numpy(v) for v in variables], q)
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g, dtype=dtype) for g in grads], variables, strict=True))
        path.append(flatten([_numpy(v) for v in variables]))
    return np.stack(path)


def keras_backend() -> str:
    """The backend Keras uses (or will use) in this process."""
    keras, _ = _keras()
    return keras.backend.backend()


def keras_in_subprocess(backend: str, seed: int, steps: int, optimizers: tuple[str, ...]) -> dict[str, Any]:
    """Run every Keras case of ``optimizers`` on ``backend`` in a fresh process.

    Returns ``{f"{index}:{dtype}:{ours|keras}": final parameters}`` (index into ``cases("keras", seed)``), or
    ``{"error": message}`` when the process failed.
    """
    env = {**os.environ, "KERAS_BACKEND": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"  # float64 variables (float32 runs are the same with it on)
    source = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory() as where:
        out = Path(where) / "keras.npz"
        command = [sys.executable, "-m", "adamlab.conformance.runners", str(seed), str(steps), ",".join(optimizers),
                   str(out)]  # fmt: skip
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0 or not out.exists():
            lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            return {"error": f"the Keras {backend} process failed: {lines[-1] if lines else proc.returncode}"}
        with np.load(out) as data:
            return {key: data[key].copy() for key in data.files}


def _keras_worker(seed: int, steps: int, optimizers: tuple[str, ...], out: str) -> None:
    from adamlab.conformance.cases import DTYPES

    problem = Problem(seed, steps)
    results: dict[str, np.ndarray] = {}
    for index, case in enumerate(cases("keras", seed)):
        if case.optimizer not in optimizers:
            continue
        for dtype in DTYPES:
            results[f"{index}:{dtype}:keras"] = run_keras(case, problem, dtype, ours=False)
            results[f"{index}:{dtype}:ours"] = run_keras(case, problem, dtype, ours=True)
    np.savez(out, **results)
    print(json.dumps({"backend": keras_backend(), "results": len(results)}))


def _numpy(variable: Any) -> np.ndarray:
    """A Keras variable's value as NumPy (torch tensors directly: ``np.array`` on them warns under NumPy 2)."""
    value = variable.value
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


@functools.cache
def _keras() -> tuple[Any, Any]:
    face = importlib.import_module("adamlab.keras")  # first: it picks the torch backend when none is configured
    return importlib.import_module("keras"), face


def backend_installed(backend: str) -> bool:
    return importlib.util.find_spec(KERAS_BACKENDS[backend]) is not None


__all__ = ["backend_installed", "keras_backend", "keras_in_subprocess", "run_keras", "run_optax", "run_torch", "x64"]

if __name__ == "__main__":  # the Keras worker: python -m adamlab.conformance.runners SEED STEPS OPTIMIZERS OUT
    _keras_worker(int(sys.argv[1]), int(sys.argv[2]), tuple(sys.argv[3].split(",")), sys.argv[4])
