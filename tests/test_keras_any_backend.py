"""The Keras face on whatever backend Keras runs: the same results as Keras's own classes, sparse gradients, jit.

This module uses the backend of the process (torch here, as CI sets KERAS_BACKEND=torch);
test_keras_face.py runs it again in a subprocess with KERAS_BACKEND=jax (Keras reads its backend once).
The oracle is Keras's own class of the same name on the same backend, in float32: the two compute the same
formulas in a different order of operations, so they agree to a few float32 ulps per step, not bit for bit.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import adamlab.keras  # noqa: E402

BACKEND = keras.backend.backend()
# Keras converts torch tensors with np.array, which NumPy 2 warns about (Keras's code, not adamlab's)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

#: per Keras class, arguments off Keras's defaults (so a dropped or misnamed argument shows)
ARGUMENTS = {
    "Adam": dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-4, amsgrad=True, weight_decay=0.01),
    "AdamW": dict(learning_rate=0.01, weight_decay=0.05, beta_2=0.99, amsgrad=True),
    "Adamax": dict(learning_rate=0.01, beta_1=0.8, epsilon=1e-4, weight_decay=0.01),
    "Nadam": dict(learning_rate=0.01, beta_2=0.99, epsilon=1e-4),
    "SGD": dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adagrad": dict(learning_rate=0.05, initial_accumulator_value=0.2, epsilon=1e-4),
    "RMSprop": dict(learning_rate=0.01, rho=0.8, momentum=0.5, centered=True, epsilon=1e-4),
    "Adadelta": dict(learning_rate=0.5, rho=0.9, epsilon=1e-5, weight_decay=0.01),
}


def fit(optimizer, epochs=3):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = np.sin(x.sum(axis=1, keepdims=True)).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")  # compiled: jax.jit on jax, tf.function on tensorflow
    history = model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    return model, history


def assert_weights_close(model_a, model_b, rtol=1e-5):
    for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.mark.parametrize("name", ARGUMENTS)
def test_model_fit_matches_the_keras_optimizer(name):
    model_ours, hist_ours = fit(getattr(adamlab.keras, name)(**ARGUMENTS[name]))
    model_ref, hist_ref = fit(getattr(keras.optimizers, name)(**ARGUMENTS[name]))
    assert_weights_close(model_ours, model_ref)
    np.testing.assert_allclose(hist_ours.history["loss"], hist_ref.history["loss"], rtol=1e-5)
    assert int(keras.ops.convert_to_numpy(model_ours.optimizer.iterations)) == 12


@pytest.mark.parametrize(
    "options", [dict(use_ema=True, ema_momentum=0.5), dict(gradient_accumulation_steps=2), dict(global_clipnorm=0.1)]
)
def test_keras_options_of_the_base_class(options):
    model_ours, _ = fit(adamlab.keras.Adam(0.02, **options), epochs=2)
    model_ref, _ = fit(keras.optimizers.Adam(0.02, **options), epochs=2)
    assert_weights_close(model_ours, model_ref)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="Keras's tensorflow backend has no stateless_apply")
def test_stateless_apply_matches_apply():
    """stateless_apply (what Keras's jax trainer calls) gives what apply gives, and leaves the variables alone."""
    start = np.array([1.0, -2.0, 0.5], "float32")
    grads = [np.cos(start * k).astype("float32") for k in range(1, 4)]
    var, opt = keras.Variable(start), adamlab.keras.Adam(0.1, amsgrad=True)
    other, stateless = keras.Variable(start), adamlab.keras.Adam(0.1, amsgrad=True)
    stateless.build([other])
    values, state = [other.value], [v.value for v in stateless.variables]
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
        values, state = stateless.stateless_apply(state, [keras.ops.convert_to_tensor(g)], values)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(values[0]), keras.ops.convert_to_numpy(var))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(other), start)


def sparse_gradient(step):
    """A gradient with rows 0, 2 and 4 of a (5, 3) variable set, as the backend's sparse type, and dense."""
    rows = np.zeros((5, 3), "float32")
    rows[[0, 2, 4]] = np.arange(9, dtype="float32").reshape(3, 3) - 4 + step
    if BACKEND == "jax":
        import jax.experimental.sparse as jax_sparse

        return jax_sparse.BCOO.fromdense(rows, n_batch=0, n_dense=1), rows
    import tensorflow as tf

    indices = np.array([0, 2, 4])
    return tf.IndexedSlices(tf.constant(rows[indices]), tf.constant(indices), (5, 3)), rows


@pytest.mark.skipif(BACKEND not in ("jax", "tensorflow"), reason="sparse gradients exist on jax and tensorflow")
@pytest.mark.parametrize("name", ARGUMENTS)
def test_sparse_gradients_give_keras_results(name):
    ours, dense = getattr(adamlab.keras, name)(**ARGUMENTS[name]), getattr(adamlab.keras, name)(**ARGUMENTS[name])
    ref = getattr(keras.optimizers, name)(**ARGUMENTS[name])
    variables = [keras.Variable(np.ones((5, 3), "float32")) for _ in range(3)]
    for step in range(4):
        sparse, rows = sparse_gradient(step)
        ours.apply([sparse], [variables[0]])
        dense.apply([keras.ops.convert_to_tensor(rows)], [variables[1]])
        ref.apply([sparse], [variables[2]])
    got, want_dense, want_keras = (keras.ops.convert_to_numpy(v) for v in variables)
    np.testing.assert_array_equal(got, want_dense)
    np.testing.assert_allclose(got, want_keras, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ARGUMENTS)
def test_config_is_keras_and_round_trips(name):
    ours = getattr(adamlab.keras, name)(**ARGUMENTS[name])
    config = ours.get_config()
    theirs = getattr(keras.optimizers, name).from_config(dict(config))
    assert theirs.get_config() == config
    again = type(ours).from_config(dict(config))
    # the learning rate comes back as Keras holds it, in a float32 variable
    assert again.get_config() == config and again.rule == dataclasses.replace(ours.rule, lr=config["learning_rate"])


def test_checkpoint_round_trip_continues_identically():
    start = np.array([[1.0, -2.0], [0.5, 3.0]], "float32")
    grads = [np.sin(start * k).astype("float32") for k in range(1, 7)]
    var, opt = keras.Variable(start), adamlab.keras.Adam(0.05, amsgrad=True)
    for g in grads[:3]:
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
    copy = keras.Variable(keras.ops.convert_to_numpy(var))
    again = adamlab.keras.Adam(0.05, amsgrad=True)
    again.build([copy])
    adamlab.keras.import_state(again, adamlab.keras.export_state(opt))
    for g in grads[3:]:
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
        again.apply([keras.ops.convert_to_tensor(g)], [copy])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy), keras.ops.convert_to_numpy(var))
