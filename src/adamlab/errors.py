"""Exceptions shared by every face."""

from __future__ import annotations


class NonFiniteError(FloatingPointError):
    """A gradient or loss was NaN or infinite and the optimizer was told to raise (``nonfinite="raise"``)."""
