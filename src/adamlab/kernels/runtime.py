"""What every generated kernel calls: numba helpers for flat buffers, the FMA and VML square-root primitives,
and the non-finite check. Framework-free: it imports numba and NumPy only.

- :func:`fma`: LLVM's ``llvm.fma`` (one rounding; a libm call where the CPU has no FMA instruction, so the
  result is the same on every x86-64, ``NUMBA_CPU_NAME=generic`` included).
- :func:`vml_sqrt_f32`/:func:`vml_sqrt_f64`: MKL VML's ``vmsSqrt``/``vmdSqrt`` with ``VML_HA | VML_FTZDAZ_OFF |
  VML_ERRMODE_IGNORE``, the call torch's CPU ``sqrt`` makes. The symbols must be registered first with
  :func:`register_vml_sqrt` (the torch face passes the addresses it finds in ``libtorch_cpu``).
- pointers to gradients: a kernel reads each tensor's gradient where it lies, through its address.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
import numpy as np
from llvmlite import binding
from numba import njit, types
from numba.extending import intrinsic


def _probe() -> None:  # pragma: no cover - only decorated, to test whether numba can cache here
    pass


def _cache_usable() -> bool:
    """numba's ``cache=True`` raises when neither the package's ``__pycache__`` nor a user cache dir is writable."""
    try:
        njit(cache=True)(_probe)
    except RuntimeError:
        return False
    return True


#: numpy's error model: x/0 gives inf/nan as in torch (numba's default raises, which also blocks SIMD); no fast-math
JIT = dict(cache=_cache_usable(), error_model="numpy", fastmath=False, nogil=True)

#: the source of this module, hashed into each generated kernel: a changed runtime makes new kernel files
VERSION = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]

#: VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE (mkl_vml_defines.h), the mode torch's vml.h passes
VML_MODE = 0x00000002 | 0x00140000 | 0x00000100
_VML_SYMBOLS = {"float32": "vmsSqrt", "float64": "vmdSqrt"}
_registered: set[str] = set()


def register_vml_sqrt(addresses: dict[str, int]) -> None:
    """Make MKL VML's square roots callable from kernels: ``{"float32": address of vmsSqrt, "float64": ...}``."""
    for dtype, address in addresses.items():
        binding.add_symbol(_VML_SYMBOLS[dtype], int(address))
        _registered.add(dtype)


def vml_registered(dtype: str) -> bool:
    """True once :func:`register_vml_sqrt` gave the VML square root of ``dtype``."""
    return dtype in _registered


# v?Sqrt(MKL_INT n, const T* a, T* r, MKL_INT64 mode); pointers are passed as integers (the same registers)
_vms = types.ExternalFunction("vmsSqrt", types.void(types.int32, types.uintp, types.uintp, types.int64))
_vmd = types.ExternalFunction("vmdSqrt", types.void(types.int32, types.uintp, types.uintp, types.int64))


@njit(inline="always")
def vml_sqrt_f32(n, x, out):
    """out[:n] = VML's √x[:n] (float32)."""
    _vms(np.int32(n), x.ctypes.data, out.ctypes.data, VML_MODE)


@njit(inline="always")
def vml_sqrt_f64(n, x, out):
    """out[:n] = VML's √x[:n] (float64)."""
    _vmd(np.int32(n), x.ctypes.data, out.ctypes.data, VML_MODE)


@intrinsic
def fma(typingctx, a, b, c):
    """a·b + c with one rounding (``llvm.fma``); the three operands share one float type."""
    if not (a == b == c and isinstance(a, types.Float)):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def _typed_pointer(typingctx, address, like):
    """Turn an integer address into a pointer to ``like``'s element type."""
    sig = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(inline="always")
def grad_piece(address, offset, n, like):
    """Elements ``offset .. offset+n`` of the contiguous gradient at ``address`` (same dtype as ``like``)."""
    return numba.carray(_typed_pointer(address + offset * like.itemsize, like), n)


@njit(inline="always")
def row_of(coefs, j):
    """Tensor ``j``'s coefficient row: its own, or the one row all tensors share."""
    return coefs[j] if coefs.shape[0] > 1 else coefs[0]


@njit(inline="always")
def maximum(a, b):
    """torch.maximum: NaN if either is NaN."""
    if a != a or b != b:
        return a + b
    return a if a > b else b


@njit(inline="always")
def minimum(a, b):
    """torch.minimum: NaN if either is NaN."""
    if a != a or b != b:
        return a + b
    return a if a < b else b


@njit(inline="always")
def sign(x):
    """torch.sign: −1, 0 or +1 in x's dtype; NaN stays NaN."""
    return np.sign(x)


# --- the non-finite check (nonfinite="raise"/"skip") ------------------------------------------------------


@njit(**{**JIT, "fastmath": {"reassoc"}})
def _nonfinite(g):
    """True if an element is NaN or ±inf: x·0 is 0 for finite x and NaN otherwise, in any summation order
    (so the sum may be reassociated into SIMD lanes). Four streams at once keep more reads in flight."""
    zero = g.dtype.type(0)
    acc = zero
    q = g.shape[0] // 4
    for i in range(q):
        acc += g[i] * zero + g[q + i] * zero + g[2 * q + i] * zero + g[3 * q + i] * zero
    for i in range(4 * q, g.shape[0]):
        acc += g[i] * zero
    return acc != acc


@njit(**JIT)
def count_nonfinite(like, grad_ptrs, starts, lo, hi):
    """How many tensor pieces within elements lo..hi hold a NaN or ±inf (``like`` gives the dtype)."""
    total = 0
    j = np.searchsorted(starts, lo, side="right") - 1
    while j < starts.shape[0] - 1 and starts[j] < hi:
        a, b = max(lo, starts[j]), min(hi, starts[j + 1])
        if grad_ptrs[j] != 0 and a < b:
            total += _nonfinite(grad_piece(grad_ptrs[j], a - starts[j], b - a, like))
        j += 1
    return total
