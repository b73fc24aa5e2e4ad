"""The kernels' element loop walked four ways, side by side in one process (the results are the same bits; only
the speed differs): one plain loop, chunks of 256 bytes, and chunks that prefetch 1024 or 2048 bytes ahead
(:class:`adamlab.kernels.Loop`; 256/1024 is the default). Each rule in torch's arithmetic, float32, on two
threads; layouts of 100 tensors of 500k, 10,000 of 1k and one of 50M elements; median Mparam/s of interleaved
runs.

    python benchmarks/prefetch_ab.py [--rules adam,sgd,adagrad] [--rounds 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import adamlab
from adamlab.kernels import Loop, kernel_for
from adamlab.torch.arithmetic import torch_arithmetic

LOOPS = {
    "plain": Loop(chunk_bytes=0, prefetch_bytes=0),
    "chunks": Loop(chunk_bytes=256, prefetch_bytes=0),
    "ahead 1024": Loop(chunk_bytes=256, prefetch_bytes=1024),
    "ahead 2048": Loop(chunk_bytes=256, prefetch_bytes=2048),
}
LAYOUTS = ((100, 500_000), (10_000, 1_000), (1, 50_000_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="adam,sgd,adagrad")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    arithmetic = torch_arithmetic()
    print(f"arithmetic: {arithmetic}; {args.threads} threads; median Mparam/s of {args.rounds - 2} runs")
    print(f"{'layout':>12} {'rule':>8} " + " ".join(f"{name:>11}" for name in LOOPS))
    rng = np.random.default_rng(0)
    for name in args.rules.split(","):
        rule = adamlab.rules.make_rule(name, preset="torch")
        kernels = {label: kernel_for(rule, "float32", arithmetic, loop) for label, loop in LOOPS.items()}
        scalars = {s: np.ones((), np.float64) for s in rule.layout().of_kind("scalar")}
        for tensors, size in LAYOUTS:
            n = tensors * size
            p = rng.random(n, dtype=np.float32)
            grads = [rng.random(size, dtype=np.float32) for _ in range(tensors)]
            ptrs = np.array([g.ctypes.data for g in grads], np.int64)
            starts = np.arange(0, n + 1, size, dtype=np.int64)
            first = next(iter(kernels.values()))
            states = tuple(rng.random(n, dtype=np.float32) for _ in first.state_names)
            coefs = first.rows([rule.coefficients(3, scalars)] * tensors)
            times: dict[str, list[float]] = {label: [] for label in kernels}
            for _ in range(args.rounds):
                for label, kernel in kernels.items():
                    t0 = time.perf_counter()
                    kernel.run(p, states, ptrs, starts, coefs, args.threads)
                    times[label].append(time.perf_counter() - t0)
            rates = " ".join(f"{n / np.median(t[2:]) / 1e6:11.0f}" for t in times.values())
            print(f"{f'{tensors}x{size}':>12} {name:>8} {rates}", flush=True)


if __name__ == "__main__":
    main()
