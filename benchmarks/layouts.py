"""Parameter-shape layouts for the optimizer-step benchmarks.

The shapes come from :mod:`adamlab.lab.model_shapes` (written down from the architectures by formula, no
download): ``resnet50`` (161 tensors, 25,557,032 parameters), ``gpt2-small`` (148 tensors, 124,439,808
parameters) and uniform layouts. This module only names the benchmark's layouts and describes them.

Run ``python benchmarks/layouts.py`` to print a summary of every layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from adamlab.lab.model_shapes import (
    GPT2_SMALL_PARAMS,
    RESNET50_PARAMS,
    Shape,
    gpt2_small_shapes,
    resnet50_shapes,
    total_params,
    uniform_shapes,
)

__all__ = [
    "GPT2_SMALL_PARAMS",
    "LAYOUTS",
    "RESNET50_PARAMS",
    "describe",
    "gpt2_small_shapes",
    "numel",
    "resnet50_shapes",
    "total_params",
    "uniform_shapes",
]


def numel(shape: Shape) -> int:
    return math.prod(shape)


LAYOUTS: dict[str, Callable[[], list[Shape]]] = {
    "1x50M": lambda: uniform_shapes(1, 50_000_000),
    "100x500k": lambda: uniform_shapes(100, 500_000),
    "10000x1k": lambda: uniform_shapes(10_000, 1_000),
    "resnet50": resnet50_shapes,
    "gpt2-small": gpt2_small_shapes,
}


def describe(shapes: list[Shape]) -> str:
    sizes = sorted(numel(s) for s in shapes)
    small = sum(1 for n in sizes if n < 65_536)
    return (
        f"{len(shapes):6d} tensors, {total_params(shapes):12,d} params, "
        f"median {sizes[len(sizes) // 2]:,d}, max {sizes[-1]:,d}, {small} tensors < 64k elements"
    )


if __name__ == "__main__":
    assert total_params(resnet50_shapes()) == RESNET50_PARAMS
    assert total_params(gpt2_small_shapes()) == GPT2_SMALL_PARAMS
    for name, fn in LAYOUTS.items():
        print(f"{name:11s} {describe(fn())}")
