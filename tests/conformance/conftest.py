"""Conformance tests run the real torch.optim, optax and Keras 3 next to adamlab.

Keras needs a backend before it is imported: torch unless one is configured (its other backend runs in a fresh
process). A framework that is not installed skips its tests locally; in CI (``CI`` set) a missing framework is a
failure, so nothing is skipped.
"""

from __future__ import annotations

import os

import pytest

from adamlab.conformance import Report, installed, run_conformance
from adamlab.conformance.cases import EXTRAS

os.environ.setdefault("KERAS_BACKEND", "torch")

STEPS = 300
_REPORTS: dict[str, Report] = {}


def require(framework: str) -> None:
    """Skip (locally) or fail (in CI) when ``framework`` is not installed."""
    if installed(framework):
        return
    message = f"{framework} is not installed: pip install '{EXTRAS[framework]}'"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def report_for(framework: str) -> Report:
    """The conformance report of one framework (every optimizer, pair and dtype), computed once per session."""
    require(framework)
    if framework not in _REPORTS:
        _REPORTS[framework] = run_conformance(steps=STEPS, frameworks=(framework,))
    return _REPORTS[framework]
