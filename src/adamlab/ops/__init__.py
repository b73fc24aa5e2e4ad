r"""The primitive operations each rule's elementwise math is written in, with one implementation per array library.

A rule's ``update`` (see :mod:`adamlab.rules.base`) computes with Python operators on arrays (``+ - * /``,
unary ``-``: one IEEE rounding each, in every library) and with the methods of an :class:`Ops` object for
everything else. The compound operations are the ones frameworks round differently, so each backend
computes them exactly as its framework does::

    lerp(a, b, w)            a + w·(b − a)       torch: fma(w, b−a, a) if |w| < ½ else fma(w−1, b−a, b)
    addcmul(c, a, b, value)  c + value·a·b       torch: fma(value·a, b, c)
    addcdiv(c, a, b, value)  c + value·a/b       torch: c + (value·a)/b
    axpy(a, b, alpha)        a + alpha·b         torch: fma(b, alpha, a)  (``torch.add(a, b, alpha=)``)

(torch's fused forms hold on x86-64 builds with FMA dispatch, AVX2 and AVX-512; at ``ATEN_CPU_CAPABILITY=default``
each product is rounded on its own. ``sqrt`` of a contiguous float tensor is MKL's VML ``v?Sqrt`` in high-accuracy
mode, not the correctly rounded square root: :mod:`adamlab.kernels` reproduces both.)

Backends: :mod:`adamlab.ops.numpy` (also the fallback), :mod:`adamlab.ops.torch` and :mod:`adamlab.ops.jax`, chosen
by :func:`ops_for` from the array's type with ``array_api_compat``'s type tests (which import no library that is
not already loaded). An object may name its own backend with an ``__adamlab_ops__`` attribute; the kernel
generator's symbolic arrays (:mod:`adamlab.kernels.trace`) do.
"""

from __future__ import annotations

from typing import Any, Protocol

import array_api_compat
import numpy as np

Array = Any  # numpy.ndarray | torch.Tensor | jax.Array | a symbolic array of the kernel generator
Scalar = Any  # a Python number, or a 0-d array (a traced step, a tensor hyperparameter)


class Ops(Protocol):
    """The vocabulary of a rule's ``update``, besides Python's arithmetic operators."""

    name: str

    def lerp(self, a: Array, b: Array, weight: Scalar) -> Array:
        """a + weight·(b − a)."""

    def addcmul(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        """c + value·a·b."""

    def addcdiv(self, c: Array, a: Array, b: Array, value: Scalar) -> Array:
        """c + value·a/b."""

    def axpy(self, a: Array, b: Array, alpha: Scalar) -> Array:
        """a + alpha·b."""

    def sqrt(self, x: Array) -> Array:
        """√x, elementwise."""

    def abs(self, x: Array) -> Array:
        """|x|, elementwise."""

    def abs_sq(self, x: Array) -> Array:
        """|x|² (x·conj(x) for complex x, real-valued)."""

    def sign(self, x: Array) -> Array:
        """−1, 0 or +1 (NaN stays NaN)."""

    def maximum(self, a: Array, b: Array) -> Array:
        """Elementwise max; NaN if either is NaN (torch.maximum, jnp.maximum, np.maximum)."""

    def minimum(self, a: Array, b: Array) -> Array:
        """Elementwise min; NaN if either is NaN."""

    def where(self, condition: Array, x: Array, y: Array) -> Array:
        """x where ``condition`` holds, else y."""

    def rsqrt(self, x: Array) -> Array:
        """1/√x, elementwise (torch.rsqrt, jax.lax.rsqrt)."""

    # reductions: for rules that are not elementwise (Adafactor's row and column means); no kernel has them

    def sum(self, x: Array, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Array:
        """Σ over ``axis`` (None: every axis)."""

    def mean(self, x: Array, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Array:
        """The mean over ``axis`` (None: every axis), as the library computes it (torch: sum, then ÷ n)."""

    def norm(self, x: Array, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Array:
        """The 2-norm √Σ|x|² over ``axis`` (None: every axis); torch: ``torch.linalg.vector_norm``."""

    def select(self, flag: Scalar, x: Array, y: Array) -> Array:
        """x if the scalar ``flag`` holds (a host bool, or a traced 0-d bool), else y: a per-step branch."""

    def zeros_like(self, x: Array) -> Array:
        """An array of zeros with x's shape and dtype."""

    def full(self, shape: tuple[int, ...], value: float, like: Array, dtype: Any = None) -> Array:
        """An array of ``shape`` filled with ``value``, of ``like``'s dtype (or ``dtype``) and device."""

    def cast(self, x: Scalar, like: Array) -> Scalar:
        """``x`` in ``like``'s dtype: a Python number stays a Python number; an array is converted."""

    def float_dtype(self, kind: str, like: Array) -> Any:
        """The dtype a state entry declares (``"param"``, ``"float32"``, ``"default"``) for parameter ``like``."""


def ops_for(x: Any) -> Ops:
    """The backend that computes on ``x``'s array library (NumPy for Python numbers and NumPy arrays)."""
    own = getattr(x, "__adamlab_ops__", None)
    if own is not None:
        return own
    if array_api_compat.is_torch_array(x):
        from adamlab.ops.torch import TORCH_OPS

        return TORCH_OPS
    if array_api_compat.is_jax_array(x):
        from adamlab.ops.jax import JAX_OPS

        return JAX_OPS
    from adamlab.ops.numpy import NUMPY_OPS

    return NUMPY_OPS


def array_module(x: Any) -> Any:
    """The array module whose functions (sin, exp, sqrt, where, ...) compute on ``x``: ``torch``, ``jax.numpy`` or
    NumPy (also for Python numbers). Frameworks are imported only when an array of theirs is seen."""
    if array_api_compat.is_torch_array(x):
        import torch

        return torch
    if array_api_compat.is_jax_array(x):
        import jax.numpy as jnp

        return jnp
    import numpy

    return numpy


def is_number(x: Any) -> bool:
    """True for a Python number (not bool): a weakly typed host value that each backend rounds into the dtype
    of the array it meets. NumPy scalars are not: under NumPy 2 they keep their own dtype (NEP 50)."""
    return isinstance(x, (int, float)) and not isinstance(x, (bool, np.generic))  # np.float64 subclasses float


__all__ = ["Array", "Ops", "Scalar", "array_module", "is_number", "ops_for"]
