"""Run one case twice, with the framework's own optimizer and with adamlab's face for it, on the same problem.

Each runner returns the final parameters (NumPy). Gradients come from :func:`problems.gradient` on each
run's own parameters, negated for ``maximize`` cases (so those still descend the loss). Frameworks are
imported inside the runners only.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from adamlab.conformance.cases import Case, Schedule
from adamlab.conformance.problems import Problem, gradient


def run_torch(case: Case, problem: Problem, ours: bool) -> list[np.ndarray]:
    """torch.optim vs adamlab.torch in float64."""
    import torch

    import adamlab.torch

    options = dict(case.options)
    schedule = options.get("lr") if isinstance(options.get("lr"), Schedule) else None
    if schedule is not None:
        options["lr"] = schedule.lr
    sign = -1.0 if case.maximize else 1.0
    with _torch_default_float64():  # torch.optim.NAdam keeps mu_product in the default dtype
        params = [torch.nn.Parameter(torch.from_numpy(p)) for p in problem.initial()]
        opt = getattr(adamlab.torch if ours else torch.optim, case.alias)(params, **options)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, schedule.rate) if schedule else None
        for t in range(problem.steps):
            grads = gradient([p.detach().numpy() for p in params], t, problem.data)
            for p, g in zip(params, grads, strict=True):
                p.grad = torch.from_numpy(sign * np.asarray(g))
            opt.step()
            if scheduler is not None:
                scheduler.step()
        return [p.detach().numpy().copy() for p in params]


@contextlib.contextmanager
def _torch_default_float64() -> Iterator[None]:
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def x64() -> Any:
    """A context in which JAX computes in float64 (``jax.enable_x64``; ``jax.experimental`` in older JAX)."""
    import jax

    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # pragma: no cover - JAX < 0.7
        from jax.experimental import enable_x64 as enable
    return enable(True)


def run_optax(case: Case, problem: Problem, ours: bool) -> list[np.ndarray]:
    """optax vs adamlab.optax in float64 (``jax_enable_x64``), the whole run one jitted ``lax.scan``."""
    with x64():
        return [np.asarray(p) for p in _optax_trajectory(case, problem, ours)]


def _optax_trajectory(case: Case, problem: Problem, ours: bool) -> Any:
    import jax
    import jax.numpy as jnp
    import optax

    import adamlab.optax

    options = dict(case.options)
    if isinstance(options.get("learning_rate"), Schedule):
        s = options["learning_rate"]
        options["learning_rate"] = optax.exponential_decay(s.lr, transition_steps=1, decay_rate=s.rate)
    opt = getattr(adamlab.optax if ours else optax, case.alias)(**options)
    data = {k: jnp.asarray(v) for k, v in problem.data.items()}

    def body(carry: Any, t: Any) -> Any:
        params, state = carry
        updates, state = opt.update(gradient(params, t, data), state, params)
        return (optax.apply_updates(params, updates), state), None

    @jax.jit
    def run(params: Any) -> Any:
        (params, _), _ = jax.lax.scan(body, (params, opt.init(params)), jnp.arange(problem.steps))
        return params

    return run([jnp.asarray(p) for p in problem.initial()])


def run_keras(case: Case, problem: Problem, ours: bool) -> list[np.ndarray]:
    """keras.optimizers vs adamlab.keras in float32 (Keras variables and arithmetic)."""
    keras, face = _keras()
    options = dict(case.options)
    if isinstance(options.get("learning_rate"), Schedule):
        s = options["learning_rate"]
        options["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(s.lr, 1, s.rate)
    opt = getattr(face if ours else keras.optimizers, case.alias)(**options)
    variables = [keras.Variable(p) for p in problem.initial(np.float32)]
    data32 = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in problem.data.items()}
    for t in range(problem.steps):
        grads = gradient([_numpy(v) for v in variables], t, data32)
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables, strict=True))
    return [_numpy(v).copy() for v in variables]


def _numpy(variable: Any) -> np.ndarray:
    """A Keras variable's value as NumPy (torch tensors directly: ``np.array`` on them warns under NumPy 2)."""
    value = variable.value
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


@functools.cache
def _keras() -> tuple[Any, Any]:
    face = importlib.import_module("adamlab.keras")  # first: it picks the torch backend when none is configured
    return importlib.import_module("keras"), face


RUNNERS = {"torch": run_torch, "optax": run_optax, "keras": run_keras}
