"""The JAX backend of :mod:`adamlab.ops` (``jax.numpy``; traceable under ``jax.jit``).

optax writes its updates with plain arithmetic, which the rules' optax order uses directly; the compound
operations (used by other presets) round each product on its own, as XLA offers no fused multiply-add to ask for.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from adamlab.ops import Array, Scalar, is_number
from adamlab.ops.numpy import NumpyOps


class JaxOps(NumpyOps):
    """:class:`adamlab.ops.Ops` over JAX arrays: the NumPy backend's formulas over ``jax.numpy``, with XLA's
    ``rsqrt`` (what optax calls) and JAX's dtype handling."""

    name = "jax"
    xp: Any = jnp

    def rsqrt(self, x: Array) -> Array:
        return jax.lax.rsqrt(x)

    def full(self, shape: tuple[int, ...], value: float, like: Array, dtype: Any = None) -> Array:
        return jnp.full(shape, value, dtype=dtype if dtype is not None else like.dtype)

    def cast(self, x: Scalar, like: Array) -> Scalar:
        return x if is_number(x) else jnp.asarray(x).astype(like.dtype)

    def float_dtype(self, kind: str, like: Array) -> Any:
        if kind == "param":
            return like.dtype
        return jnp.float32  # "float32", and "default": torch's default float dtype (see StateEntry.dtype)


JAX_OPS = JaxOps()
