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


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (lambda: adamlab.keras.Adam(learning_rate=0.01), lambda: keras.optimizers.Adam(learning_rate=0.01)),
        (lambda: adamlab.keras.AdamW(0.01, weight_decay=0.05), lambda: keras.optimizers.AdamW(0.01, weight_decay=0.05)),
        (lambda: adamlab.keras.Nadam(0.01, beta_2=0.99), lambda: keras.optimizers.Nadam(0.01, beta_2=0.99)),
        (
            lambda: adamlab.keras.SGD(0.05, momentum=0.9, nesterov=True),
            lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        ),
        (lambda: adamlab.keras.RMSprop(0.01, rho=0.8), lambda: keras.optimizers.RMSprop(0.01, rho=0.8)),
    ],
    ids=["Adam", "AdamW", "Nadam", "SGD", "RMSprop"],
)
def test_model_fit_matches_the_keras_optimizer(ours, ref):
    model_ours, hist_ours = fit(ours())
    model_ref, hist_ref = fit(ref())
    assert_weights_close(model_ours, model_ref)
    np.testing.assert_allclose(hist_ours.history["loss"], hist_ref.history["loss"], rtol=1e-5)
    assert int(model_ours.optimizer.iterations.numpy()) == 12


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "Nadam", "SGD", "Adagrad", "RMSprop", "Adadelta"])
def test_positional_arguments_are_keras(name):
    import inspect

    def positional(cls):
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind in kinds][1:]

    ref = getattr(keras.optimizers, name)
    assert list(getattr(adamlab.keras, name).positional) == positional(ref)
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
    np.testing.assert_allclose(b.numpy(), np.ones(2))
    assert opt.weight_decay is None and opt.rule.weight_decay == 0.5


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
