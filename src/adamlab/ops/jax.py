"""The JAX backend of :mod:`adamlab.ops` (``jax.numpy``; traceable under ``jax.jit``).

optax writes its updates with plain arithmetic, which the rules' optax order uses directly; the compound
operations (used by other presets) round each product on its own, as XLA offers no fused multiply-add to ask for.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from adamlab.ops import Array, Scalar, is_number


class JaxOps:
    """:class:`adamlab.ops.Ops` over JAX arrays."""

    name = "jax"

    def lerp(self, a: Array, b: Array, weight: Scalar) -> Array:
        if is_number(weight):
            return a + weight * (b - a) if abs(weight) < 0.5 else b - (b - a) * (1 - weight)
        return jnp.where(jnp.abs(weight) < 0.5, a + weight * (b - a), b - (b - a) * (1 - weight))

    def addcmul(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        return c + (value * a) * b

    def addcdiv(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        return c + (value * a) / b

    def axpy(self, a: Array, b: Array, alpha: Scalar) -> Array:
        return a + alpha * b

    def sqrt(self, x: Array) -> Array:
        return jnp.sqrt(x)

    def abs(self, x: Array) -> Array:
        return jnp.abs(x)

    def abs_sq(self, x: Array) -> Array:
        return x.real * x.real + x.imag * x.imag if jnp.iscomplexobj(x) else x * x

    def sign(self, x: Array) -> Array:
        return jnp.sign(x)

    def maximum(self, a: Array, b: Array) -> Array:
        return jnp.maximum(a, b)

    def minimum(self, a: Array, b: Array) -> Array:
        return jnp.minimum(a, b)

    def where(self, condition: Array, x: Array, y: Array) -> Array:
        return jnp.where(condition, x, y)

    def rsqrt(self, x: Array) -> Array:
        return jax.lax.rsqrt(x)

    def sum(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return jnp.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return jnp.mean(x, axis=axis, keepdims=keepdims)

    def norm(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return jnp.sqrt(jnp.sum(self.abs_sq(x), axis=axis, keepdims=keepdims))

    def select(self, flag: Scalar, x: Array, y: Array) -> Array:
        if isinstance(flag, (bool, int)) or type(flag).__module__ == "numpy":
            return x if flag else y
        return jnp.where(flag, x, y)

    def zeros_like(self, x: Array) -> Array:
        return jnp.zeros_like(x)

    def full(self, shape: tuple[int, ...], value: float, like: Array, dtype: Any = None) -> Array:
        return jnp.full(shape, value, dtype=dtype if dtype is not None else like.dtype)

    def cast(self, x: Scalar, like: Array) -> Scalar:
        return x if is_number(x) else jnp.asarray(x).astype(like.dtype)

    def float_dtype(self, kind: str, like: Array) -> Any:
        if kind == "param":
            return like.dtype
        return jnp.float32  # "float32", and "default": torch's default float dtype (see StateEntry.dtype)


JAX_OPS = JaxOps()
