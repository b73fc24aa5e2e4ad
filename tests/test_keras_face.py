"""The Keras face: model.compile/fit, apply_gradients, Keras's own options, config and saving, presets."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
import torch  # noqa: E402

import adamlab.keras  # noqa: E402
from adamlab.keras.names import BASE_OPTIONS  # noqa: E402

# Keras converts torch tensors with np.array, which NumPy 2 warns about (Keras's code, not adamlab's)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def fit(optimizer, epochs=3):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = np.sin(x.sum(axis=1, keepdims=True)).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    return model, history


def assert_weights_close(model_a, model_b, rtol=1e-5):
    for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "Nadam", "SGD", "Adagrad", "RMSprop", "Adadelta"])
def test_positional_arguments_are_keras(name):
    import inspect

    def positional(cls):
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind in kinds][1:]

    ref = getattr(keras.optimizers, name)
    ours = getattr(adamlab.keras, name)
    assert [*ours.arguments, *BASE_OPTIONS] == positional(ref)
    values = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4, "amsgrad": True, "rho": 0.8,
              "weight_decay": 0.01, "momentum": 0.5, "nesterov": True, "initial_accumulator_value": 0.2,
              "centered": True}  # fmt: skip
    args = [values[n] for n in positional(ref)[: max(i for i, n in enumerate(positional(ref)) if n in values) + 1]]
    model_ours, _ = fit(getattr(adamlab.keras, name)(*args), epochs=1)
    model_ref, _ = fit(ref(*args), epochs=1)
    assert_weights_close(model_ours, model_ref)
    with pytest.raises(TypeError, match="multiple values for argument 'learning_rate'"):
        getattr(adamlab.keras, name)(0.1, learning_rate=0.2)


def test_keras_options_pass_through_clipnorm_and_schedules():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.9)
    model_ours, _ = fit(adamlab.keras.Adam(schedule, clipnorm=0.1))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.9)
    model_ref, _ = fit(keras.optimizers.Adam(schedule, clipnorm=0.1))
    assert_weights_close(model_ours, model_ref)


def test_apply_gradients_and_exclude_from_weight_decay():
    w, b = keras.Variable(np.ones(3, "float32"), name="kernel"), keras.Variable(np.ones(2, "float32"), name="bias")
    opt = adamlab.keras.AdamW(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    zero = keras.ops.zeros
    opt.apply_gradients([(zero(3), w), (zero(2), b)])
    np.testing.assert_allclose(w.numpy(), np.full(3, 1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), np.ones(2))  # and the kernel decayed once, by the rule, not by Keras too
    assert opt.weight_decay == 0.5 and opt.rule.weight_decay == 0.5


def test_torch_preset_inside_keras_equals_torch_optim():
    w0 = np.array([1.0, -2.0, 0.5], dtype="float32")
    grads = [np.cos(w0 * k).astype("float32") for k in range(20)]
    var = keras.Variable(w0.copy())
    opt = adamlab.keras.Adam(0.05, preset="torch", weight_decay=0.1, amsgrad=True)
    p = torch.nn.Parameter(torch.tensor(w0))
    ref = torch.optim.Adam([p], lr=0.05, weight_decay=0.1, amsgrad=True)
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
        p.grad = torch.tensor(g)
        ref.step()
    np.testing.assert_allclose(var.numpy(), p.detach().numpy(), rtol=1e-5)


def test_names_defaults_and_radam():
    assert adamlab.keras.Adam().rule.eps == 1e-7 and adamlab.keras.Adam().rule.eps_hat is True
    assert adamlab.keras.Adam(beta_1=0.5).rule.betas == (0.5, 0.999)
    assert adamlab.keras.Adam(epsilon=1e-3).rule.eps == adamlab.keras.Adam(eps=1e-3).rule.eps
    assert adamlab.keras.RMSprop(rho=0.7).rule.alpha == 0.7
    assert adamlab.keras.Nadam().rule.momentum_decay == 1.0
    assert adamlab.keras.NAdam is adamlab.keras.Nadam
    with pytest.raises(ValueError, match="'epsilon' and 'eps' name the same option"):
        adamlab.keras.Adam(epsilon=1e-3, eps=1e-3)
    with pytest.raises(ValueError, match="Adam has no option 'momentum'"):
        adamlab.keras.Adam(momentum=0.9)
    var = keras.Variable(np.ones(2, "float32"))
    opt = adamlab.keras.RAdam(0.1)
    for _ in range(8):
        opt.apply_gradients([(keras.ops.ones(2), var)])
    assert np.all(var.numpy() < 1)


def test_config_round_trip_and_saved_model(tmp_path):
    opt = adamlab.keras.Adam(0.02, beta_2=0.99, amsgrad=True, weight_decay=0.01, clipvalue=1.0)
    again = adamlab.keras.Adam.from_config(opt.get_config())
    lr32 = float(np.float32(0.02))  # Keras keeps the learning rate in a float32 variable
    assert again.rule == dataclasses.replace(opt.rule, lr=lr32) and again.clipvalue == 1.0
    model, _ = fit(opt, epochs=1)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is adamlab.keras.Adam and loaded.optimizer.rule == again.rule
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# --- Keras's attributes, config and checks ---------------------------------------------------------------------

KERAS_CLASSES = [name for name in adamlab.keras.KERAS_CLASSES if hasattr(keras.optimizers, name)]
#: values off every Keras default, per Keras argument name
OFF_DEFAULT = {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4, "amsgrad": True, "rho": 0.8, "weight_decay": 0.01,
               "momentum": 0.5, "nesterov": True, "initial_accumulator_value": 0.2, "centered": True,
               "beta_2_decay": -0.65, "epsilon_1": 1e-15, "epsilon_2": 1e-4, "clip_threshold": 0.9,
               "relative_step": False}  # fmt: skip


def keras_arguments(name):
    return [a for a in getattr(adamlab.keras, name).arguments if a != "learning_rate"]


@pytest.mark.parametrize("name", KERAS_CLASSES)
def test_attributes_are_keras_by_default_and_when_given(name):
    ours, theirs = getattr(adamlab.keras, name), getattr(keras.optimizers, name)
    given = {a: OFF_DEFAULT[a] for a in keras_arguments(name)}
    for kwargs in ({}, given):
        mine, ref = ours(**kwargs), theirs(**kwargs)
        assert {a: getattr(mine, a) for a in keras_arguments(name)} == {
            a: getattr(ref, a) for a in keras_arguments(name)
        }
        assert float(mine.learning_rate) == float(ref.learning_rate)  # the preset's lr is Keras's default


@pytest.mark.parametrize("name", KERAS_CLASSES)
def test_keras_class_loads_our_config_and_we_load_keras_config(name):
    given = {a: OFF_DEFAULT[a] for a in keras_arguments(name)}
    ours = getattr(adamlab.keras, name)(0.02, **given, clipnorm=1.0)
    theirs = getattr(keras.optimizers, name)(0.02, **given, clipnorm=1.0)
    assert keras.optimizers.get({"class_name": name, "config": ours.get_config()}).get_config() == ours.get_config()
    assert ours.get_config() == {**theirs.get_config(), "name": ours.name}
    again = type(ours).from_config(theirs.get_config())
    assert again.rule == dataclasses.replace(ours.rule, lr=again.rule.lr)
    assert again.rule.lr == np.float32(0.02) and again.clipnorm == 1.0  # Keras keeps lr in a float32 variable


def test_options_keras_lacks_are_in_the_config_only_when_used():
    assert "preset" not in adamlab.keras.Adam().get_config() and "maximize" not in adamlab.keras.Adam().get_config()
    config = adamlab.keras.Adam(maximize=True, preset="torch").get_config()
    assert config["maximize"] is True and config["preset"] == "torch" and config["epsilon"] == 1e-8
    rule = adamlab.keras.Adam.from_config(config).rule
    assert rule == dataclasses.replace(adamlab.keras.Adam(maximize=True, preset="torch").rule, lr=rule.lr)
    with pytest.raises(ValueError, match="not recognized"):  # Keras's Adam cannot be this optimizer: it says so
        keras.optimizers.Adam.from_config(config)


def test_setting_an_attribute_sets_the_rule_as_keras_reads_it_each_step():
    var, ref_var = keras.Variable(np.ones(3, "float32")), keras.Variable(np.ones(3, "float32"))
    ours, ref = adamlab.keras.Adam(0.1), keras.optimizers.Adam(0.1)
    grad = keras.ops.convert_to_tensor(np.array([0.5, -1.0, 2.0], "float32"))
    for step in range(4):
        if step == 2:
            ours.epsilon = ref.epsilon = 0.5
            ours.beta_2 = ref.beta_2 = 0.9
        ours.apply_gradients([(grad, var)])
        ref.apply_gradients([(grad, ref_var)])
    assert ours.rule.eps == 0.5 and ours.rule.betas == (0.9, 0.9)
    np.testing.assert_allclose(var.numpy(), ref_var.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="state variables"):  # the built optimizer has no max_exp_avg_sq
        ours.amsgrad = True
    with pytest.raises(ValueError, match=r"betas\[0\] must be a finite number in \[0, 1\)"):
        ours.beta_1 = 1.5
    assert ours.rule.betas == (0.9, 0.9)  # a rejected value changes nothing


def test_keras_checks_its_arguments():
    for momentum in (-1.0, 1.5, float("nan"), None):  # Keras: a float in [0, 1]
        with pytest.raises(ValueError, match=r"`momentum` must be a float between \[0, 1\]\. Received: momentum="):
            adamlab.keras.SGD(momentum=momentum)
    assert adamlab.keras.SGD(momentum=1.0).rule.momentum == 1.0
    with pytest.raises(ValueError, match="Argument `weight_decay` must be a float. Received: weight_decay=None"):
        adamlab.keras.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="learning_rate must be a float"):
        adamlab.keras.Adam(learning_rate="fast")
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be .* \(given: beta_2=1.5\)"):
        adamlab.keras.Adam(beta_2=1.5)
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"):  # Keras's own
        adamlab.keras.Adam(clipnorm=1.0, clipvalue=1.0)


def test_sgd_nesterov_without_momentum_is_plain_sgd_as_in_keras():
    ours, ref = adamlab.keras.SGD(0.1, nesterov=True), keras.optimizers.SGD(0.1, nesterov=True)
    assert ours.nesterov is True and ours.momentum == 0.0 and ours.get_config()["nesterov"] is True
    var, ref_var = keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(2, "float32"))
    for _ in range(3):
        ours.apply_gradients([(keras.ops.ones(2), var)])
        ref.apply_gradients([(keras.ops.ones(2), ref_var)])
    np.testing.assert_allclose(var.numpy(), ref_var.numpy(), rtol=1e-6)
    again = adamlab.keras.SGD.from_config(ours.get_config())
    assert again.nesterov is True and again.rule == dataclasses.replace(ours.rule, lr=again.rule.lr)
    assert len(ours.variables) == 2  # iterations and learning rate, as Keras: no momentum buffer


# --- backends and import order (each in a fresh process: Keras reads its backend once) ----------------------


def python(code, tmp_path, **env):
    """Run ``code`` in a fresh interpreter with a private KERAS_HOME and only the given KERAS_BACKEND."""
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    environ.update(KERAS_HOME=str(tmp_path), PYTHONPATH=os.pathsep.join(sys.path), **env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300)


STEP = (
    "import numpy as np; v = keras.Variable(np.ones(2, 'float32')); o = adamlab.keras.Adam(0.1); "
    "o.apply_gradients([(keras.ops.ones(2), v)]); print(keras.backend.backend(), float(v.numpy()[0]))"
)


@pytest.mark.parametrize("first", ["keras", "adamlab.keras"])
@pytest.mark.parametrize("how", ["KERAS_BACKEND", "keras.json"])
def test_the_configured_backend_is_used_in_either_import_order(first, how, tmp_path):
    pytest.importorskip("jax")
    env = {"KERAS_BACKEND": "jax"} if how == "KERAS_BACKEND" else {}
    if how == "keras.json":
        (tmp_path / "keras.json").write_text('{"backend": "jax"}')
    second = "adamlab.keras" if first == "keras" else "keras"
    done = python(f"import {first}, {second}, keras, adamlab.keras; {STEP}", tmp_path, **env)
    assert done.returncode == 0, done.stderr
    backend, value = done.stdout.split()
    assert backend == "jax" and abs(float(value) - 0.9) < 1e-6


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorflow") is not None, reason="TensorFlow installed")
def test_with_nothing_configured_adamlab_selects_torch_before_and_after_a_failed_keras_import(tmp_path):
    done = python(f"import adamlab.keras, keras; {STEP}", tmp_path)
    assert done.returncode == 0 and done.stdout.split()[0] == "torch", done.stderr
    # Keras itself cannot be imported then (it looks for TensorFlow); adamlab.keras still can, afterwards
    code = "try:\n    import keras\nexcept ModuleNotFoundError as e:\n    print(e.name)\nimport adamlab.keras, keras\n"
    done = python(code + STEP.replace("; ", "\n"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["tensorflow", "torch"]


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorflow") is not None, reason="TensorFlow installed")
def test_a_configured_backend_that_is_not_installed_is_named(tmp_path):
    done = python("import adamlab.keras", tmp_path, KERAS_BACKEND="tensorflow")
    assert done.returncode == 1
    assert "ImportError: Keras is configured for its 'tensorflow' backend" in done.stderr
    assert "'tensorflow' is not installed. Set KERAS_BACKEND" in done.stderr


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_the_face_on_another_backend(backend, tmp_path):
    """test_keras_any_backend.py again, in a process whose Keras runs on jax (or tensorflow where installed)."""
    pytest.importorskip(backend)
    import subprocess
    import sys

    module = os.path.join(os.path.dirname(__file__), "test_keras_any_backend.py")
    environ = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "KERAS_HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    command = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", module]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:]
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert " passed" in done.stdout and all("stateless_apply" in line for line in skipped)  # sparse tests ran
