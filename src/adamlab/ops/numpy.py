"""The NumPy backend of :mod:`adamlab.ops` (also used for Python numbers).

NumPy has no fused multiply-add, so the compound operations round each product on its own: the formulas of
torch's ``ATEN_CPU_CAPABILITY=default`` build (lerp's two branches included). ``sqrt`` is NumPy's, correctly
rounded. Hyperparameters may be arrays (batched runs): they broadcast like any operand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adamlab.ops import Array, Scalar, is_number


class NumpyOps:
    """:class:`adamlab.ops.Ops` over NumPy arrays; the primitives are written once here, over the array module
    :attr:`xp`, and the JAX backend runs the same formulas over ``jax.numpy``."""

    name = "numpy"
    xp: Any = np

    def lerp(self, a: Array, b: Array, weight: Scalar) -> Array:
        if is_number(weight):
            return a + weight * (b - a) if abs(weight) < 0.5 else b - (b - a) * (1 - weight)
        small = self.xp.abs(weight) < 0.5
        return self.xp.where(small, a + weight * (b - a), b - (b - a) * (1 - weight))

    def addcmul(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        return c + (value * a) * b

    def addcdiv(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        return c + (value * a) / b

    def axpy(self, a: Array, b: Array, alpha: Scalar) -> Array:
        return a + alpha * b

    def sqrt(self, x: Array) -> Array:
        return self.xp.sqrt(x)

    def abs(self, x: Array) -> Array:
        return self.xp.abs(x)

    def abs_sq(self, x: Array) -> Array:
        return x.real * x.real + x.imag * x.imag if self.xp.iscomplexobj(x) else x * x

    def sign(self, x: Array) -> Array:
        return self.xp.sign(x)

    def maximum(self, a: Array, b: Array) -> Array:
        return self.xp.maximum(a, b)

    def minimum(self, a: Array, b: Array) -> Array:
        return self.xp.minimum(a, b)

    def where(self, condition: Array, x: Array, y: Array) -> Array:
        return self.xp.where(condition, x, y)

    def rsqrt(self, x: Array) -> Array:
        return 1 / self.xp.sqrt(x)

    def sum(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return self.xp.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return self.xp.mean(x, axis=axis, keepdims=keepdims)

    def norm(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return self.xp.sqrt(self.xp.sum(self.abs_sq(x), axis=axis, keepdims=keepdims))

    def select(self, flag: Scalar, x: Array, y: Array) -> Array:
        if isinstance(flag, (bool, int)) or type(flag).__module__ == "numpy":
            return x if flag else y
        return self.xp.where(flag, x, y)

    def zeros_like(self, x: Array) -> Array:
        return self.xp.zeros_like(x)

    def full(self, shape: tuple[int, ...], value: float, like: Array, dtype: Any = None) -> Array:
        return np.full(shape, value, dtype=dtype if dtype is not None else np.asarray(like).dtype)

    def cast(self, x: Scalar, like: Array) -> Scalar:
        return x if is_number(x) else np.asarray(x, dtype=np.asarray(like).dtype)

    def float_dtype(self, kind: str, like: Array) -> Any:
        if kind == "param":
            return np.asarray(like).dtype
        # "default": torch's default float dtype (float32), which a state entry declares to follow torch.optim
        # (NumPy's own default is float64, but then a torch-preset run would not continue torch's bits)
        return np.dtype(np.float32)


NUMPY_OPS = NumpyOps()
