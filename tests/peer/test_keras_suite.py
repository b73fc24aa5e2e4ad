"""Keras's own optimizer tests, run on adamlab.keras: every test that passes with Keras's class passes with ours.

Each backend runs twice in a fresh process (Keras reads ``KERAS_BACKEND`` once, at import): once as shipped
(the baseline) and once with adamlab's classes put where the test modules import Keras's (keras_suite.py).
A test passing in the baseline and not with adamlab fails here, unless it is in :data:`EXCEPTIONS` with its
reason, which docs/keras-face.md repeats; an exception that starts passing fails here too, so the list
stays true.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import keras_suite
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "keras-face.md"

_U_PRODUCT = (
    "reads Keras's private Nadam._u_product (one μ-product variable shared by all variables); adamlab's rule "
    "keeps Π_t per variable, as the state entry mu_product"
)
_SPARSE = (
    "checks that Keras's optimizer hands a sparse value (BCOO, IndexedSlices) to self.assign*; adamlab densifies "
    "the gradient before the rule (the rules run on dense arrays) and assigns dense values. The numbers are the "
    "same (test_sparse_correctness_* pass). On jax Keras's Variable.assign densifies the value anyway "
    "(backend/jax/core.py); on tensorflow Keras scatters into the gradient's rows, where adamlab writes the "
    "whole variable"
)
_SPARSE_TESTS = {
    f"optimizer_sparse_test.py::OptimizerSparseTest::test_sparse_gradients_{case}": _SPARSE
    for case in ("adadelta", "adafactor", "adagrad", "loss_scale_optimizer_sgd", "rmsprop", "sgd")
}
#: backend → {Keras test that passes with Keras's class but not with adamlab's: why}
EXCEPTIONS: dict[str, dict[str, str]] = {
    "torch": {"nadam_test.py::NadamTest::test_build_with_empty_var_list": _U_PRODUCT},
    "jax": {"nadam_test.py::NadamTest::test_build_with_empty_var_list": _U_PRODUCT, **_SPARSE_TESTS},
    "tensorflow": {"nadam_test.py::NadamTest::test_build_with_empty_var_list": _U_PRODUCT, **_SPARSE_TESTS},
}
BACKENDS = [
    pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} missing"))
    for name in EXCEPTIONS
]


@pytest.fixture(scope="module", params=BACKENDS)
def runs(request):
    """(backend, Keras's run, adamlab's run) of Keras's optimizer tests."""
    backend = request.param
    return backend, keras_suite.run_suite(backend, ours=False), keras_suite.run_suite(backend, ours=True)


def test_every_test_passing_with_keras_passes_with_adamlab(runs):
    backend, theirs, ours = runs
    assert keras_suite.summary(theirs["tests"])["passed"] > 100  # the baseline really ran
    assert set(ours["tests"]) == set(theirs["tests"])  # the same tests were collected
    assert keras_suite.regressions(theirs["tests"], ours["tests"]) == dict.fromkeys(EXCEPTIONS[backend], "failed")


def test_adamlab_classes_replaced_every_keras_class_they_have(runs):
    import adamlab.keras

    _, theirs, ours = runs
    expected = {name for name in adamlab.keras.KERAS_CLASSES if hasattr(keras.optimizers, name)}
    assert {where.rsplit(".", 1)[1] for where in ours["substituted"]} == expected
    assert not theirs["substituted"]


def test_the_exceptions_are_in_the_docs():
    text = DOCS.read_text()
    for backend, exceptions in EXCEPTIONS.items():
        for nodeid in exceptions:
            assert f"`{nodeid}`" in text, f"docs/keras-face.md does not list {nodeid} ({backend})"
