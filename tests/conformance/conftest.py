"""Conformance tests run the real torch.optim, optax and Keras 3 next to adamlab.

Keras needs a backend before it is imported: torch unless one is configured. A framework that is not
installed skips its tests locally; in CI (``CI`` set) a missing framework is a failure, so nothing is skipped.
"""

from __future__ import annotations

import os

import pytest

from adamlab.conformance import installed
from adamlab.conformance.cases import EXTRAS
from adamlab.conformance.problems import Problem

os.environ.setdefault("KERAS_BACKEND", "torch")

STEPS = 300


def require(framework: str) -> None:
    """Skip (locally) or fail (in CI) when ``framework`` is not installed."""
    if installed(framework):
        return
    message = f"{framework} is not installed: pip install '{EXTRAS[framework]}'"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def problem() -> Problem:
    return Problem(seed=0, steps=STEPS)
