"""Would a native loop make the per-tensor checks of a step cheaper? A research probe (docs/fast-path.md).

Each fast-path step touches every parameter object: its data pointer (to find a reassigned ``.data``),
its ``.grad`` and its autograd version counter. This probe builds a C++ loop that does all three over the
parameter list with borrowed references (``torch.utils.cpp_extension.load_inline``: needs a C++ compiler
and takes ~20 s the first time), and times it against the same three passes from Python, warm and with the
cache flushed first (as after a backward pass). It is not part of the package.

Usage: ``python benchmarks/tensor_scan_probe.py [--tensors 10000] [--repeat 9]``
"""

from __future__ import annotations

import argparse
import operator
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

SOURCE = r"""
#include <torch/extension.h>
#include <pybind11/numpy.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/autograd/variable.h>

// Count parameters whose data pointer is not the expected one, write each gradient's address (0: none),
// and bump each version counter when asked.
int64_t scan(py::list params, py::array_t<int64_t> expected, py::array_t<int64_t> grad_ptrs, bool bump) {
  auto n = PyList_GET_SIZE(params.ptr());
  auto want = expected.unchecked<1>();
  auto out = grad_ptrs.mutable_unchecked<1>();
  int64_t moved = 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    const at::Tensor& p = THPVariable_Unpack(PyList_GET_ITEM(params.ptr(), i));
    if (reinterpret_cast<int64_t>(p.unsafeGetTensorImpl()->data()) != want(i)) ++moved;
    const at::Tensor& g = p.grad();
    out(i) = g.defined() ? reinterpret_cast<int64_t>(g.unsafeGetTensorImpl()->data()) : 0;
    if (bump) torch::autograd::impl::bump_version(p);
  }
  return moved;
}
"""


def best_ms(fn: Callable[[], object], repeat: int, flush: torch.Tensor | None) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        if flush is not None:
            flush.add_(1.0)
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tensors", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    from torch.utils.cpp_extension import load_inline

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as build:
        native = load_inline("adamlab_scan_probe", cpp_sources=SOURCE, functions=["scan"], build_directory=build)
    print(f"compiled in {time.perf_counter() - t0:.1f} s")
    params = [torch.nn.Parameter(torch.randn(1000)) for _ in range(args.tensors)]
    for p in params:
        p.grad = torch.randn(1000)
    expected = np.array([p.data_ptr() for p in params], dtype=np.int64)
    grad_ptrs = np.zeros(len(params), dtype=np.int64)
    assert native.scan(params, expected, grad_ptrs, False) == 0
    assert (grad_ptrs == np.array([p.grad.data_ptr() for p in params])).all()

    grad, data_ptr = operator.attrgetter("grad"), torch.Tensor.data_ptr

    def python_passes() -> None:
        list(map(data_ptr, params))
        list(map(grad, params))
        torch._C._increment_version(params)

    cases = {
        "Python: data pointers, .grad, version counters": python_passes,
        "C++ loop: the same, one pass": lambda: native.scan(params, expected, grad_ptrs, True),
        "C++ loop without the version bump": lambda: native.scan(params, expected, grad_ptrs, False),
    }
    flush = torch.zeros(256 * 1024 * 1024)
    print(f"\n{args.tensors:,} parameters, best of {args.repeat}\n\n| | warm ms | cold ms |\n|---|---:|---:|")
    for label, fn in cases.items():
        print(f"| {label} | {best_ms(fn, args.repeat, None):.2f} | {best_ms(fn, args.repeat, flush):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
