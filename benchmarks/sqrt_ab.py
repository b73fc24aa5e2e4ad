"""One Adam kernel, three square roots, side by side in one process: VML's AVX-512 root in registers
(``sqrt="vml-avx512"``, what the fast path uses on MKL's AVX-512 path), a VML call on blocks (``"vml"``, MKL's
other paths) and a correctly rounded root (``"exact"``, not torch's bits). 20M float32, best of 12 interleaved
runs, on one thread and on two.

    python benchmarks/sqrt_ab.py
"""

from __future__ import annotations

import time

import numpy as np

import adamlab
from adamlab.kernels import Arithmetic, kernel_for, runtime
from adamlab.torch.arithmetic import torch_arithmetic


def main(n: int = 20_000_000, rounds: int = 12) -> None:
    arithmetic = torch_arithmetic()  # registers VML's symbols
    modes = ["exact"]
    if arithmetic is not None and arithmetic.sqrt in ("vml", "vml-avx512"):
        modes.append("vml")
    if runtime.avx512_sqrt_available():
        modes.append("vml-avx512")
    rule = adamlab.rules.make_rule("adam", preset="torch")
    kernels = {m: kernel_for(rule, "float32", Arithmetic(fma=True, sqrt=m)) for m in modes}
    rng = np.random.default_rng(0)
    p, g = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    states = tuple(rng.random(n, dtype=np.float32) for _ in kernels["exact"].state_names)
    ptrs, starts = np.array([g.ctypes.data], np.int64), np.array([0, n], np.int64)
    coefs = kernels["exact"].rows([rule.coefficients(3, {})])
    print(f"fast path's choice here: {arithmetic}")
    for threads in (1, 2):
        best = dict.fromkeys(kernels, float("inf"))
        for _ in range(rounds):
            for mode, kernel in kernels.items():
                t0 = time.perf_counter()
                kernel.run(p, states, ptrs, starts, coefs, threads)
                best[mode] = min(best[mode], time.perf_counter() - t0)
        print(f"{threads} thread(s): " + ", ".join(f"{m} {n / b / 1e6:.0f} Mparam/s" for m, b in best.items()))


if __name__ == "__main__":
    main()
