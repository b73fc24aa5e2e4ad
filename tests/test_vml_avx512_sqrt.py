"""MKL VML's AVX-512 float32 square root, computed in the kernels' registers (``sqrt="vml-avx512"``).

torch's CPU ``sqrt`` is VML's ``vmsSqrt``; on an Intel CPU with AVX-512 MKL runs its AVX-512 kernel, whose
results are 1 ulp below the correctly rounded root on about 0.6 % of inputs. The kernels reproduce that kernel's
instructions (``runtime.vml_avx512_sqrt_f32``) so that their loop stays fused. These tests compare it with
torch's own ``sqrt`` bit for bit on tens of millions of inputs, every float of the ranges where a mistake would
show, and check that the generated kernels take it only where it is VML's arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamlab import rules
from adamlab.kernels import Arithmetic, kernel_for, runtime
from adamlab.kernels.codegen import kernel_source
from adamlab.kernels.trace import trace_update

pytestmark = pytest.mark.skipif(
    not (torch.backends.mkl.is_available() and runtime.avx512_sqrt_available()),
    reason="needs torch with MKL and a numba target with AVX-512 F and VL",
)


def mkl_takes_its_avx512_path() -> bool:
    """Told from torch's results alone, not from ours: MKL's AVX-512 kernel leaves 0.4–0.8 % of [0.5, 2) 1 ulp
    below the correctly rounded root and none above (its AVX2 path: none; its SSE4.2 path: 17 %)."""
    x = np.arange(0x3F000000, 0x40000000, 7, dtype=np.uint32).view(np.float32)
    d = torch.sqrt(torch.from_numpy(x)).numpy().view(np.int32) - np.sqrt(x).view(np.int32)
    return bool(0.004 < np.count_nonzero(d) / x.size < 0.008 and d.min() == -1 and d.max() == 0)


@pytest.fixture(scope="module")
def on_avx512_path() -> None:
    from adamlab.torch.arithmetic import torch_arithmetic, warm_vml

    warm_vml()
    if not mkl_takes_its_avx512_path():
        pytest.skip("MKL does not take its AVX-512 path on this CPU (the kernels call VML instead)")
    arithmetic = torch_arithmetic()  # the face chose the root in registers
    assert arithmetic is not None and arithmetic.sqrt == "vml-avx512"


def _differing(bits: np.ndarray) -> int:
    """How many of these float32 bit patterns get another result from us than from torch.sqrt (bitwise)."""
    x = bits.view(np.float32)
    ours = np.empty_like(x)
    runtime.vml_avx512_sqrt_array(x, ours)
    theirs = torch.sqrt(torch.from_numpy(x)).numpy()
    return int(np.count_nonzero(ours.view(np.uint32) != theirs.view(np.uint32)))


@pytest.mark.parametrize(
    ("lo", "hi", "stride"),
    [
        (0x3F000000, 0x40000000, 1),  # [0.5, 2): every float; the result at every other exponent follows
        (0x00000000, 0x05000000, 1),  # ±0, subnormals and the normals below 2^-75 (the rescaled branch)
        (0x7E000000, 0x7F800001, 1),  # the largest floats and +inf
        (0x7F800001, 0x80000000, 4099),  # NaNs (quieted, payload kept)
        (0x80000000, 0x100000000, 65537),  # −0, negatives (the default NaN), −inf, negative NaNs
        (0x00000000, 0x100000000, 101),  # a sweep over every bit pattern
    ],
)
def test_equals_torch_sqrt_bit_for_bit(on_avx512_path: None, lo: int, hi: int, stride: int) -> None:
    chunk = 1 << 24
    for start in range(lo, hi, chunk * stride):
        bits = np.arange(start, min(start + chunk * stride, hi), stride, dtype=np.uint64).astype(np.uint32)
        assert _differing(bits) == 0, hex(start)


def test_it_is_not_the_correctly_rounded_root(on_avx512_path: None) -> None:
    """The comparison above can tell: VML's root (and ours) is 1 ulp below √x on about 0.6 % of [0.5, 2)."""
    x = np.arange(0x3F000000, 0x40000000, dtype=np.uint32).view(np.float32)
    ours = np.empty_like(x)
    runtime.vml_avx512_sqrt_array(x, ours)
    below = np.count_nonzero(ours != np.sqrt(x))
    assert 0.004 < below / x.size < 0.008
    assert np.all(ours.view(np.int32) - np.sqrt(x).view(np.int32) >= -1)


@pytest.mark.parametrize("n", [1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 63, 100, 1001])
def test_every_length_uses_the_same_root(on_avx512_path: None, n: int) -> None:
    """Vector bodies (4, 8, 16 lanes) and the scalar remainder give the same bits."""
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.random(n).astype(np.float32), np.float32([0.0, 1e-40, 3e-30, np.inf])])[:n]
    assert _differing(x.view(np.uint32)) == 0


def test_the_fused_kernel_equals_the_one_that_calls_vml(on_avx512_path: None) -> None:
    """Adam (AMSGrad, weight decay) in float32: fused with the root in registers, or cut in blocks around VML
    calls: the same bits, also where v is 0 (the special branch) or tiny (the rescaled one)."""
    rule = rules.Adam(preset="torch", amsgrad=True, weight_decay=0.01)
    fused = kernel_for(rule, "float32", Arithmetic(fma=True, sqrt="vml-avx512"))
    blocked = kernel_for(rule, "float32", Arithmetic(fma=True, sqrt="vml"))
    assert "vml_sqrt_f32(" not in fused.source and "vml_avx512_sqrt_f32(" in fused.source
    assert "vml_sqrt_f32(" in blocked.source
    rng = np.random.default_rng(0)
    n = 10_007
    g = rng.standard_normal(n).astype(np.float32)
    g[::7] = 0.0
    g[1::11] = 1e-30  # v far below 2^-78
    p0 = rng.standard_normal(n).astype(np.float32)
    results = []
    for kernel in (fused, blocked):
        p, states = p0.copy(), {name: np.zeros(n, np.float32) for name in kernel.state_names}
        for t in (1, 2, 3):
            coefs = kernel.rows([rule.coefficients(t, {})])
            kernel.step_arrays(p, g * t, *(states[name] for name in kernel.state_names), coefs=coefs)
        results.append(np.concatenate([p, *states.values()]).view(np.uint32))
    assert np.array_equal(*results)


def test_float64_still_calls_vml_and_float32_is_one_loop() -> None:
    trace = trace_update(rules.Adam(preset="torch"), tuple(rules.Adam(preset="torch").coefficients(1, {})))
    arithmetic = Arithmetic(fma=True, sqrt="vml-avx512")
    f32 = kernel_source(trace, "float32", arithmetic, runtime.VERSION).source
    f64 = kernel_source(trace, "float64", arithmetic, runtime.VERSION).source
    assert "r0 = scratch[0]" not in f32 and "vml_avx512_sqrt_f32(" in f32  # no scratch rows: one fused loop
    assert "vml_sqrt_f64(" in f64 and "r0 = scratch[0]" in f64


def test_refused_where_the_target_has_no_avx512(monkeypatch: pytest.MonkeyPatch) -> None:
    from adamlab import kernels

    monkeypatch.setattr(runtime, "avx512_sqrt_available", lambda: False)
    monkeypatch.setattr(kernels, "_KERNELS", {})
    with pytest.raises(ValueError, match="AVX-512"):
        kernel_for(rules.Adam(preset="torch"), "float32", Arithmetic(fma=True, sqrt="vml-avx512"))
