"""The PyTorch backend of :mod:`adamlab.ops`: each primitive is the torch operation torch.optim itself calls.

So a rule whose ``update`` follows torch.optim's sequence of operations (``preset="torch"``) computes the same
bits as torch.optim on every device and CPU dispatch level, whatever those kernels round like. A hyperparameter
that is a tensor (a batched run, a tensor ``lr``, a traced value) goes through the general formula, since
``addcmul``/``addcdiv``/``add`` take only a Python number as their scalar.
"""

from __future__ import annotations

from typing import Any

import torch

from adamlab.ops import Array, Scalar, is_number


class TorchOps:
    """:class:`adamlab.ops.Ops` over torch tensors."""

    name = "torch"

    def lerp(self, a: Array, b: Array, weight: Scalar) -> Array:
        if torch.is_tensor(weight) and weight.dtype != a.dtype:
            weight = weight.to(a.dtype)
        return torch.lerp(a, b, weight)

    def addcmul(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        return torch.addcmul(c, a, b, value=value) if is_number(value) else c + (value * a) * b

    def addcdiv(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        return torch.addcdiv(c, a, b, value=value) if is_number(value) else c + (value * a) / b

    def axpy(self, a: Array, b: Array, alpha: Scalar) -> Array:
        return torch.add(a, b, alpha=alpha) if is_number(alpha) else a + alpha * b

    def sqrt(self, x: Array) -> Array:
        return torch.sqrt(x)

    def abs(self, x: Array) -> Array:
        return torch.abs(x)

    def abs_sq(self, x: Array) -> Array:
        return x.real * x.real + x.imag * x.imag if x.is_complex() else x * x

    def sign(self, x: Array) -> Array:
        return torch.sign(x)

    def maximum(self, a: Array, b: Array) -> Array:
        return torch.clamp_min(a, b) if is_number(b) else torch.maximum(a, b)

    def minimum(self, a: Array, b: Array) -> Array:
        return torch.clamp_max(a, b) if is_number(b) else torch.minimum(a, b)

    def where(self, condition: Array, x: Array, y: Array) -> Array:
        return torch.where(condition, x, y)

    def rsqrt(self, x: Array) -> Array:
        return torch.rsqrt(x)

    def sum(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return torch.sum(x, dim=axis, keepdim=keepdims)

    def mean(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return torch.mean(x, dim=axis, keepdim=keepdims)

    def norm(self, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return torch.linalg.vector_norm(x, 2, dim=axis, keepdim=keepdims)  # what torch.norm and Tensor.norm call

    def select(self, flag: Scalar, x: Array, y: Array) -> Array:
        if isinstance(flag, (bool, int)) or type(flag).__module__ == "numpy":
            return x if flag else y
        return torch.where(flag, x, y)

    def zeros_like(self, x: Array) -> Array:
        return torch.zeros_like(x, memory_format=torch.preserve_format)

    def full(self, shape: tuple[int, ...], value: float, like: Array, dtype: Any = None) -> Array:
        return torch.full(shape, value, dtype=dtype if dtype is not None else like.dtype, device=like.device)

    def cast(self, x: Scalar, like: Array) -> Scalar:
        if is_number(x):
            return x
        return x.to(like.dtype) if torch.is_tensor(x) else torch.as_tensor(x, dtype=like.dtype, device=like.device)

    def float_dtype(self, kind: str, like: Array) -> Any:
        if kind == "param":
            return like.dtype
        return torch.float32 if kind == "float32" else torch.get_default_dtype()


TORCH_OPS = TorchOps()
