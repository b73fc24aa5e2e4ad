"""Candidate flat-buffer Adam kernels for ``kernel_choice.py`` (benchmark code, not library code).

Every candidate takes the same per-step scalars, computed once in Python doubles exactly as
torch.optim.Adam's single-tensor path computes them (``adam_scalars``), and updates four flat,
contiguous buffers in place: param, grad (read only), exp_avg, exp_avg_sq.

* numba: ``_nb_adam.py`` (imported lazily: importing numba costs ~0.3-0.5 s).
* C + OpenMP, compiled by gcc into a shared library and called through ctypes (``build_c``).
* C++ torch extension via ``torch.utils.cpp_extension.load_inline`` with ``at::parallel_for``
  (``build_cpp``): the route a torch-native extension would take.
* ``torch._fused_adam_`` on one flat tensor (single-element lists).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

# Flags shared by the C and C++ kernels: no FMA contraction except where written (torch's
# vectorised lerp is an explicit fmadd), no errno on sqrt so the loop vectorises.
NATIVE_FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno"]


def adam_scalars(lr: float, beta1: float, beta2: float, eps: float, step: int) -> tuple[float, ...]:
    """(w1, b2, c2, bc2_sqrt, eps, neg_step) in Python doubles, as torch's single-tensor Adam."""
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    return (1 - beta1, beta2, 1 - beta2, bias_correction2**0.5, eps, -step_size)


# --------------------------------------------------------------------------- torch fused


def torch_fused_flat(p, g, m, v, step_t, lr, beta1, beta2, eps):
    """``torch._fused_adam_`` on single-element lists (the caller owns the step tensor)."""
    step_t += 1
    torch._fused_adam_(
        [p],
        [g],
        [m],
        [v],
        [],
        [step_t],
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        weight_decay=0.0,
        eps=eps,
        amsgrad=False,
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )


# --------------------------------------------------------------------------- C via ctypes

C_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <omp.h>

#define ADAM_BODY(T, FMA, SQRT)                                                   \
    _Pragma("omp parallel for simd schedule(static)")                            \
    for (int64_t i = 0; i < n; ++i) {                                             \
        T gi = g[i];                                                              \
        T mi = m[i];                                                              \
        mi = FMA(w1, gi - mi, mi);                                                \
        T vi = FMA(c2 * gi, gi, v[i] * b2);                                        \
        m[i] = mi;                                                                \
        v[i] = vi;                                                                \
        p[i] = p[i] + neg_step * mi / (SQRT(vi) / bc2s + eps);                    \
    }

void adam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
              int64_t n, double w1_, double b2_, double c2_, double bc2s_, double eps_,
              double neg_step_) {
    const float w1 = (float)w1_, b2 = (float)b2_, c2 = (float)c2_, bc2s = (float)bc2s_,
                eps = (float)eps_, neg_step = (float)neg_step_;
    ADAM_BODY(float, fmaf, sqrtf)
}

void adam_f64(double *restrict p, const double *restrict g, double *restrict m,
              double *restrict v, int64_t n, double w1, double b2, double c2, double bc2s,
              double eps, double neg_step) {
    ADAM_BODY(double, fma, sqrt)
}

int c_max_threads(void) { return omp_get_max_threads(); }
"""


class CKernel:
    """gcc -fopenmp shared library called through ctypes on raw data pointers."""

    def __init__(self, lib_path: Path):
        self.lib = ctypes.CDLL(str(lib_path))
        argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] + [ctypes.c_double] * 6
        for name in ("adam_f32", "adam_f64"):
            fn = getattr(self.lib, name)
            fn.argtypes = argtypes
            fn.restype = None
        self.lib.c_max_threads.restype = ctypes.c_int

    def step(self, p, g, m, v, scalars):
        fn = self.lib.adam_f32 if p.dtype == torch.float32 else self.lib.adam_f64
        fn(p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr(), p.numel(), *scalars)


def build_c(build_dir: Path) -> tuple[CKernel, float]:
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / "adam_c.c"
    lib = build_dir / "adam_c.so"
    src.write_text(C_SOURCE)
    t0 = time.perf_counter()
    subprocess.run(
        ["gcc", *NATIVE_FLAGS, "-fopenmp", "-shared", "-fPIC", "-o", str(lib), str(src), "-lm"],
        check=True,
    )
    return CKernel(lib), time.perf_counter() - t0


# --------------------------------------------------------------------------- C++ load_inline

CPP_SOURCE = r"""
#include <ATen/Parallel.h>
#include <cmath>

template <typename T>
static void adam_impl(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                      int64_t n, T w1, T b2, T c2, T bc2s, T eps, T neg_step) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      T gi = g[i];
      T mi = m[i];
      mi = std::fma(w1, gi - mi, mi);
      T vi = std::fma(c2 * gi, gi, v[i] * b2);
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] + neg_step * mi / (std::sqrt(vi) / bc2s + eps);
    }
  });
}

void adam_step(at::Tensor p, at::Tensor g, at::Tensor m, at::Tensor v, double w1, double b2,
               double c2, double bc2s, double eps, double neg_step) {
  TORCH_CHECK(p.is_contiguous() && g.is_contiguous() && m.is_contiguous() && v.is_contiguous());
  TORCH_CHECK(g.numel() == p.numel() && m.numel() == p.numel() && v.numel() == p.numel());
  TORCH_CHECK(g.scalar_type() == p.scalar_type() && m.scalar_type() == p.scalar_type() &&
              v.scalar_type() == p.scalar_type());
  if (p.scalar_type() == at::kFloat) {
    adam_impl<float>(p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(),
                     v.data_ptr<float>(), p.numel(), (float)w1, (float)b2, (float)c2,
                     (float)bc2s, (float)eps, (float)neg_step);
  } else {
    TORCH_CHECK(p.scalar_type() == at::kDouble);
    adam_impl<double>(p.data_ptr<double>(), g.data_ptr<double>(), m.data_ptr<double>(),
                      v.data_ptr<double>(), p.numel(), w1, b2, c2, bc2s, eps, neg_step);
  }
}
"""


def load_cpp(build_dir: Path):
    from torch.utils.cpp_extension import load_inline

    build_dir.mkdir(parents=True, exist_ok=True)
    return load_inline(
        name="adamlab_bench_adam_cpp",
        cpp_sources=[CPP_SOURCE],
        functions=["adam_step"],
        extra_cflags=[*NATIVE_FLAGS, "-fopenmp"],
        extra_ldflags=["-fopenmp"],
        build_directory=str(build_dir),
        verbose=False,
    )


def build_cpp(build_dir: Path, timeout_s: float = 120.0):
    """Cold build in a subprocess (so a slow build can be abandoned), then load here.

    Returns (module or None, build seconds, load seconds, message).
    """
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); from pathlib import Path; "
        f"import _adam_kernels as k; k.load_cpp(Path({str(build_dir)!r}))"
    )
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, "MAX_JOBS": "2"},
        )
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, 0.0, f"abandoned: build > {timeout_s:.0f} s"
    build_s = time.perf_counter() - t0
    if res.returncode != 0:
        return None, build_s, 0.0, "build failed: " + (res.stderr or res.stdout)[-400:]
    t1 = time.perf_counter()
    mod = load_cpp(build_dir)
    return mod, build_s, time.perf_counter() - t1, "ok"


def numpy_views(*tensors):
    """Zero-copy numpy views of CPU tensors (memory is shared)."""
    return tuple(t.detach().numpy() for t in tensors)
