"""A fast-path step right after a parallel torch operation, as in training (backward, then step).

torch's OpenMP workers spin for a while after each parallel operation. This times SGD and Adam steps of 50M
float32 in 100 tensors (gradients in the flat buffer, ``nonfinite="ignore"``), each right after a torch
``add_`` over 1 GiB, best of 15. Run it with ``OMP_WAIT_POLICY=passive`` to see the same step without spinning
workers.

    python benchmarks/step_after_torch_op.py
"""

from __future__ import annotations

import time

import torch

import adamlab.torch


def time_step(name: str, options: dict, tensors: int = 100, size: int = 500_000, repeat: int = 15) -> float:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(size)) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(size) * 1e-2
    opt = getattr(adamlab.torch, name)(params, **options)
    opt.step()
    opt.zero_grad(set_to_none=False)  # the gradients become views of the flat gradient buffer
    for buffer in opt._fast.buffers:
        buffer.grad.fill_(1e-3)
    opt.nonfinite = "ignore"
    opt.step()
    other = torch.zeros(256 * 1024 * 1024)
    best = float("inf")
    for _ in range(repeat):
        other.add_(1.0)  # a parallel torch operation just before the step
        t0 = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    from adamlab.kernels import threads

    print(f"kernels on torch's OpenMP team: {threads.openmp()}; torch threads: {torch.get_num_threads()}")
    for name, options in (("SGD", {"lr": 0.01}), ("Adam", {"lr": 1e-3})):
        best = time_step(name, options)
        print(f"{name}: {best * 1e3:.2f} ms, {50e6 / best / 1e6:.0f} Mparam/s")


if __name__ == "__main__":
    main()
