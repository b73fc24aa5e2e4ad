"""numba Adam kernels over flat 1-D arrays (benchmark candidates, not library code).

The arithmetic mirrors torch.optim.Adam's single-tensor path op by op, in the array dtype
(scalars are passed already cast to that dtype, so fp32 stays fp32):

    m = m + (1-b1) * (g - m)                 # exp_avg.lerp_(g, 1-b1)
    v = v * b2 + (1-b2) * g * g              # exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)
    d = sqrt(v) / sqrt(1-b2^t) + eps         # (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
    p = p + (-lr/(1-b1^t)) * m / d           # param.addcdiv_(m, d, value=-step_size)

torch's vectorised CPU kernels round two of these with a fused multiply-add (lerp is an
explicit ``fmadd``; addcmul's ``self + s*t1*t2`` is contracted): ``m = fma(1-b1, g-m, m)`` and
``v = fma((1-b2)*g, g, v*b2)``. ``adam_flat`` does the same through LLVM's fma intrinsic, which
makes it bit-identical to torch's single-tensor path on m and v (measured); ``adam_flat_nofma``
is the literal formula, a few ulp away.

``kernel_choice.py`` copies this file into a temporary package with ``cache=True`` to test
numba's on-disk cache, so keep the decorators on one line each.
"""

import numpy as np
from numba import njit, prange
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):
    """Fused multiply-add (one rounding): LLVM's llvm.fma, a vfmadd instruction on x86-64."""
    if not (a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@njit(parallel=True, fastmath=False, cache=False)
def adam_flat(p, g, m, v, w1, b2, c2, bc2_sqrt, eps, neg_step):
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = fma(w1, gi - m[i], m[i])
        vi = fma(c2 * gi, gi, v[i] * b2)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] + neg_step * mi / (np.sqrt(vi) / bc2_sqrt + eps)


@njit(parallel=True, fastmath=False, cache=False)
def adam_flat_nofma(p, g, m, v, w1, b2, c2, bc2_sqrt, eps, neg_step):
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = m[i]
        mi = mi + w1 * (gi - mi)
        vi = v[i] * b2 + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] + neg_step * mi / (np.sqrt(vi) / bc2_sqrt + eps)


@njit(parallel=False, fastmath=False, cache=False)
def adam_flat_serial(p, g, m, v, w1, b2, c2, bc2_sqrt, eps, neg_step):
    for i in range(p.shape[0]):
        gi = g[i]
        mi = fma(w1, gi - m[i], m[i])
        vi = fma(c2 * gi, gi, v[i] * b2)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] + neg_step * mi / (np.sqrt(vi) / bc2_sqrt + eps)


@njit(parallel=True, fastmath=False, cache=False)
def adamax_flat(p, g, m, u, w1, b2, eps, neg_clr):
    """torch.optim.Adamax: m.lerp_(g, 1-b1); u = max(u*b2, |g|+eps); p.addcdiv_(m, u, value=-clr)."""
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = fma(w1, gi - m[i], m[i])
        ui = max(u[i] * b2, abs(gi) + eps)
        m[i] = mi
        u[i] = ui
        p[i] = p[i] + neg_clr * mi / ui
