"""The optax preset against optax itself, bit for bit, as users run it: one jitted train step per step.

Each alias of the optax face (``adamlab.optax.adam`` …) and optax's own alias of the same name train the chaotic
problem of the conformance check (½·xᵀQx + 0.1·Σ sin 3x, 64 parameters in two tensors) for 300 steps, in
float32 and in float64 (``jax.enable_x64``), each step ``jax.jit(grad → update → apply_updates)``. The final
parameters must be equal (``np.array_equal``): on this problem a one-bit difference in any step grows into a
visible one. The whole-run ``lax.scan`` form runs in tests/conformance.

What it takes (docs/fidelity.md): each rule's optax order writes optax's transformations operation for operation
(``(1−β)·g + β·m``, ``m / (1−β^t)``, ``−lr·u`` …, ``rsqrt(s + ε)·g`` as ``1/√(s + ε)·g``) and the face computes
a step's scalars once for the whole tree, as optax does, so that XLA fuses and rounds both graphs alike.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402

import adamlab.optax  # noqa: E402
from adamlab.conformance.problems import Problem, flatten, gradient  # noqa: E402

STEPS = 300
PROBLEM = Problem(seed=3, steps=STEPS)

CASES = [
    ("adam", {"learning_rate": 1e-2}),
    ("adam", {"learning_rate": 1e-2, "b1": 0.8, "b2": 0.99, "eps": 1e-6, "eps_root": 1e-9}),
    ("adam", {"learning_rate": "schedule", "nesterov": True}),
    ("nadam", {"learning_rate": 1e-2}),
    ("adamw", {"learning_rate": 1e-2, "weight_decay": 0.1, "mask": [True, False]}),
    ("nadamw", {"learning_rate": 1e-2, "weight_decay": 0.1}),
    ("adamax", {"learning_rate": 1e-2}),
    ("adamaxw", {"learning_rate": 1e-2, "weight_decay": 0.1}),
    ("amsgrad", {"learning_rate": 1e-2, "eps_root": 1e-9}),
    ("radam", {"learning_rate": 1e-2}),
    ("radam", {"learning_rate": 1e-2, "nesterov": True, "threshold": 4.5}),
    ("sgd", {"learning_rate": 1e-2}),
    ("sgd", {"learning_rate": 1e-2, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"learning_rate": "schedule", "momentum": 0.9}),
    ("adagrad", {"learning_rate": 1e-1}),
    ("rmsprop", {"learning_rate": 1e-2}),
    ("rmsprop", {"learning_rate": 1e-2, "centered": True, "momentum": 0.9}),
    ("rmsprop", {"learning_rate": 1e-2, "eps_in_sqrt": False, "momentum": 0.5}),
    ("adadelta", {"learning_rate": 1.0, "weight_decay": 0.1}),
    ("adadelta", {}),  # optax 0.2.8: no learning rate, the update is +Δ
]


def train(module, alias, options, dtype):
    options = dict(options)
    if options.get("learning_rate") == "schedule":
        options["learning_rate"] = optax.exponential_decay(1e-2, transition_steps=1, decay_rate=0.995)
    opt = getattr(module, alias)(**options)
    q = jnp.asarray(PROBLEM.matrix(dtype))

    @jax.jit
    def step(params, state):
        updates, state = opt.update(gradient(params, q), state, params)
        return optax.apply_updates(params, updates), state

    params = [jnp.asarray(p) for p in PROBLEM.initial(dtype)]
    state = opt.init(params)
    for _ in range(STEPS):
        params, state = step(params, state)
    return flatten(params)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("alias", "options"), CASES, ids=[f"{a}-{i}" for i, (a, _) in enumerate(CASES)])
def test_the_optax_preset_is_optax_bit_for_bit(alias, options, dtype):
    with jax.enable_x64(dtype == "float64"):
        ours = train(adamlab.optax, alias, options, dtype)
        theirs = train(optax, alias, options, dtype)
    assert ours.dtype == theirs.dtype == np.dtype(dtype)
    assert np.isfinite(theirs).all()
    assert np.array_equal(ours, theirs), f"relative difference {np.abs(ours - theirs).max() / np.abs(theirs).max():.1e}"


def test_a_rule_from_another_preset_is_not_optax():
    """The check can fail: the torch preset's Adam in optax's clothes ends elsewhere on this problem."""
    with jax.enable_x64(True):
        ours = train(_Preset("torch"), "adam", {"learning_rate": 1e-2}, "float64")
        theirs = train(optax, "adam", {"learning_rate": 1e-2}, "float64")
    assert not np.array_equal(ours, theirs)


class _Preset:
    """``adamlab.optax`` with another preset (its aliases take ``preset=``)."""

    def __init__(self, preset: str) -> None:
        self.preset = preset

    def __getattr__(self, alias: str):
        return lambda **options: getattr(adamlab.optax, alias)(**options, preset=self.preset)
