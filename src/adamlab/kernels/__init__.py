"""Framework-free numba kernels, generated from the rules' own definitions.

- :mod:`~adamlab.kernels.trace`: a rule's elementwise ``update`` recorded as a graph of primitives;
- :mod:`~adamlab.kernels.codegen`: that graph as numba source, in a backend's arithmetic (FMA or not, VML's
  square root or a correctly rounded one);
- :mod:`~adamlab.kernels.cache`: generated modules on disk, so numba's cache works across processes;
- :mod:`~adamlab.kernels.runtime`: what generated kernels call (FMA, VML, gradient pointers, the non-finite check).

:func:`kernel_for` is the entry point: the kernel of a rule for one dtype. No kernel restates a rule's math:
the kernel is the rule's ``update`` traced, and the coefficient rows are the rule's ``coefficients``.

A rule's ``update`` may branch on its options and on the sign of a numeric hyperparameter (``weight_decay !=
0``, ``momentum > 0``), never on a value: kernels are cached by that structure (:func:`structure_key`), and
the values arrive in the coefficient rows at every step.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from adamlab.kernels.codegen import DEFAULT_LOOP, Arithmetic, Loop, kernel_source
from adamlab.kernels.threads import address, openmp, pieces, run_openmp, run_split
from adamlab.kernels.trace import trace_update

__all__ = ["Arithmetic", "Kernel", "Loop", "kernel_for", "structure_key"]


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A generated kernel for one rule structure and dtype.

    ``step(p, *states, grad_ptrs, starts, coefs, lo, hi)`` steps elements lo..hi of a flat buffer tensor by
    tensor (tensor j is ``p[starts[j]:starts[j+1]]``, its gradient at address ``grad_ptrs[j]``, 0 = no gradient:
    untouched) without the GIL; :meth:`run` cuts the buffer into one piece per thread. ``states`` are the
    per-element state arrays in :attr:`state_names` order; ``coefs`` is one float64 row per tensor (or one for
    all) from :meth:`row`.
    """

    name: str
    source: str
    state_names: tuple[str, ...]
    coefficients: tuple[str, ...]
    step: Callable[..., None]
    omp_entry: Any = None  # the module's cfunc that runs ``step`` on one OpenMP thread's piece

    def run(self, p: np.ndarray, states: tuple[np.ndarray, ...], grad_ptrs: np.ndarray, starts: np.ndarray,
            coefs: np.ndarray, threads: int = 1) -> None:  # fmt: skip
        """Step the whole flat buffer ``p`` on up to ``threads`` threads (OpenMP's, where torch loaded it)."""
        n = int(starts[-1])
        count = len(pieces(n, threads))
        if count > 1 and self.omp_entry is not None and openmp():
            if p.size != n or any(s.size != n for s in states) or coefs.ndim != 2:
                raise ValueError("p and every state must hold the starts[-1] elements; coefs must be 2-D")
            grad_ptrs, starts = np.ascontiguousarray(grad_ptrs, np.int64), np.ascontiguousarray(starts, np.int64)
            coefs = np.ascontiguousarray(coefs, np.float64)  # small: copied if strided; p and states never are
            words = np.array([n, len(starts), coefs.shape[0], address(p, p.dtype),
                              *(address(s, p.dtype) for s in states), address(grad_ptrs, np.int64),
                              address(starts, np.int64), address(coefs, np.float64)], dtype=np.int64)  # fmt: skip
            run_openmp(self.omp_entry, words, count)
            return
        run_split(self.step, n, (p, *states, grad_ptrs, starts, coefs), threads)

    def step_arrays(self, p: np.ndarray, g: np.ndarray, *states: np.ndarray, coefs: np.ndarray) -> None:
        """Step one tensor whose gradient is the contiguous array ``g`` (in place)."""
        if g.dtype != p.dtype or not g.flags.c_contiguous or g.shape != p.shape:
            raise ValueError("g must be a contiguous array of p's shape and dtype")
        ptrs, starts = np.array([g.ctypes.data], dtype=np.int64), np.array([0, p.size], dtype=np.int64)
        self.step(p.reshape(-1), *(s.reshape(-1) for s in states), ptrs, starts, coefs, 0, p.size)

    def row(self, k: dict[str, Any]) -> list[float]:
        """The coefficient row of one step: the rule's coefficients in the kernel's order, as float64."""
        return [float(k[name]) for name in self.coefficients]

    def rows(self, ks: list[dict[str, Any]]) -> np.ndarray:
        return np.array([self.row(k) for k in ks], dtype=np.float64).reshape(len(ks), len(self.coefficients))


_LOCK = threading.Lock()
_KERNELS: dict[tuple, Kernel | None] = {}


def structure_key(rule: Any) -> tuple:
    """What a rule's ``update`` may depend on: its type, preset, options, and the sign of each number."""
    inner = rule.base
    key: list[Any] = [type(rule).__name__, type(inner), inner.preset]
    if inner is not rule:  # a wrapper (Averaged): its own options
        key += [getattr(rule, "mode", None)]
    for name, value in inner.hyperparameters().items():
        key.append((name, _shape_of_value(value)))
    return tuple(key)


def _shape_of_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_shape_of_value(v) for v in value)
    if isinstance(value, (bool, str, type(None))):
        return value
    if isinstance(value, (int, float)):
        return (value > 0) - (value < 0)
    raise TypeError(f"a kernel needs plain-number hyperparameters; got {value!r}")


def kernel_for(rule: Any, dtype: str, arithmetic: Arithmetic, loop: Loop = DEFAULT_LOOP) -> Kernel | None:
    """The kernel computing ``rule.update`` on ``dtype`` arrays in ``arithmetic``; None for a rule that is not
    elementwise or whose hyperparameters are not plain numbers (arrays, traced values). ``loop`` changes how the
    element loop walks memory, never a result (:class:`~adamlab.kernels.codegen.Loop`)."""
    try:
        key = (structure_key(rule), dtype, arithmetic, loop)
    except TypeError:
        return None
    with _LOCK:
        if key in _KERNELS:
            return _KERNELS[key]
    kernel = _build(rule, dtype, arithmetic, loop)
    with _LOCK:
        _KERNELS[key] = kernel
    return kernel


def _build(rule: Any, dtype: str, arithmetic: Arithmetic, loop: Loop) -> Kernel | None:
    from adamlab.kernels import cache, runtime

    layout = rule.layout()
    if not (rule.elementwise and layout.elementwise):
        return None
    if arithmetic.vml_call(dtype) and not runtime.vml_registered(dtype):
        raise ValueError(f"VML's square root for {dtype} is not registered (kernels.runtime.register_vml_sqrt)")
    if arithmetic.sqrt == "vml-avx512" and dtype == "float32" and not runtime.avx512_sqrt_available():
        raise ValueError("sqrt='vml-avx512' needs a target with AVX-512 F and VL (runtime.avx512_sqrt_available)")
    scalars = {name: np.ones((), dtype=np.float64) for name in layout.of_kind("scalar")}
    names = tuple(rule.coefficients(1, scalars))
    trace = trace_update(rule, names)
    source = kernel_source(trace, dtype, arithmetic, runtime.VERSION, loop)
    module = cache.load(source)
    return Kernel(source.name, source.source, source.state_names, source.coefficients, module.step, module.omp_entry)
