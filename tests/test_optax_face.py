"""The optax face against the real optax: trajectories, optax's signatures and state, wrappers, dtypes, checkpoints.

The reference is optax 0.2.8 itself, run side by side: float32 under ``jit`` agrees to 2e-5 relative (the
rule's arithmetic is not yet bit-identical to optax's, and the face's update θ' − θ rounds to θ's ulp);
float64 to 1e-12. State structures must be equal to optax's exactly.
"""

from __future__ import annotations

import inspect
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


def assert_trees_close(a, b, rtol, atol=0.0):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _rules_take_traced_hyperparameters() -> bool:
    x = jnp.ones(2)
    try:
        jax.jit(lambda e: adamlab.rules.Adam(eps=e, weight_decay=e).step(x, x, {"exp_avg": x, "exp_avg_sq": x}, 1))(1.0)
    except jax.errors.TracerBoolConversionError:
        return False
    return True


TRACED = _rules_take_traced_hyperparameters()
COMPLEX = bool(getattr(adamlab.rules.Adam, "supports_complex", False))
needs_traced = pytest.mark.xfail(not TRACED, reason="rules branch on traced hyperparameters", strict=True)
needs_complex = pytest.mark.xfail(not COMPLEX, reason="rules do not declare complex support", strict=True)

# (alias, optax arguments): every alias, and the options that change its state's structure
VARIANTS = [
    ("adam", {"learning_rate": 1e-2}),
    ("adam", {"learning_rate": optax.linear_schedule(1e-2, 1e-3, 30), "nesterov": True, "eps_root": 1e-9}),
    ("nadam", {"learning_rate": 1e-2}),
    ("adamw", {"learning_rate": 1e-2, "weight_decay": 0.1}),
    ("adamw", {"learning_rate": 1e-2, "weight_decay": 0.1, "mask": {"w": True, "layers": ({"b": False}, True)}}),
    ("adamw", {"learning_rate": 1e-2, "weight_decay": optax.linear_schedule(0.1, 0.0, 30)}),  # traced λ
    ("nadamw", {"learning_rate": 1e-2, "mask": lambda p: jax.tree.map(lambda x: x.ndim > 1, p)}),
    ("adamax", {"learning_rate": 1e-2}),
    ("adamaxw", {"learning_rate": 1e-2, "weight_decay": 0.1}),
    ("amsgrad", {"learning_rate": 1e-2}),
    ("radam", {"learning_rate": 1e-2, "threshold": 4.5}),
    ("sgd", {"learning_rate": 1e-2}),
    ("sgd", {"learning_rate": optax.exponential_decay(1e-2, 1, 0.99), "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"learning_rate": 0.1}),
    ("rmsprop", {"learning_rate": 1e-2}),
    ("rmsprop", {"learning_rate": optax.exponential_decay(1e-2, 1, 0.99), "momentum": 0.9, "centered": True}),
    ("rmsprop", {"learning_rate": 1e-2, "momentum": 0.5, "eps_in_sqrt": False}),
    ("adadelta", {"learning_rate": 0.5, "weight_decay": 0.1, "weight_decay_mask": {
        "w": False, "layers": ({"b": True}, True)}}),  # fmt: skip
    ("adadelta", {}),  # no learning rate: optax 0.2.8 ascends (scale_by_learning_rate(None) is the identity)
]
CASES = [
    pytest.param(name, options, id=f"{name}-{i}", marks=[needs_traced] if callable(options.get("weight_decay")) else [])
    for i, (name, options) in enumerate(VARIANTS)
]


@pytest.mark.parametrize(("name", "options"), CASES)
def test_state_and_trajectory_are_optax_s(name, options):
    ours, ref = getattr(adamlab.optax, name)(**options), getattr(optax, name)(**options)
    assert isinstance(ours, optax.GradientTransformationExtraArgs)
    assert jax.tree.structure(ours.init(PARAMS)) == jax.tree.structure(ref.init(PARAMS))
    (p_ours, s_ours), (p_ref, s_ref) = trajectory(ours), trajectory(ref)
    assert_trees_close(p_ours, p_ref, rtol=2e-5)
    assert_trees_close(s_ours, s_ref, rtol=1e-4, atol=1e-7)  # mu, nu, trace … hold what optax's hold
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(p_ours))


@pytest.mark.parametrize("name", sorted(adamlab.optax.OPTIMIZERS))
def test_each_alias_has_optax_s_signature_plus_preset(name):
    ours, ref = inspect.signature(getattr(adamlab.optax, name)), inspect.signature(getattr(optax, name))
    *same, preset = ours.parameters.values()
    assert same == list(ref.parameters.values())
    assert (preset.name, preset.kind, preset.default) == ("preset", inspect.Parameter.KEYWORD_ONLY, "optax")


def test_positional_arguments_and_optax_defaults_given_explicitly():
    p_ours, _ = trajectory(adamlab.optax.adam(1e-2, 0.8, 0.99, 1e-7, 0.0, None))
    assert_trees_close(p_ours, trajectory(optax.adam(1e-2, 0.8, 0.99, 1e-7))[0], rtol=2e-5)
    adamlab.optax.nadam(1e-3, eps_root=0.0)
    adamlab.optax.amsgrad(1e-3, bias_correction_mu=True, bias_correction_nu=True)
    adamlab.optax.rmsprop(1e-3, initial_scale=0.0, nesterov=False, bias_correction=False)
    with pytest.raises(ValueError, match=r"^rmsprop\(\): initial_scale must be 0.0 .*got 0.5"):
        adamlab.optax.rmsprop(1e-3, initial_scale=0.5)
    with pytest.raises(ValueError, match=r"^rmsprop\(\): nesterov must be False"):
        adamlab.optax.rmsprop(1e-3, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="bias_correction_mu and bias_correction_nu must be equal"):
        adamlab.optax.amsgrad(1e-3, bias_correction_mu=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'betas'"):
        adamlab.optax.adam(1e-3, betas=(0.9, 0.99))  # torch's names belong to adamlab.optax.transform
    with pytest.raises(ValueError, match=r"^lr must be a finite number in \[0, inf\); got -1.0"):
        adamlab.optax.adam(jnp.asarray(-1.0))  # concrete arrays are checked like numbers
    with pytest.raises(ValueError, match=r"^betas\[0\] must be"):
        adamlab.optax.adam(0.1, b1=jnp.asarray(2.0))


def test_without_bias_correction_amsgrad_is_optax_s():
    options = {"learning_rate": 1e-2, "bias_correction_mu": False, "bias_correction_nu": False}
    assert_trees_close(trajectory(adamlab.optax.amsgrad(**options))[0], trajectory(optax.amsgrad(**options))[0], 2e-5)


def test_mu_dtype_and_accumulator_dtype_store_the_first_moment_as_optax_does():
    ours, ref = adamlab.optax.adam(1e-2, mu_dtype=jnp.bfloat16), optax.adam(1e-2, mu_dtype=jnp.bfloat16)
    (p_ours, s_ours), (p_ref, _) = trajectory(ours), trajectory(ref)
    assert {x.dtype for x in jax.tree.leaves(s_ours[0].mu)} == {jnp.dtype(jnp.bfloat16)}
    assert {x.dtype for x in jax.tree.leaves(s_ours[0].nu)} == {jnp.dtype(jnp.float32)}
    # m is rounded to bf16 (8 bits) when stored, as optax; a last-bit difference before that rounding moves m by
    # up to 2^-8 and the 60 steps by ~2e-3 here, so the tolerance is one bf16 ulp
    assert_trees_close(p_ours, p_ref, rtol=2**-7)
    state = adamlab.optax.sgd(0.1, momentum=0.9, accumulator_dtype="bfloat16").init(PARAMS)
    assert optax.tree.get(state, "trace")["w"].dtype == jnp.bfloat16


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
            (adamlab.optax.rmsprop(1e-2, momentum=0.9), optax.rmsprop(1e-2, momentum=0.9)),
        ]:
            p_ours, s_ours = trajectory(ours, params)
            p_ref, s_ref = trajectory(ref, params)
            assert_trees_close(p_ours, p_ref, rtol=1e-12)
            assert_trees_close(s_ours, s_ref, rtol=1e-12, atol=1e-15)
            assert all(x.dtype == jnp.float64 for x in jax.tree.leaves(p_ours))


def test_torch_conventions_inside_optax_through_transform_equal_torch_optim():
    w0 = np.array([1.0, -2.0, 0.5])
    grads = [np.cos(w0 * k) for k in range(25)]
    with x64():
        opt = adamlab.optax.transform(adamlab.rules.Adam(lr=0.05, preset="torch", amsgrad=True, weight_decay=0.1))
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
    assert set(state.entries) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"} and int(state.count) == 25


def test_update_takes_extra_arguments_and_init_abstract_shapes():
    opt = adamlab.optax.adamw(0.1)
    state = opt.init(PARAMS)
    updates, _ = opt.update(jax.grad(loss)(PARAMS), state, PARAMS, value=jnp.asarray(1.0), other="ignored")
    assert jax.tree.structure(updates) == jax.tree.structure(PARAMS)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), PARAMS)
    assert jax.tree.structure(opt.init(abstract)) == jax.tree.structure(optax.adamw(0.1).init(PARAMS))
    shapes = jax.eval_shape(opt.init, PARAMS)
    assert shapes[0].mu["w"].shape == (2, 2)


def test_tree_get_set_and_map_params_see_optax_s_fields():
    opt = adamlab.optax.adam(0.1)
    state = opt.init(PARAMS)
    assert optax.tree.get(state, "mu")["w"].shape == (2, 2)
    bumped = optax.tree.set(state, count=jnp.asarray(7, jnp.int32))
    assert int(optax.tree.get(bumped, "count")) == 7
    specs = optax.tree.map_params(opt, lambda _: "spec", state, transform_non_params=lambda _: None)
    assert specs[0].mu == jax.tree.map(lambda _: "spec", PARAMS) and specs[0].count is None


def test_updates_without_params_and_weight_decay_needs_them():
    opt = adamlab.optax.adam(0.1)
    state = opt.init(PARAMS)
    updates, _ = opt.update(jax.grad(loss)(PARAMS), state)
    with_params, _ = opt.update(jax.grad(loss)(PARAMS), state, PARAMS)
    assert_trees_close(updates, with_params, rtol=0)  # without decay the update never depends on θ
    decayed = adamlab.optax.adamw(0.1)
    with pytest.raises(ValueError, match=r"has weight decay: pass params to update\(\)"):
        decayed.update(jax.grad(loss)(PARAMS), decayed.init(PARAMS))


def test_inside_optax_masked_multisteps_and_bad_masks():
    mask = {"w": True, "layers": ({"b": False}, True)}
    for wrap in (lambda o: optax.masked(o, mask), lambda o: optax.MultiSteps(o, every_k_schedule=3)):
        ours, ref = wrap(adamlab.optax.adam(1e-2)), wrap(optax.adam(1e-2))
        assert jax.tree.structure(ours.init(PARAMS)) == jax.tree.structure(ref.init(PARAMS))
        assert_trees_close(trajectory(ours)[0], trajectory(ref)[0], rtol=2e-5)
    bad = adamlab.optax.adamw(1e-2, mask=jax.tree.map(lambda x: jnp.asarray(True), PARAMS))
    with pytest.raises(ValueError, match="mask must be a pytree of Python bools"):
        bad.update(PARAMS, bad.init(PARAMS), PARAMS)


def test_inject_hyperparams_with_a_static_structure():
    ours = optax.inject_hyperparams(adamlab.optax.sgd)(learning_rate=0.1)
    p_ours, s_ours = trajectory(ours)
    p_ref, s_ref = trajectory(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))
    assert_trees_close(p_ours, p_ref, rtol=2e-6)
    assert float(s_ours.hyperparams["learning_rate"]) == pytest.approx(0.1)


@pytest.mark.parametrize("name", sorted(adamlab.optax.OPTIMIZERS))
def test_inject_hyperparams_with_traced_hyperparameters(name):
    options = {"learning_rate": 1e-2, **({"momentum": 0.9} if name in ("rmsprop", "sgd") else {})}
    ours = optax.inject_hyperparams(getattr(adamlab.optax, name))(**options)
    ref = optax.inject_hyperparams(getattr(optax, name))(**options)
    try:
        result = trajectory(ours)
    except jax.errors.TracerBoolConversionError:  # a rule branching on a traced hyperparameter (issue 13)
        pytest.xfail(f"{name}'s rule branches on a traced hyperparameter")
    assert_trees_close(result[0], trajectory(ref)[0], rtol=2e-5)
    assert jax.tree.structure(result[1]) == jax.tree.structure(trajectory(ref)[1])


@needs_complex
@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad", "radam"])
def test_complex_parameters_as_optax(name):
    z = {"z": jnp.array([1.0 + 2.0j, -0.5 + 0.1j], jnp.complex64)}

    def run(opt):
        params, state = z, opt.init(z)
        for _ in range(20):
            grads = jax.tree.map(lambda x: jnp.conj(jax.grad(lambda y: jnp.sum(jnp.abs(y - 1j) ** 2))(x)), params)
            updates, state = opt.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        return params

    assert_trees_close(run(getattr(adamlab.optax, name)(1e-1)), run(getattr(optax, name)(1e-1)), rtol=1e-5)


def test_complex_parameters_raise_where_the_rule_does_not_support_them():
    with pytest.raises(ValueError, match="complex parameters need a rule whose math is defined for them; adadelta"):
        adamlab.optax.adadelta(0.1).init({"z": jnp.array([1 + 1j])})


def test_flax_serialization_and_orbax_round_trip(tmp_path):
    serialization = pytest.importorskip("flax.serialization")
    opt = adamlab.optax.adamw(1e-2)
    _, state = trajectory(opt, steps=5)
    again = serialization.from_bytes(opt.init(PARAMS), serialization.to_bytes(state))
    assert_trees_close(again, state, rtol=0)
    ocp = pytest.importorskip("orbax.checkpoint")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "state", state)
        checkpointer.wait_until_finished()
        restored = checkpointer.restore(tmp_path / "state", opt.init(PARAMS))
    assert_trees_close(restored, state, rtol=0)


def test_checkpoints_refuse_a_step_beyond_int32_and_count_less_states_need_a_step():
    opt = adamlab.optax.adam(0.1)
    _, state = trajectory(opt, steps=3)
    checkpoint = adamlab.optax.export_state(opt, state)
    assert checkpoint["step"] == 3 and checkpoint["params"][0]["name"] == "['layers'][0]['b']"
    again = adamlab.optax.import_state(opt, opt.init(PARAMS), checkpoint)
    assert_trees_close(again, state, rtol=0)
    with pytest.raises(ValueError, match=r"step 2147483648 exceeds optax's int32 step count"):
        adamlab.optax.import_state(opt, opt.init(PARAMS), {**checkpoint, "step": 2**31})
    sgd = adamlab.optax.sgd(0.1, momentum=0.9)
    _, sgd_state = trajectory(sgd, steps=3)
    with pytest.raises(ValueError, match="keeps no step count: pass step="):
        adamlab.optax.export_state(sgd, sgd_state)
    assert adamlab.optax.export_state(sgd, sgd_state, step=3)["step"] == 3
    with pytest.raises(ValueError, match="keeps no per-parameter state: pass params"):
        adamlab.optax.export_state(adamlab.optax.sgd(0.1), adamlab.optax.sgd(0.1).init(PARAMS), step=0)


def test_any_rule_object_becomes_a_transformation():
    opt = adamlab.optax.transform(adamlab.Adamax(lr=0.01, preset="keras"))
    state = opt.init(PARAMS)
    assert opt.rule.eps_in_max is False and set(state.entries) == {"exp_avg", "exp_inf"}
    updates, state = opt.update(jax.grad(loss)(PARAMS), state, PARAMS)
    assert jax.tree.structure(updates) == jax.tree.structure(PARAMS)


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
