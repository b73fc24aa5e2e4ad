"""numba kernels: each rule's elementwise math, once more, as one pass over a flat CPU buffer.

A kernel is a second expression of a rule (:mod:`adamlab.rules`), allowed only because the tests compare
it with the rule for every option it accepts. Each body follows its rule op by op in the parameter's
dtype: a Python float the rule multiplies a tensor by is cast to that dtype first (as torch does), and
there is no fused multiply-add or fast-math, so float32 results match the rule to an ulp or two (torch's
vectorised ``sqrt`` is not always correctly rounded; LLVM's is) and float64 to ~1e-16.

Calling convention of every ``*_step`` driver::

    step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads)

- ``p``: the flat parameters of one param group (1-D, contiguous); tensor j is ``p[starts[j]:starts[j+1]]``.
- ``s0, s1, s2``: flat state arrays in the rule's slot order (unused slots: an empty array).
- ``grad_ptrs[j]``: address of tensor j's contiguous gradient (its own tensor, or a slot of the flat
  gradient buffer); 0 means "no gradient": tensor j is left untouched.
- ``coefs``: float64 rows of host scalars (bias corrections, ...): one row per tensor, or one row for all.
- ``flags``: int64 options (maximize, weight-decay mode, ...); ``nthreads``: how many parallel pieces.

The flat range is cut into ``nthreads`` equal contiguous pieces (one per thread), each walking the tensors
it overlaps, so 10,000 small tensors cost one call, not 10,000.
"""

# ruff: noqa: SIM108  (if/else blocks, not conditional expressions, in the loops: they vectorise reliably)

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
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


#: numpy's error model: x/0 gives inf/nan as in torch (numba's default raises, which also blocks SIMD)
_JIT = dict(cache=_cache_usable(), error_model="numpy", fastmath=False, nogil=True)


@intrinsic
def _typed_pointer(typingctx, address, like):
    """Turn an integer address into a pointer to ``like``'s element type."""
    sig = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(inline="always")
def _grad_piece(address, offset, n, like):
    """Elements ``offset .. offset+n`` of the contiguous gradient at ``address`` (same dtype as ``like``)."""
    return numba.carray(_typed_pointer(address + offset * like.itemsize, like), n)


@njit(inline="always")
def _thread_range(n, th, nthreads):
    per = (n + nthreads - 1) // nthreads
    lo = min(n, th * per)
    return lo, min(n, lo + per)


@njit(inline="always")
def _maximum(a, b):
    """torch.maximum: NaN if either is NaN."""
    return a if (a > b or a != a) else b


@njit(inline="always")
def _row(coefs, j):
    return coefs[j] if coefs.shape[0] > 1 else coefs[0]


# Each rule: ``_<rule>_math`` is the elementwise math on scalars (flags only steer arithmetic), and a loop
# per set of state arrays it touches (a slot used only under a flag would keep LLVM from vectorising).
# Coefficient rows and flags are listed above each rule, in the order kernel_plans.py writes them.
# The ``*_step`` drivers repeat the same thread/tensor walk on purpose: a factory closing over the inner
# loop (``def driver(inner): @njit(parallel=True, cache=True) def step(...)``) compiles, but numba's cache
# never hits for such closures (0 hits in a second process, measured with numba 0.68), so every process
# would recompile all eight parallel drivers (0.5–1 s each, as docs/fast-path.md measures) before its first step.


# --- Adam / AdamW (rules/adam.py) ------------------------------------------------------------------------
# coefs: beta1, 1-beta1, beta2, 1-beta2, wd, 1-lr*wd, eps, eps_root, bc1, bc2, bc1_next, scale
# flags: maximize, l2, decoupled, amsgrad (0 off, 1 max of v, 2 max of v_hat), nesterov, eps_hat, guard


@njit(inline="always")
def _adam_math(gi, pi, mi, vi, ui, k, f):
    """(θ, m, v, running max) of one element after one step."""
    beta1, w1, beta2, w2, wd, keep, eps, eps_root, bc1, bc2, bc1_next, scale, one = k
    maximize, l2, decay, ams, nesterov, eps_hat, guard = f
    if maximize:
        gi = -gi
    if l2:
        gi = gi + wd * pi
    mi = beta1 * mi + w1 * gi
    vi = beta2 * vi + w2 * (gi * gi)
    if ams == 1:
        ui = _maximum(ui, vi)
        v_max, v_hat = ui, ui / bc2
    elif ams == 2:
        ui = _maximum(ui, vi / bc2)
        v_max, v_hat = ui * bc2, ui
    else:
        v_max, v_hat = vi, vi / bc2
    if decay:
        pi = pi * keep
    m_scaled = mi
    if nesterov:
        m_scaled = (beta1 * mi) / bc1_next + (w1 * gi) / bc1
    x = v_hat
    if eps_hat:
        x = v_max
    d = np.sqrt(x + eps_root) + eps
    if guard and not d > 0:
        d = one
    return pi - (scale * m_scaled) / d, mi, vi, ui


@njit(inline="always")
def _adam_consts(p, c, f):
    T = p.dtype.type
    k = (T(c[0]), T(c[1]), T(c[2]), T(c[3]), T(c[4]), T(c[5]), T(c[6]), T(c[7]), T(c[8]), T(c[9]), T(c[10]))
    return (*k, T(c[11]), T(1)), (f[0], f[1], f[2], f[3], f[4], f[5], f[6])


@njit(**_JIT)
def _adam(p, g, m, v, c, f):
    k, fl = _adam_consts(p, c, f)
    for i in range(p.shape[0]):
        pi, mi, vi, _ = _adam_math(g[i], p[i], m[i], v[i], v[i], k, fl)
        p[i] = pi
        m[i] = mi
        v[i] = vi


@njit(**_JIT)
def _amsgrad(p, g, m, v, u, c, f):
    k, fl = _adam_consts(p, c, f)
    for i in range(p.shape[0]):
        pi, mi, vi, ui = _adam_math(g[i], p[i], m[i], v[i], u[i], k, fl)
        p[i] = pi
        m[i] = mi
        v[i] = vi
        u[i] = ui


@njit(parallel=True, **_JIT)
def adam_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p)
                if flags[3] == 0:
                    _adam(p[a:b], g, s0[a:b], s1[a:b], _row(coefs, j), flags)
                else:
                    _amsgrad(p[a:b], g, s0[a:b], s1[a:b], s2[a:b], _row(coefs, j), flags)
            j += 1


# --- Adamax (rules/adamax.py) -----------------------------------------------------------------------------
# coefs: beta1, 1-beta1, beta2, wd, 1-lr*wd, eps, lr/bc1      flags: maximize, l2, decoupled, eps_in_max, guard


@njit(**_JIT)
def _adamax(p, g, m, u, c, f):
    T = p.dtype.type
    beta1, w1, beta2, wd, keep, eps, clr = T(c[0]), T(c[1]), T(c[2]), T(c[3]), T(c[4]), T(c[5]), T(c[6])
    maximize, l2, decay, eps_in_max, guard = f[0], f[1], f[2], f[3], f[4]
    one = T(1)
    for i in range(p.shape[0]):
        gi = g[i]
        if maximize:
            gi = -gi
        pi = p[i]
        if l2:
            gi = gi + wd * pi
        mi = beta1 * m[i] + w1 * gi
        if eps_in_max:
            ui = _maximum(beta2 * u[i], np.abs(gi) + eps)
            d = ui
        else:
            ui = _maximum(beta2 * u[i], np.abs(gi))
            d = ui + eps
        if decay:
            pi = pi * keep
        if guard and not d > 0:
            d = one
        p[i] = pi - (clr * mi) / d
        m[i] = mi
        u[i] = ui


@njit(parallel=True, **_JIT)
def adamax_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p)
                _adamax(p[a:b], g, s0[a:b], s1[a:b], _row(coefs, j), flags)
            j += 1


# --- NAdam (rules/nadam.py) -------------------------------------------------------------------------------
# coefs: beta1, 1-beta1, beta2, 1-beta2, wd, 1-lr*wd, eps, lr, mu_next, 1-mu, bc, bc_next, bc2
# flags: maximize, l2, decoupled, guard


@njit(**_JIT)
def _nadam(p, g, m, v, c, f):
    T = p.dtype.type
    beta1, w1, beta2, w2 = T(c[0]), T(c[1]), T(c[2]), T(c[3])
    wd, keep, eps, lr = T(c[4]), T(c[5]), T(c[6]), T(c[7])
    mu_next, one_minus_mu, bc, bc_next, bc2 = T(c[8]), T(c[9]), T(c[10]), T(c[11]), T(c[12])
    maximize, l2, decay, guard = f[0], f[1], f[2], f[3]
    one = T(1)
    for i in range(p.shape[0]):
        gi = g[i]
        if maximize:
            gi = -gi
        pi = p[i]
        if decay:
            pi = pi * keep
        if l2:
            gi = gi + wd * p[i]
        mi = beta1 * m[i] + w1 * gi
        vi = beta2 * v[i] + w2 * (gi * gi)
        m_bar = (mu_next * mi) / bc_next + (one_minus_mu * gi) / bc
        d = np.sqrt(vi / bc2) + eps
        if guard and not d > 0:
            d = one
        p[i] = pi - (lr * m_bar) / d
        m[i] = mi
        v[i] = vi


@njit(parallel=True, **_JIT)
def nadam_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p)
                _nadam(p[a:b], g, s0[a:b], s1[a:b], _row(coefs, j), flags)
            j += 1


# --- RAdam (rules/radam.py) -------------------------------------------------------------------------------
# coefs: beta1, 1-beta1, beta2, 1-beta2, wd, 1-lr*wd, eps, eps_root, lr, bc1, bc1_next, bc2, rectify, scale
# flags: maximize, l2, decoupled, nesterov, eps_hat, guard


@njit(**_JIT)
def _radam(p, g, m, v, c, f):
    T = p.dtype.type
    beta1, w1, beta2, w2 = T(c[0]), T(c[1]), T(c[2]), T(c[3])
    wd, keep, eps, eps_root, lr = T(c[4]), T(c[5]), T(c[6]), T(c[7]), T(c[8])
    bc1, bc1_next, bc2, rectify, scale = T(c[9]), T(c[10]), T(c[11]), c[12] != 0, T(c[13])
    maximize, l2, decay, nesterov, eps_hat, guard = f[0], f[1], f[2], f[3], f[4], f[5]
    one = T(1)
    for i in range(p.shape[0]):
        gi = g[i]
        if maximize:
            gi = -gi
        pi = p[i]
        if decay:
            pi = pi * keep
        if l2:
            gi = gi + wd * p[i]
        mi = beta1 * m[i] + w1 * gi
        vi = beta2 * v[i] + w2 * (gi * gi)
        if nesterov:
            m_hat = (beta1 * mi) / bc1_next + (w1 * gi) / bc1
        else:
            m_hat = mi / bc1
        if rectify:
            x = vi / bc2
            if eps_hat:
                x = vi
            d = np.sqrt(x + eps_root) + eps
            if guard and not d > 0:
                d = one
            pi = pi - (scale * m_hat) / d
        else:
            pi = pi - lr * m_hat
        p[i] = pi
        m[i] = mi
        v[i] = vi


@njit(parallel=True, **_JIT)
def radam_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p)
                _radam(p[a:b], g, s0[a:b], s1[a:b], _row(coefs, j), flags)
            j += 1


# --- SGD (rules/sgd.py) -----------------------------------------------------------------------------------
# coefs: lr, momentum, 1-dampening, wd, 1-lr*wd, first step (1/0)
# flags: maximize, l2, decoupled, momentum on, nesterov, lr_in_momentum


@njit(inline="always")
def _sgd_consts(p, c, f):
    T = p.dtype.type
    return (T(c[0]), T(c[1]), T(c[2]), T(c[3]), T(c[4]), c[5] != 0), (f[0], f[1], f[2], f[4], f[5])


@njit(inline="always")
def _sgd_gradient(gi, pi, k, fl):
    """(θ after decoupled decay, g after maximize and L2)."""
    lr, mu, undamped, wd, keep, first = k
    maximize, l2, decay, nesterov, lr_in_momentum = fl
    if maximize:
        gi = -gi
    if l2:
        gi = gi + wd * pi
    if decay:
        pi = pi * keep
    return pi, gi


@njit(**_JIT)
def _sgd(p, g, c, f):
    k, fl = _sgd_consts(p, c, f)
    for i in range(p.shape[0]):
        pi, gi = _sgd_gradient(g[i], p[i], k, fl)
        p[i] = pi - k[0] * gi


@njit(**_JIT)
def _sgd_momentum(p, g, buf, c, f):
    k, fl = _sgd_consts(p, c, f)
    lr, mu, undamped, first = k[0], k[1], k[2], k[5]
    nesterov, lr_in_momentum = fl[3], fl[4]
    for i in range(p.shape[0]):
        pi, gi = _sgd_gradient(g[i], p[i], k, fl)
        if lr_in_momentum:
            gi = lr * gi
        b = gi
        if not first:
            b = mu * buf[i] + undamped * gi
        direction = b
        if nesterov:
            direction = gi + mu * b
        if not lr_in_momentum:
            direction = lr * direction
        p[i] = pi - direction
        buf[i] = b


@njit(parallel=True, **_JIT)
def sgd_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p)
                if flags[3]:
                    _sgd_momentum(p[a:b], g, s0[a:b], _row(coefs, j), flags)
                else:
                    _sgd(p[a:b], g, _row(coefs, j), flags)
            j += 1


# --- Adagrad (rules/adagrad.py) ---------------------------------------------------------------------------
# coefs: wd, 1-lr*wd, eps, lr_t      flags: maximize, l2, decoupled, eps_in_sqrt, guard


@njit(**_JIT)
def _adagrad(p, g, s, c, f):
    T = p.dtype.type
    wd, keep, eps, lr_t = T(c[0]), T(c[1]), T(c[2]), T(c[3])
    maximize, l2, decay, eps_in_sqrt, guard = f[0], f[1], f[2], f[3], f[4]
    one = T(1)
    for i in range(p.shape[0]):
        gi = g[i]
        if maximize:
            gi = -gi
        pi = p[i]
        if decay:
            pi = pi * keep
        if l2:
            gi = gi + wd * p[i]
        si = s[i] + gi * gi
        if eps_in_sqrt:
            d = np.sqrt(si + eps)
        else:
            d = np.sqrt(si) + eps
        if guard and not d > 0:
            d = one
        p[i] = pi - (lr_t * gi) / d
        s[i] = si


@njit(parallel=True, **_JIT)
def adagrad_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p)
                _adagrad(p[a:b], g, s0[a:b], _row(coefs, j), flags)
            j += 1


# --- RMSprop (rules/rmsprop.py) ---------------------------------------------------------------------------
# coefs: alpha, 1-alpha, wd, 1-lr*wd, eps, lr, momentum
# flags: maximize, l2, decoupled, centered, eps_in_sqrt, lr_in_momentum, momentum on, guard


@njit(inline="always")
def _rmsprop_math(gi, pi, si, ai, bi, k, f):
    """(θ, square avg, grad avg, momentum buffer) of one element after one step."""
    alpha, w, wd, keep, eps, lr, mu, one = k
    maximize, l2, decay, centered, eps_in_sqrt, lr_in_momentum, momentum, guard = f
    if maximize:
        gi = -gi
    if l2:
        gi = gi + wd * pi
    if decay:
        pi = pi * keep
    si = alpha * si + w * (gi * gi)
    s_used = si
    if centered:
        ai = alpha * ai + w * gi
        s_used = si - ai * ai
    if eps_in_sqrt:
        d = np.sqrt(s_used + eps)
    else:
        d = np.sqrt(s_used) + eps
    if guard and not d > 0:
        d = one
    direction = gi / d
    if lr_in_momentum:
        direction = lr * direction
    if momentum:
        bi = mu * bi + direction
        direction = bi
    if not lr_in_momentum:
        direction = lr * direction
    return pi - direction, si, ai, bi


@njit(inline="always")
def _rmsprop_consts(p, c, f):
    T = p.dtype.type
    k = (T(c[0]), T(c[1]), T(c[2]), T(c[3]), T(c[4]), T(c[5]), T(c[6]), T(1))
    return k, (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7])


@njit(**_JIT)
def _rmsprop(p, g, s, c, f):
    k, fl = _rmsprop_consts(p, c, f)
    for i in range(p.shape[0]):
        pi, si, _, _ = _rmsprop_math(g[i], p[i], s[i], s[i], s[i], k, fl)
        p[i] = pi
        s[i] = si


@njit(**_JIT)
def _rmsprop_momentum(p, g, s, buf, c, f):
    k, fl = _rmsprop_consts(p, c, f)
    for i in range(p.shape[0]):
        pi, si, _, bi = _rmsprop_math(g[i], p[i], s[i], s[i], buf[i], k, fl)
        p[i] = pi
        s[i] = si
        buf[i] = bi


@njit(**_JIT)
def _rmsprop_centered(p, g, s, g_avg, c, f):
    k, fl = _rmsprop_consts(p, c, f)
    for i in range(p.shape[0]):
        pi, si, ai, _ = _rmsprop_math(g[i], p[i], s[i], g_avg[i], s[i], k, fl)
        p[i] = pi
        s[i] = si
        g_avg[i] = ai


@njit(**_JIT)
def _rmsprop_centered_momentum(p, g, s, buf, g_avg, c, f):
    k, fl = _rmsprop_consts(p, c, f)
    for i in range(p.shape[0]):
        pi, si, ai, bi = _rmsprop_math(g[i], p[i], s[i], g_avg[i], buf[i], k, fl)
        p[i] = pi
        s[i] = si
        g_avg[i] = ai
        buf[i] = bi


@njit(parallel=True, **_JIT)
def rmsprop_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g, c = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p), _row(coefs, j)
                if flags[3] and flags[6]:
                    _rmsprop_centered_momentum(p[a:b], g, s0[a:b], s1[a:b], s2[a:b], c, flags)
                elif flags[3]:
                    _rmsprop_centered(p[a:b], g, s0[a:b], s2[a:b], c, flags)
                elif flags[6]:
                    _rmsprop_momentum(p[a:b], g, s0[a:b], s1[a:b], c, flags)
                else:
                    _rmsprop(p[a:b], g, s0[a:b], c, flags)
            j += 1


# --- Adadelta (rules/adadelta.py) -------------------------------------------------------------------------
# coefs: rho, 1-rho, wd, 1-lr*wd, eps, lr      flags: maximize, l2, decoupled


@njit(**_JIT)
def _adadelta(p, g, s, acc, c, f):
    T = p.dtype.type
    rho, w, wd, keep, eps, lr = T(c[0]), T(c[1]), T(c[2]), T(c[3]), T(c[4]), T(c[5])
    maximize, l2, decay = f[0], f[1], f[2]
    for i in range(p.shape[0]):
        gi = g[i]
        if maximize:
            gi = -gi
        pi = p[i]
        if decay:
            pi = pi * keep
        if l2:
            gi = gi + wd * p[i]
        ai = acc[i]
        si = rho * s[i] + w * (gi * gi)
        delta = (np.sqrt(ai + eps) / np.sqrt(si + eps)) * gi
        p[i] = pi - lr * delta
        s[i] = si
        acc[i] = rho * ai + w * (delta * delta)


@njit(parallel=True, **_JIT)
def adadelta_step(p, s0, s1, s2, grad_ptrs, starts, coefs, flags, nthreads):
    for th in prange(nthreads):
        lo, hi = _thread_range(p.shape[0], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                g = _grad_piece(grad_ptrs[j], a - starts[j], b - a, p)
                _adadelta(p[a:b], g, s0[a:b], s1[a:b], _row(coefs, j), flags)
            j += 1


# --- the non-finite check (nonfinite="raise"/"skip") ------------------------------------------------------


@njit(**{**_JIT, "fastmath": {"reassoc"}})
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


@njit(parallel=True, **_JIT)
def count_nonfinite(like, grad_ptrs, starts, nthreads):
    """How many pieces of the gradients hold a NaN or ±inf (``like`` gives the dtype; the length is ``starts[-1]``)."""
    total = 0
    for th in prange(nthreads):
        lo, hi = _thread_range(starts[-1], th, nthreads)
        j = np.searchsorted(starts, lo, side="right") - 1
        while j < starts.shape[0] - 1 and starts[j] < hi:
            a, b = max(lo, starts[j]), min(hi, starts[j + 1])
            if grad_ptrs[j] != 0 and a < b:
                total += _nonfinite(_grad_piece(grad_ptrs[j], a - starts[j], b - a, like))
            j += 1
    return total


#: driver per kernel name (kernel_plans.KernelPlan.kernel)
STEPS = {
    "adam": adam_step,
    "adamax": adamax_step,
    "nadam": nadam_step,
    "radam": radam_step,
    "sgd": sgd_step,
    "adagrad": adagrad_step,
    "rmsprop": rmsprop_step,
    "adadelta": adadelta_step,
}
