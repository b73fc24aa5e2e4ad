"""Pick the array module (NumPy, torch or jax.numpy) that matches an array, so rules are written once."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def namespace(x: Any) -> ModuleType:
    """Return the module whose functions (sqrt, maximum, abs, where, zeros_like...) operate on ``x``.

    torch tensors get ``torch``, JAX arrays (and tracers) get ``jax.numpy``, anything else NumPy.
    The frameworks are only imported when an array of theirs is seen.
    """
    module = type(x).__module__
    if module.startswith("torch"):
        import torch

        return torch
    if module.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        return jnp
    return np
