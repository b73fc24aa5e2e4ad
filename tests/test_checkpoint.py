"""Face-neutral checkpoints: PyTorch ↔ NumPy ↔ optax ↔ Keras, continuing identically; malformed states raise clearly."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import adamlab.checkpoint
import adamlab.numpy
import adamlab.torch

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402

import adamlab.optax  # noqa: E402
from adamlab.conformance.runners import x64  # noqa: E402

# Keras converts its torch tensors with np.array, which NumPy 2 warns about (Keras's code, not adamlab's)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

START = {"b": np.array([0.5, -1.0]), "w": np.array([[1.0, -2.0, 0.3], [0.7, 0.1, -0.4]])}  # jax's (sorted) order
SHAPES = [v.shape for v in START.values()]


def grad(leaves, t):
    return [np.cos(np.asarray(x) * (t + 1)) + 0.1 * t for x in leaves]


# one runner per face, each continuing from an optional checkpoint: (leaves, checkpoint_out)


def run_torch(name, kwargs, leaves, t0, steps, checkpoint=None):
    params = [torch.nn.Parameter(torch.tensor(x)) for x in leaves]
    opt = getattr(adamlab.torch, name)(params, **kwargs)
    if checkpoint is not None:
        adamlab.torch.import_state(opt, checkpoint)
    for t in range(t0, t0 + steps):
        for p, g in zip(params, grad([p.detach().numpy() for p in params], t), strict=True):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy().copy() for p in params], adamlab.torch.export_state(opt)


def run_numpy(name, kwargs, leaves, t0, steps, checkpoint=None):
    params = dict(zip(START, leaves, strict=True))
    opt = getattr(adamlab.numpy, name)(preset="torch", **kwargs)
    if checkpoint is not None:
        adamlab.numpy.import_state(opt, checkpoint, params)
    for t in range(t0, t0 + steps):
        params = opt.step(params, dict(zip(START, grad(list(params.values()), t), strict=True)))
    return list(params.values()), adamlab.numpy.export_state(opt, params)


def run_optax(name, kwargs, leaves, t0, steps, checkpoint=None):
    with x64():
        opt = adamlab.optax.transform(getattr(adamlab.rules, name)(preset="torch", **kwargs))
        params = {k: jnp.asarray(v) for k, v in zip(START, leaves, strict=True)}
        state = opt.init(params)
        if checkpoint is not None:
            state = adamlab.optax.import_state(opt, state, checkpoint)
        for t in range(t0, t0 + steps):
            g = dict(
                zip(START, [jnp.asarray(x) for x in grad([np.asarray(v) for v in params.values()], t)], strict=True)
            )
            updates, state = opt.update(g, state, params)
            params = optax.apply_updates(params, updates)
        return [np.asarray(v) for v in params.values()], adamlab.optax.export_state(opt, state)


def run_keras(name, kwargs, leaves, t0, steps, checkpoint=None):
    keras = pytest.importorskip("keras")
    import adamlab.keras

    variables = [keras.Variable(x, dtype="float64") for x in leaves]
    opt = getattr(adamlab.keras, name)(preset="torch", **kwargs)
    opt.build(variables)
    if checkpoint is not None:
        adamlab.keras.import_state(opt, checkpoint)
    for t in range(t0, t0 + steps):
        grads = grad([keras.ops.convert_to_numpy(v) for v in variables], t)
        tensors = [keras.ops.convert_to_tensor(g, dtype="float64") for g in grads]
        opt.apply_gradients(zip(tensors, variables, strict=True))
    return [keras.ops.convert_to_numpy(v).copy() for v in variables], adamlab.keras.export_state(opt)


RUNNERS = {"torch": run_torch, "numpy": run_numpy, "optax": run_optax, "keras": run_keras}
OPTIMIZERS = [
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}),
    ("NAdam", {"lr": 0.05}),
    ("RAdam", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
]


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("torch", "numpy"),
        ("numpy", "optax"),
        ("optax", "torch"),
        ("torch", "optax"),
        ("keras", "torch"),
        ("optax", "keras"),
    ],
)
def test_a_run_continues_identically_in_another_face(name, kwargs, first, second):
    leaves = list(START.values())
    if "keras" in (first, second):  # Keras keeps the learning rate in a float32 variable: use one it holds exactly
        kwargs = {**kwargs, "lr": float(np.float32(kwargs["lr"]))}
    whole, _ = RUNNERS[first](name, kwargs, leaves, 0, 12)
    half, checkpoint = RUNNERS[first](name, kwargs, leaves, 0, 5)
    checkpoint = pickle.loads(pickle.dumps(checkpoint))  # a plain, picklable dict
    assert checkpoint["step"] == 5 and checkpoint["rule"] == name.lower()
    rest, _ = RUNNERS[second](name, kwargs, half, 5, 7, checkpoint)
    for a, b in zip(rest, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())  # relative to the largest entry


def test_numpy_and_optax_match_leaves_by_name_whatever_the_dict_order():
    params = {"w": START["w"], "b": START["b"]}  # NumPy keeps this order; jax sorts the keys
    opt = adamlab.numpy.Adam(lr=0.1, preset="optax")
    params = opt.step(params, {"w": np.ones((2, 3)), "b": np.ones(2)})
    checkpoint = adamlab.numpy.export_state(opt, params)
    assert [p["name"] for p in checkpoint["params"]] == ["['w']", "['b']"]
    with x64():
        opt = adamlab.optax.adam(0.1)
        state = adamlab.optax.import_state(opt, opt.init({k: jnp.asarray(v) for k, v in params.items()}), checkpoint)
        assert list(state[0].mu) == ["b", "w"]  # optax's ScaleByAdamState, leaves in jax's (sorted) order
        np.testing.assert_array_equal(state[0].mu["w"], checkpoint["params"][0]["state"]["exp_avg"])
        assert int(state[0].count) == 1


@pytest.fixture
def adam_checkpoint():
    opt = adamlab.numpy.Adam(lr=0.1)
    opt.step([np.ones(2), np.ones((2, 3))], [np.ones(2), np.ones((2, 3))])
    return adamlab.numpy.export_state(opt)


def _torch_adam():
    return adamlab.torch.Adam([torch.nn.Parameter(torch.zeros(shape, dtype=torch.float64)) for shape in SHAPES])


def test_another_optimizers_state_is_rejected(adam_checkpoint):
    opt = adamlab.torch.SGD([torch.nn.Parameter(torch.zeros(shape)) for shape in SHAPES], momentum=0.9)
    with pytest.raises(ValueError, match="^checkpoint holds the state of 'adam'; this optimizer runs 'sgd'$"):
        adamlab.torch.import_state(opt, adam_checkpoint)


def test_missing_and_unexpected_entries_are_named(adam_checkpoint):
    broken = copy.deepcopy(adam_checkpoint)
    del broken["params"][1]["state"]["exp_avg_sq"]
    broken["params"][1]["state"]["momentum_buffer"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"parameter 1 does not match Adam: missing exp_avg_sq; unexpected momentum_b"):
        adamlab.torch.import_state(_torch_adam(), broken, strict=False)


def test_wrong_shapes_and_counts_are_named(adam_checkpoint):
    broken = copy.deepcopy(adam_checkpoint)
    broken["params"][0]["state"]["exp_avg"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(3,\); expected \(2,\)"):
        adamlab.torch.import_state(_torch_adam(), broken, strict=False)
    opt = adamlab.torch.Adam([torch.nn.Parameter(torch.zeros(3, 3)), torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(2,\); this optimizer's has shape \(3, 3\)"):
        adamlab.torch.import_state(opt, adam_checkpoint, strict=False)
    opt = adamlab.torch.Adam([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="checkpoint has state for 2 parameters; this optimizer has 1"):
        adamlab.torch.import_state(opt, adam_checkpoint)


def test_hyperparameters_must_match_unless_not_strict(adam_checkpoint):
    opt = adamlab.torch.Adam([torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in SHAPES], amsgrad=True)
    with pytest.raises(ValueError, match="amsgrad False vs True.*pass strict=False"):
        adamlab.torch.import_state(opt, adam_checkpoint)
    with pytest.raises(ValueError, match="missing max_exp_avg_sq"):
        adamlab.torch.import_state(opt, adam_checkpoint, strict=False)
    relaxed = _torch_adam()
    adamlab.torch.import_state(relaxed, adam_checkpoint)  # lr differs (1e-3 vs 0.1): allowed
    assert all(s["step"] == 1 for s in relaxed.state.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(format="other"), "^not an adamlab optimizer checkpoint"),
        (lambda c: c.update(version=99), "^checkpoint version 99 is not supported"),
        (lambda c: c.pop("step"), "^checkpoint is missing 'step'"),
        (lambda c: c.update(step=-1), "^checkpoint step must be an integer in \\[0, 2\\*\\*53\\]"),
        (lambda c: c["params"].__setitem__(0, "x"), "^checkpoint parameter 0 must be a dict"),
        (lambda c: c["params"][0]["state"].update(exp_avg=np.array(["a", "b"])), "is not numeric"),
        # hostile input: each a ValueError naming what is wrong, before anything is allocated or changed
        (lambda c: c.update(step=2**63), "^checkpoint step must be an integer in"),
        (lambda c: c.update(step=float("inf")), "^checkpoint step must be an integer in"),
        (lambda c: c.update(step=float("nan")), "^checkpoint step must be an integer in"),
        (lambda c: c.update(params="x"), "^checkpoint 'params' must be a list"),
        (lambda c: c["params"][0].update(shape=3), "has shape 3; expected a tuple of integers >= 0"),
        (lambda c: c["params"][0].update(shape="ab"), "has shape 'ab'; expected a tuple of integers >= 0"),
        (lambda c: c["params"][0].update(shape=(-1,)), r"has shape \(-1,\); expected a tuple of integers >= 0"),
        (lambda c: c["params"][0].update(shape=(10**6, 10**6)), "has shape"),  # refused without allocating it
        (lambda c: c["params"][0]["state"].update(exp_avg=np.full(2, np.nan)), "holds NaN or infinite values"),
        (lambda c: c["params"][0]["state"].update(exp_avg_sq=np.array([1.0, -1e-300])), r"must be >= 0 \(a second m"),
        (lambda c: c["params"][0]["state"].update(exp_avg=np.zeros((10**4, 10**4), np.float32)[:1]), "has shape"),
    ],
)
def test_malformed_checkpoints_raise(adam_checkpoint, change, message):
    broken = copy.deepcopy(adam_checkpoint)
    change(broken)
    opt = adamlab.numpy.Adam(lr=0.1)
    with pytest.raises(ValueError, match=message):
        adamlab.numpy.import_state(opt, broken)
    assert opt.state is None and opt.t == 0  # nothing was loaded


def test_a_negative_first_moment_loads_where_a_negative_second_moment_is_refused(adam_checkpoint):
    changed = copy.deepcopy(adam_checkpoint)
    changed["params"][0]["state"]["exp_avg"] = np.array([-1.0, -2.0])  # a first moment may be negative
    opt = adamlab.numpy.Adam(lr=0.1)
    adamlab.numpy.import_state(opt, changed)
    assert opt.state[0]["exp_avg"].tolist() == [-1.0, -2.0]


def test_generic_dispatch_and_export_before_any_step():
    opt = _torch_adam()
    checkpoint = adamlab.checkpoint.export_state(opt)
    assert checkpoint["step"] == 0 and checkpoint["params"][1]["state"]["exp_avg"].shape == (2, 3)
    np_opt = adamlab.numpy.Adam(lr=1e-3, preset="torch")
    adamlab.checkpoint.import_state(np_opt, checkpoint)
    assert np_opt.t == 0
    with x64():
        opt = adamlab.optax.adam(1e-3, preset="torch")
        again = adamlab.checkpoint.import_state((opt, opt.init([jnp.zeros(2), jnp.zeros((2, 3))])), checkpoint)
        assert isinstance(again[0], optax.ScaleByAdamState) and int(again[0].count) == 0
    with pytest.raises(ValueError, match="has not taken a step: pass params"):
        adamlab.numpy.export_state(adamlab.numpy.Adam())
    with pytest.raises(ValueError, match=r"expected an optimizer of an adamlab face .*adamlab\.torch.* got torch"):
        adamlab.checkpoint.export_state(torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))]))


def test_torch_groups_may_differ_only_in_lr():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    adamlab.torch.export_state(adamlab.torch.Adam([{"params": [a]}, {"params": [b], "lr": 0.1}]))
    opt = adamlab.torch.Adam([{"params": [a]}, {"params": [b], "weight_decay": 0.1}])
    with pytest.raises(ValueError, match="param group 1 differs from group 0 in weight_decay"):
        adamlab.torch.export_state(opt)


def test_keras_export_needs_a_built_optimizer_and_a_finished_accumulation_cycle(adam_checkpoint):
    keras = pytest.importorskip("keras")
    import adamlab.keras

    opt = adamlab.keras.Adam(0.1)
    with pytest.raises(ValueError, match="not built yet: call optimizer.build"):
        adamlab.keras.export_state(opt)
    with pytest.raises(ValueError, match="not built yet: call optimizer.build"):
        adamlab.keras.import_state(opt, adam_checkpoint)
    variables = [keras.Variable(np.zeros(2)), keras.Variable(np.zeros((3, 3)))]
    opt.build(variables)
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(2, 3\); this optimizer's has shape \(3, 3\)"):
        adamlab.keras.import_state(opt, adam_checkpoint, strict=False)

    accumulating = adamlab.keras.Adam(0.1, gradient_accumulation_steps=2)
    variables = [keras.Variable(np.ones(2, dtype="float32"))]
    accumulating.apply_gradients([(keras.ops.ones(2), variables[0])])
    with pytest.raises(ValueError, match="middle of a gradient accumulation cycle"):
        adamlab.keras.export_state(accumulating)
    accumulating.apply_gradients([(keras.ops.ones(2), variables[0])])
    checkpoint = adamlab.checkpoint.export_state(accumulating)  # the generic dispatch finds the Keras face
    assert checkpoint["step"] == 1
    again = adamlab.keras.Adam(0.1, gradient_accumulation_steps=2)
    copied = [keras.Variable(keras.ops.convert_to_numpy(variables[0]))]
    again.build(copied)
    adamlab.checkpoint.import_state(again, checkpoint)
    assert int(keras.ops.convert_to_numpy(again.iterations)) == 1
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(again._entries[0]["exp_avg"]), checkpoint["params"][0]["state"]["exp_avg"]
    )
    at_export = keras.ops.convert_to_numpy(variables[0]).copy()
    for g in ([0.5, -1.0], [2.0, 0.25]):  # one more accumulation cycle continues identically
        accumulating.apply_gradients([(keras.ops.convert_to_tensor(g), variables[0])])
        again.apply_gradients([(keras.ops.convert_to_tensor(g), copied[0])])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copied[0]), keras.ops.convert_to_numpy(variables[0]))
    assert not np.array_equal(keras.ops.convert_to_numpy(copied[0]), at_export)  # the cycle did update
