"""The optax face: pure init/update, jit, chain, schedules, pytrees, masks, presets, keywords, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

import adamlab  # noqa: E402
import adamlab.optax  # noqa: E402
from adamlab.conformance.runners import x64  # noqa: E402

PARAMS = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "layers": ({"b": jnp.array([0.1, -0.3])}, jnp.array(2.0))}


def loss(params):
    w, (layer, scale) = params["w"], params["layers"]
    return jnp.sum(jnp.sin(w) ** 2) + jnp.sum((layer["b"] - 1.0) ** 2) * scale**2


def trajectory(opt, params=PARAMS, steps=60, jit=True):
    def step(carry, _):
        params, state = carry
        updates, state = opt.update(jax.grad(loss)(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    def run(params):
        (params, state), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return params, state

    return jax.jit(run)(params) if jit else run(params)


def assert_trees_close(a, b, rtol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=0)


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (lambda: adamlab.optax.adam(1e-2), lambda: optax.adam(1e-2)),
        (lambda: adamlab.optax.adamw(1e-2, weight_decay=0.1), lambda: optax.adamw(1e-2, weight_decay=0.1)),
        (lambda: adamlab.optax.nadam(1e-2), lambda: optax.nadam(1e-2)),
        (lambda: adamlab.optax.radam(1e-2), lambda: optax.radam(1e-2)),
        (lambda: adamlab.optax.rmsprop(1e-2, momentum=0.9), lambda: optax.rmsprop(1e-2, momentum=0.9)),
    ],
    ids=["adam", "adamw", "nadam", "radam", "rmsprop"],
)
def test_float32_under_jit_matches_optax_and_keeps_dtypes(ours, ref):
    (p_ours, s_ours), (p_ref, _) = trajectory(ours()), trajectory(ref())
    assert_trees_close(p_ours, p_ref, rtol=2e-5)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(p_ours))
    assert all(x.dtype == jnp.float32 for s in s_ours.states for x in s.values())
    assert s_ours.count.dtype == jnp.int32 and int(s_ours.count) == 60


def test_inside_chain_with_a_schedule_and_eager_equals_jit():
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.05, 10, 60)
    ours = optax.chain(optax.clip_by_global_norm(1.0), adamlab.optax.adam(schedule, b1=0.8))
    ref = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule, b1=0.8))
    p_jit, _ = trajectory(ours)
    assert_trees_close(p_jit, trajectory(ref)[0], rtol=2e-5)
    assert_trees_close(trajectory(ours, jit=False)[0], p_jit, rtol=1e-6)


def test_float64_with_x64_matches_optax_to_1e_12():
    with x64():
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), PARAMS)
        for ours, ref in [
            (adamlab.optax.amsgrad(1e-2), optax.amsgrad(1e-2)),
            (adamlab.optax.adagrad(0.1), optax.adagrad(0.1)),
            (adamlab.optax.sgd(1e-2, momentum=0.9, nesterov=True), optax.sgd(1e-2, momentum=0.9, nesterov=True)),
        ]:
            p_ours, s_ours = trajectory(ours, params)
            assert_trees_close(p_ours, trajectory(ref, params)[0], rtol=1e-12)
            assert all(x.dtype == jnp.float64 for x in jax.tree.leaves(p_ours))


def test_torch_preset_inside_optax_equals_torch_optim():
    w0 = np.array([1.0, -2.0, 0.5])
    grads = [np.cos(w0 * k) for k in range(25)]
    with x64():
        opt = adamlab.optax.adam(0.05, preset="torch", amsgrad=True, weight_decay=0.1)  # L2 and raw-v max: torch's
        params = jnp.asarray(w0)
        state = opt.init(params)
        for g in grads:
            updates, state = opt.update(jnp.asarray(g), state, params)
            params = optax.apply_updates(params, updates)
    p = torch.nn.Parameter(torch.tensor(w0))
    ref = torch.optim.Adam([p], lr=0.05, amsgrad=True, weight_decay=0.1)
    for g in grads:
        p.grad = torch.tensor(g)
        ref.step()
    np.testing.assert_allclose(np.asarray(params), p.detach().numpy(), rtol=1e-12)


def test_updates_without_params_and_weight_decay_needs_them():
    opt = adamlab.optax.adam(0.1)
    state = opt.init(PARAMS)
    updates, _ = opt.update(jax.grad(loss)(PARAMS), state)
    with_params, _ = opt.update(jax.grad(loss)(PARAMS), state, PARAMS)
    # the updates differ in the last bits (θ' − θ is rounded to θ's ulp), the new parameters do not
    assert_trees_close(optax.apply_updates(PARAMS, updates), optax.apply_updates(PARAMS, with_params), rtol=0)
    decayed = adamlab.optax.adamw(0.1)
    with pytest.raises(ValueError, match=r"leaf \['layers'\]\[0\]\['b'\] has weight decay: pass params to update\(\)"):
        decayed.update(jax.grad(loss)(PARAMS), decayed.init(PARAMS))


def test_weight_decay_mask_like_optax():
    def mask(params):
        return jax.tree.map(lambda x: x.ndim > 1, params)

    ours, ref = adamlab.optax.adamw(1e-2, weight_decay=0.5, mask=mask), optax.adamw(1e-2, weight_decay=0.5, mask=mask)
    assert_trees_close(trajectory(ours)[0], trajectory(ref)[0], rtol=2e-5)
    bad = adamlab.optax.adamw(1e-2, mask=jax.tree.map(lambda x: jnp.asarray(True), PARAMS))
    with pytest.raises(ValueError, match="mask must be a pytree of Python bools"):
        bad.update(PARAMS, bad.init(PARAMS), PARAMS)


def test_keywords_by_optax_or_torch_name():
    assert adamlab.optax.adam(b1=0.5).init(PARAMS).rule.betas == (0.5, 0.999)
    assert adamlab.optax.adam(lr=0.3, betas=(0.8, 0.99)).init(PARAMS).rule.lr == 0.3
    assert adamlab.optax.rmsprop(1e-2, decay=0.95).init(PARAMS).rule.alpha == 0.95
    assert adamlab.optax.adamw(1e-3).init(PARAMS).rule.weight_decay == 1e-4
    assert adamlab.optax.nadamw(1e-3).init(PARAMS).rule.weight_decay == 1e-4
    with pytest.raises(ValueError, match="pass the learning rate once"):
        adamlab.optax.adam(1e-3, lr=1e-3)
    with pytest.raises(ValueError, match="pass either betas or the individual beta values"):
        adamlab.optax.adam(b1=0.9, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="Adam has no option 'initial_scale'"):
        adamlab.optax.adam(initial_scale=1.0)
    with pytest.raises(ValueError, match=r"amsgrad\(\) always has amsgrad=True; got amsgrad=False"):
        adamlab.optax.amsgrad(1e-3, amsgrad=False)
    # concrete JAX arrays are checked like numbers (tracers inside jit are not: they have no value yet)
    with pytest.raises(ValueError, match=r"^lr must be a finite number in \[0, inf\); got -1.0"):
        adamlab.optax.adam(jnp.asarray(-1.0))
    with pytest.raises(ValueError, match=r"^betas\[0\] must be"):
        adamlab.optax.adam(0.1, b1=jnp.asarray(2.0))
    with pytest.raises(ValueError, match="mu_dtype is not supported"):
        adamlab.optax.adam(mu_dtype=jnp.bfloat16)


def test_any_rule_object_becomes_a_transformation():
    opt = adamlab.optax.transform(adamlab.Adamax(lr=0.01, preset="keras"))
    state = opt.init(PARAMS)
    assert state.rule.eps_in_max is False
    updates, state = opt.update(jax.grad(loss)(PARAMS), state, PARAMS)
    assert jax.tree.structure(updates) == jax.tree.structure(PARAMS)


def test_complex_parameters_are_rejected():
    with pytest.raises(ValueError, match="does not support complex"):
        adamlab.optax.adam(1e-3).init({"z": jnp.array([1 + 1j])})


def test_importing_adamlab_imports_neither_jax_nor_keras():
    code = "import sys, adamlab, adamlab.numpy; print(*(m in sys.modules for m in ('jax', 'keras', 'optax')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


@pytest.mark.parametrize(("module", "extra"), [("adamlab.optax", "adamlab[jax]"), ("adamlab.keras", "adamlab[keras]")])
def test_a_missing_extra_raises_a_clear_import_error(module, extra):
    blocked = "jax" if extra.endswith("[jax]") else "keras"
    code = "\n".join(
        ["import sys", f"sys.modules[{blocked!r}] = None", "try:", f"    import {module}", "except ImportError as e:"]
        + ["    print(e)"]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"pip install '{extra}'" in out
