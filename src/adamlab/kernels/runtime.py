"""What every generated kernel calls: numba helpers for flat buffers, the FMA and VML square-root primitives,
and the non-finite check. Framework-free: it imports numba and NumPy only.

- :func:`fma`: LLVM's ``llvm.fma`` (one rounding; a libm call where the CPU has no FMA instruction, so the
  result is the same on every x86-64, ``NUMBA_CPU_NAME=generic`` included).
- :func:`vml_sqrt_f32`/:func:`vml_sqrt_f64`: MKL VML's ``vmsSqrt``/``vmdSqrt`` with ``VML_HA | VML_FTZDAZ_OFF |
  VML_ERRMODE_IGNORE``, the call torch's CPU ``sqrt`` makes. The symbols must be registered first with
  :func:`register_vml_sqrt` (the torch face passes the addresses it finds in ``libtorch_cpu``).
- :func:`vml_avx512_sqrt_f32`: the same float32 root in registers, as MKL's AVX-512 kernel computes it
  (``mkl_vml_kernel_sSqrt_Z0HAynn``: ``vrsqrt14ps`` and one FMA correction), so the kernel's loop stays one
  fused, vectorised loop instead of blocks around a VML call. Used only where it is what VML computes: the
  target has AVX-512 (:func:`avx512_sqrt_available`) and VML's results equal it on a probe (the torch face).
- pointers to gradients: a kernel reads each tensor's gradient where it lies, through its address.
- OpenMP: each generated module has an ``omp_entry`` that :mod:`adamlab.kernels.threads` starts on the OpenMP
  threads torch uses (``GOMP_parallel`` of the ``libgomp.so.1`` torch loaded), see :data:`OPENMP`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
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


# --- MKL VML's AVX-512 float32 square root, in registers --------------------------------------------------
#
# Transcribed from the instructions of mkl_vml_kernel_sSqrt_Z0HAynn (MKL 2024.2 in libtorch_cpu), per lane:
#   y = rsqrt14(x);  h = y·0.5;  s = y·x                       (vrsqrt14ps: ~14 bits, defined bit for bit)
#   if y > 2^39 (x below ~2^-78): x' = x·2^78, s' = s·2^39, h' = h·2^-78, else x' = x, s' = s, h' = h
#   e = fma(−s', s', x');  √x = fma(e, h', s)
#   x = ±0 or +inf: x;  x < 0 (−inf included): the default quiet NaN 0x7fc00000;  NaN: x, quieted
# every product rounded to nearest (MKL's {rn-sae}; numba's threads run with the default MXCSR). Checked over
# all 2^32 float32 inputs against vmsSqrt on an AVX-512 Xeon: no bit differs (tests/test_vml_avx512_sqrt.py).
# The loop vectoriser replaces a call of the scalar form by the 4-, 8- or 16-lane form its
# "vector-function-abi-variant" names, so a kernel with this root is one vectorised loop.

_AVX512_SQRT = "adamlab_vml_avx512_sqrtf"


def _splat(n: int, ty: str, value: str) -> str:
    return "<" + ", ".join([f"{ty} {value}"] * n) + ">"


def _avx512_sqrt_ir() -> str:
    def f(c: float) -> str:  # LLVM writes a float constant as the hex of the double it equals
        return f"0x{np.float64(c).view(np.uint64):016X}"

    out = [
        "declare <4 x float> @llvm.fma.v4f32(<4 x float>, <4 x float>, <4 x float>)",
        "declare <8 x float> @llvm.fma.v8f32(<8 x float>, <8 x float>, <8 x float>)",
        "declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)",
        "declare <4 x float> @llvm.x86.avx512.rsqrt14.ps.128(<4 x float>, <4 x float>, i8)",
        "declare <8 x float> @llvm.x86.avx512.rsqrt14.ps.256(<8 x float>, <8 x float>, i8)",
        "declare <16 x float> @llvm.x86.avx512.rsqrt14.ps.512(<16 x float>, <16 x float>, i16)",
    ]
    for n, bits, mask in ((4, 128, "i8"), (8, 256, "i8"), (16, 512, "i16")):
        v, iv, b = f"<{n} x float>", f"<{n} x i32>", f"<{n} x i1>"
        constants = {"half": 0.5, "big": 2.0**39, "up": 2.0**78, "down": 2.0**-78, "zero": 0.0, "inf": np.inf}
        c = {name: _splat(n, "float", f(x)) for name, x in constants.items()}
        out += [
            f"define internal {v} @{_AVX512_SQRT}_v{n}({v} %x) alwaysinline nounwind readnone {{",
            "entry:",
            f"  %y = call {v} @llvm.x86.avx512.rsqrt14.ps.{bits}({v} %x, {v} zeroinitializer, {mask} -1)",
            f"  %h = fmul {v} %y, {c['half']}",
            f"  %s = fmul {v} %y, %x",
            f"  %ns = fneg {v} %s",
            f"  %e = call {v} @llvm.fma.v{n}f32({v} %ns, {v} %s, {v} %x)",
            f"  %r = call {v} @llvm.fma.v{n}f32({v} %e, {v} %h, {v} %s)",
            # lanes off the common path (as MKL, a branch on the rare ones): x tiny, ±0, +inf, negative, NaN
            f"  %tiny = fcmp olt {v} {c['big']}, %y",
            f"  %xi = bitcast {v} %x to {iv}",  # x positive and finite: its bits − 1 below 0x7F7FFFFF, unsigned
            f"  %xm = add {iv} %xi, {_splat(n, 'i32', '-1')}",
            f"  %special = icmp uge {iv} %xm, {_splat(n, 'i32', '2139095039')}",
            f"  %odd = or {b} %tiny, %special",
            f"  %bits = bitcast {b} %odd to i{n}",
            f"  %any = icmp ne i{n} %bits, 0",
            "  br i1 %any, label %rare, label %done",
            "rare:",
            f"  %xu = fmul {v} %x, {c['up']}",
            f"  %su = fmul {v} %s, {c['big']}",
            f"  %hd = fmul {v} %h, {c['down']}",
            f"  %x1 = select {b} %tiny, {v} %xu, {v} %x",
            f"  %s1 = select {b} %tiny, {v} %su, {v} %s",
            f"  %h1 = select {b} %tiny, {v} %hd, {v} %h",
            f"  %ns1 = fneg {v} %s1",
            f"  %e1 = call {v} @llvm.fma.v{n}f32({v} %ns1, {v} %s1, {v} %x1)",
            f"  %r0 = call {v} @llvm.fma.v{n}f32({v} %e1, {v} %h1, {v} %s)",
            f"  %z = fcmp oeq {v} %x, {c['zero']}",
            f"  %i = fcmp oeq {v} %x, {c['inf']}",
            f"  %keep = or {b} %z, %i",
            f"  %r1 = select {b} %keep, {v} %x, {v} %r0",
            f"  %neg = fcmp olt {v} %x, {c['zero']}",
            f"  %dnan = bitcast {iv} {_splat(n, 'i32', '2143289344')} to {v}",
            f"  %r2 = select {b} %neg, {v} %dnan, {v} %r1",
            f"  %nan = fcmp uno {v} %x, %x",
            f"  %qi = or {iv} %xi, {_splat(n, 'i32', '4194304')}",
            f"  %q = bitcast {iv} %qi to {v}",
            f"  %r3 = select {b} %nan, {v} %q, {v} %r2",
            "  br label %done",
            "done:",
            f"  %out = phi {v} [ %r, %entry ], [ %r3, %rare ]",
            f"  ret {v} %out",
            "}",
        ]
    variants = ",".join(f"_ZGV_LLVM_N{n}v_{_AVX512_SQRT}({_AVX512_SQRT}_v{n})" for n in (4, 8, 16))
    out += [
        f"define float @{_AVX512_SQRT}(float %x) noinline nounwind readnone"
        f' "vector-function-abi-variant"="{variants}" {{',
        "  %v = insertelement <4 x float> zeroinitializer, float %x, i32 0",
        f"  %r = call <4 x float> @{_AVX512_SQRT}_v4(<4 x float> %v)",
        "  %o = extractelement <4 x float> %r, i32 0",
        "  ret float %o",
        "}",
        # kept until the vectoriser has run (it calls the vector forms only after they look unused)
        "@llvm.compiler.used = appending global [3 x ptr] ["
        + ", ".join(f"ptr @{_AVX512_SQRT}_v{n}" for n in (4, 8, 16))
        + '], section "llvm.metadata"',
    ]
    return "\n".join(out) + "\n"


def avx512_sqrt_available() -> bool:
    """True when numba compiles for a CPU with AVX-512 F and VL (``vrsqrt14ps`` on 128, 256 and 512 bits); not
    under ``NUMBA_CPU_NAME=generic`` nor on a CPU without them."""
    features = numba.config.CPU_FEATURES
    if features is None:
        features = binding.get_host_cpu_features().flatten()
    flags = set(features.split(","))
    return {"+avx512f", "+avx512vl"} <= flags


_avx512_library: list = []


def _avx512_sqrt_library(context):
    """One numba code library holding the IR above, linked into each kernel that uses it."""
    if not _avx512_library:
        library = context.codegen().create_library("adamlab_vml_avx512_sqrt")
        library.add_llvm_module(binding.parse_assembly(_avx512_sqrt_ir()))
        library.finalize()
        _avx512_library.append(library)
    return _avx512_library[0]


@intrinsic
def vml_avx512_sqrt_f32(typingctx, x):
    """√x as MKL VML's AVX-512 high-accuracy kernel computes it (float32; the target needs AVX-512 F and VL)."""
    if x != types.float32:
        return None
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        context.active_code_library.add_linking_library(_avx512_sqrt_library(context))
        fn = builder.module.globals.get(_AVX512_SQRT)
        if fn is None:
            fn = ir.Function(builder.module, ir.FunctionType(ir.FloatType(), [ir.FloatType()]), _AVX512_SQRT)
        return builder.call(fn, args)

    return sig, codegen


@njit(**JIT)
def vml_avx512_sqrt_array(x, out):
    """out[:] = :func:`vml_avx512_sqrt_f32` of x[:] (one vectorised loop; used by the probe and the tests)."""
    for i in range(x.shape[0]):
        out[i] = vml_avx512_sqrt_f32(x[i])


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
def prefetch(typingctx, array, index):
    """Ask the cache for ``array[index]``'s line (``llvm.prefetch``: read, keep in all levels). A hint only: an
    index past the array's end reads nothing and cannot fault, so a loop can prefetch ahead without a bound."""
    if not (isinstance(array, types.Array) and isinstance(index, types.Integer)):
        return None
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.globals.get("llvm.prefetch.p0")
        if fn is None:
            fn = ir.Function(builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]), "llvm.prefetch.p0")
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        builder.call(fn, [builder.bitcast(builder.gep(data, [index]), byte), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

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


# --- OpenMP: the threads torch's own operations run on --------------------------------------------------
#
# After each parallel operation, torch's OpenMP workers spin for a while (libgomp's default wait policy)
# before they sleep. Kernels on threads of their own share the cores with those spinning workers: measured
# here (2 cores), an SGD step of 50M float32 took 17.9-18.5 ms after a torch operation against 15.4 ms on
# OpenMP's threads (and 15.5 ms on its own threads with OMP_WAIT_POLICY=passive). So the kernels run on the OpenMP
# team when torch has loaded libgomp: ``GOMP_parallel(omp_entry, words)``, each thread taking its piece.


def _libgomp() -> ctypes.CDLL | None:
    """The libgomp already in this process (torch's), never a new one: loading another could replace the one
    torch was built with."""
    try:
        return ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except (OSError, AttributeError):
        return None


def _zero():  # pragma: no cover - linked where libgomp is absent, never called there
    return np.int32(0)


_GOMP = _libgomp()
#: whether kernels run on OpenMP's threads in this process (decided once, when this module is imported)
OPENMP = _GOMP is not None and hasattr(_GOMP, "GOMP_parallel")
if OPENMP:
    for _name in ("omp_get_thread_num", "omp_get_num_threads"):
        binding.add_symbol(_name, ctypes.cast(getattr(_GOMP, _name), ctypes.c_void_p).value)
    GOMP_PARALLEL = _GOMP.GOMP_parallel
    GOMP_PARALLEL.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    GOMP_PARALLEL.restype = None
else:  # the symbols still resolve, so that every generated module links; OPENMP keeps them uncalled
    _stub = numba.cfunc(types.int32(), cache=JIT["cache"])(_zero).address
    for _name in ("omp_get_thread_num", "omp_get_num_threads"):
        binding.add_symbol(_name, _stub)
    GOMP_PARALLEL = None

_omp_thread = types.ExternalFunction("omp_get_thread_num", types.int32())
_omp_threads = types.ExternalFunction("omp_get_num_threads", types.int32())


@intrinsic
def _voidptr(typingctx, address):
    """An integer address as a ``void*``."""
    sig = types.voidptr(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return sig, codegen


@intrinsic
def _int64_pointer(typingctx, data):
    """A ``void*`` as an ``int64*``."""
    sig = types.CPointer(types.int64)(data)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(inline="always")
def omp_words(data, n):
    """The ``n`` int64 words at ``data`` (the launcher's argument block)."""
    return numba.carray(_int64_pointer(data), n)


@njit(inline="always")
def omp_array(address, shape, dtype):
    """The C-contiguous array of ``shape`` and ``dtype`` at ``address``."""
    return numba.carray(_voidptr(address), shape, dtype)


@njit(inline="always")
def omp_piece(n):
    """This OpenMP thread's piece ``lo, hi`` of ``range(n)``: equal contiguous pieces, one per thread."""
    t = np.int64(_omp_thread())
    count = np.int64(_omp_threads())
    per = (n + count - 1) // count
    lo = min(n, t * per)
    return lo, min(n, lo + per)


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



@numba.cfunc(types.void(types.voidptr), cache=JIT["cache"], error_model="numpy")
def count_nonfinite_entry(data):
    """:func:`count_nonfinite` of this OpenMP thread's piece. Words: n, len(starts), grad_ptrs, starts, out (an
    int64 per thread), the gradients' itemsize (4: float32, else float64); out[t] = this thread's count."""
    w = omp_words(data, 6)
    lo, hi = omp_piece(w[0])
    out = omp_array(w[4], _omp_threads(), np.int64)
    ptrs, starts = omp_array(w[2], w[1] - 1, np.int64), omp_array(w[3], w[1], np.int64)
    if w[5] == 4:
        out[_omp_thread()] = count_nonfinite(omp_array(w[2], 0, np.float32), ptrs, starts, lo, hi)
    else:
        out[_omp_thread()] = count_nonfinite(omp_array(w[2], 0, np.float64), ptrs, starts, lo, hi)
