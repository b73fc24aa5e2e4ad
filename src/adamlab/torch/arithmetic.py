"""How torch's CPU kernels round, for the fast path's generated kernels to round the same way.

Measured on x86-64 builds of torch 2.x (``docs/fidelity.md``):

- at ``ATEN_CPU_CAPABILITY`` avx2 and avx512 (the default on CPUs with FMA), ``lerp``, ``addcmul`` and
  ``add(alpha=)`` are fused multiply-adds; at ``default`` each product is rounded on its own;
- ``sqrt`` of a contiguous float32/float64 tensor is MKL VML's ``vmsSqrt``/``vmdSqrt`` in high-accuracy mode,
  which is not correctly rounded (about 0.7 % of float32 results are 1 ulp off) and differs between CPU vendors,
  since MKL picks its code path by CPU. Builds without MKL use a correctly rounded square root. Where MKL takes
  its AVX-512 path, the kernels compute that path's float32 root in registers (``sqrt="vml-avx512"``), after a
  check that VML's own results equal it (:func:`_vml_is_avx512_kernel`); elsewhere they call VML.

:func:`torch_arithmetic` reads the dispatch level, finds VML's symbols in ``libtorch_cpu`` and registers them
for the kernels, then checks the model against torch itself on a probe of random values. If any primitive
differs (an unknown build or CPU), it returns None and the fast path computes with torch's own operations on
its flat buffers instead, which is exact by construction.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

import numpy as np
import torch

from adamlab.kernels import Arithmetic, runtime

_PROBE = 4099  # a block plus a tail, odd, so that vector loops and their remainders are both exercised


@functools.cache
def torch_arithmetic() -> Arithmetic | None:
    """The arithmetic of this process's torch CPU kernels, or None when no kernel model reproduces it."""
    fma = torch.backends.cpu.get_cpu_capability() != "DEFAULT"
    sqrt = "vml" if _register_vml() else "exact"
    warm_vml()
    if sqrt == "vml" and runtime.avx512_sqrt_available() and _vml_is_avx512_kernel():
        sqrt = "vml-avx512"
    arithmetic = Arithmetic(fma=fma, sqrt=sqrt)
    return arithmetic if all(_probe(arithmetic, dtype) for dtype in ("float32", "float64")) else None


def _register_vml() -> bool:
    """Register MKL VML's square roots from libtorch_cpu (where torch links MKL); False if there are none."""
    if not torch.backends.mkl.is_available():
        return False
    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    try:
        lib = ctypes.CDLL(path)
        addresses = {
            "float32": ctypes.cast(lib.vmsSqrt, ctypes.c_void_p).value,
            "float64": ctypes.cast(lib.vmdSqrt, ctypes.c_void_p).value,
        }
    except (OSError, AttributeError):
        return False
    runtime.register_vml_sqrt(addresses)
    return True


def warm_vml() -> None:
    """Run torch's ``sqrt`` once on every OpenMP worker thread before the probe.

    Measured here (torch 2.13.0, MKL 2024.2, Xeon with AVX-512, 2 threads): in about one process in four, the first
    ``torch.sqrt`` of a process computes the part that an OpenMP worker thread takes (torch hands VML chunks of
    2048 elements to its threads) with errors near 1e-4 relative, as a low-accuracy mode would; every later call
    in that process is right. The probe's own ``sqrt`` would otherwise be that first call, fail, and send the fast
    path to its slower fallback for the whole process. (The first step of torch.optim itself meets the same.)
    """
    n = 4 * 2048 * max(1, torch.get_num_threads())
    for dtype in (torch.float32, torch.float64):
        torch.sqrt(torch.ones(n, dtype=dtype))


def _vml_is_avx512_kernel() -> bool:
    """True when torch's float32 ``sqrt`` (VML) equals :func:`runtime.vml_avx512_sqrt_f32` bit for bit on
    every third float of [0.5, 2) (the binade pair that fixes the result at every exponent), on subnormals and
    the smallest normals (the rescaled branch), on the largest floats and on ±0, ±inf, negatives and NaNs.

    MKL's other paths compute other roots (its AVX2 path a correctly rounded one, its SSE4.2 path one 1 ulp off
    on 17 % of inputs); each one differs from this one on thousands of these inputs."""
    bits = np.concatenate([
        np.arange(0x3F000000, 0x40000000, 3, dtype=np.uint32),  # [0.5, 2), every third float
        np.arange(0x00000000, 0x04000000, 257, dtype=np.uint32),  # subnormals and the rescaled small normals
        np.arange(0x7E000000, 0x7F800001, 257, dtype=np.uint32),  # the largest floats, +inf
        np.array([0x80000000, 0x80000001, 0xBF800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00001], np.uint32),
    ])  # fmt: skip
    x = bits.view(np.float32)
    ours = np.empty_like(x)
    runtime.vml_avx512_sqrt_array(x, ours)
    theirs = torch.sqrt(torch.from_numpy(x)).numpy()
    return bool(np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)))


def _probe(arithmetic: Arithmetic, dtype: str) -> bool:
    """True when a probe kernel (lerp, addcmul, axpy, sqrt, addcdiv, scalar/tensor) equals torch's operations."""
    from adamlab.kernels import kernel_for

    rule = _ProbeRule(preset="torch")
    kernel = kernel_for(rule, dtype, arithmetic)
    rng = np.random.default_rng(0)
    p, g, a, b = (rng.standard_normal(_PROBE).astype(dtype) for _ in range(4))
    b = np.abs(b)
    k = rule.coefficients(1, {})
    expected, expected_state = rule.update(_torch_ops(), k, *map(torch.from_numpy, (p, g)),
                                           {"a": torch.from_numpy(a), "b": torch.from_numpy(b)})  # fmt: skip
    states = {"a": a.copy(), "b": b.copy()}
    out = p.copy()
    kernel.step_arrays(out, g, *(states[n] for n in kernel.state_names), coefs=kernel.rows([k]))
    return np.array_equal(out, expected.numpy()) and all(
        np.array_equal(states[n], expected_state[n].numpy()) for n in kernel.state_names
    )


def _torch_ops() -> Any:
    from adamlab.ops.torch import TORCH_OPS

    return TORCH_OPS


def _probe_rule() -> type:
    import dataclasses

    from adamlab.rules.base import Rule, StateLayout, per_element

    @dataclasses.dataclass(frozen=True)
    class ProbeRule(Rule):
        """Every primitive the torch order uses, with weights on both sides of ½."""

        name = "probe"

        def layout(self) -> StateLayout:
            return StateLayout(per_element("a", "b"))

        def coefficients(self, t: Any, state: Any) -> dict[str, Any]:
            return {"w_small": 0.1, "w_large": 0.9, "v": 0.001, "alpha": -0.37, "s": 1.7, "eps": 1e-8}

        def update(self, ops: Any, k: Any, p: Any, g: Any, state: Any) -> tuple[Any, Any]:
            a = ops.lerp(ops.lerp(state["a"], g, k["w_small"]), g, k["w_large"])
            b = ops.addcmul(state["b"] * k["w_large"], g, g, k["v"])
            q = ops.axpy(g, p, k["alpha"])
            p = ops.addcdiv(p, a, ops.sqrt(b) / k["s"] + k["eps"], k["alpha"])
            p = ops.axpy(p, q * (k["s"] / (ops.sqrt(b) + k["eps"])), k["v"])
            return p, {"a": a, "b": b}

    return ProbeRule


_ProbeRule = _probe_rule()
