"""Batched ``minimize``: K = 36 learning rates × Rosenbrock × 500 steps as ONE array computation vs 36 runs.

Issue 4, item 6 asks for ≥ 10× over K sequential runs. Both sides run the same rule (Adam) with torch
autograd gradients and record the full history; the batched run is checked to reproduce every sequential run
(status, step count and path, to 1e-12) before anything is timed. Rounds interleave the two cases (a noisy,
shared machine disturbs both alike) and the best round of each is reported.

    python benchmarks/batched_minimize.py [--steps 500] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import adamlab
from adamlab.lab.functions import get_function
from adamlab.lab.minimize import minimize
from adamlab.lab.minimize_batched import minimize_batched

LRS = np.logspace(-5, 2, 36)  # DeepOBS's grid: the lab's default tuning run


def sequential(f, steps: int) -> list:
    return [minimize(f, f.start, adamlab.Adam(lr=float(lr)), steps) for lr in LRS]


def batched(f, steps: int):
    return minimize_batched(f, f.start, adamlab.Adam(), steps, lr=LRS)


def check_equal(seq: list, bat) -> float:
    """Largest difference between the sequential histories and the batched members (must be ≤ 1e-12)."""
    worst = 0.0
    for k, s in enumerate(seq):
        m = bat.member(k)
        assert (m.status, m.nit) == (s.status, s.nit), (k, m.status, s.status)
        for a, b in ((m.history.x, s.history.x), (m.history.fun, s.history.fun)):
            if a.size:
                worst = max(worst, float(np.max(np.abs(a - b))))
    assert worst <= 1e-12, worst
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args()
    f = get_function("rosenbrock")
    worst = check_equal(sequential(f, args.steps), batched(f, args.steps))  # also the warm-up
    times: dict[str, list[float]] = {"sequential": [], "batched": []}
    for _ in range(args.rounds):
        for name, run in (("sequential", sequential), ("batched", batched)):
            t0 = time.perf_counter()
            run(f, args.steps)
            times[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    ratio = best["sequential"] / best["batched"]
    print(f"K = {len(LRS)} learning rates x Rosenbrock x {args.steps} steps (Adam, float64, torch autograd)")
    print(f"max |batched - sequential| over every path: {worst:.1e}")
    print(f"sequential ({len(LRS)} minimize calls): best {best['sequential'] * 1e3:8.1f} ms of {args.rounds}")
    print(f"batched (one minimize_batched call):  best {best['batched'] * 1e3:8.1f} ms of {args.rounds}")
    print(f"speedup: {ratio:.1f}x (required: >= 10x)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"K": len(LRS), "steps": args.steps, "seconds": times, "best": best, "speedup": ratio,
                       "max_abs_difference": worst}, fh, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
