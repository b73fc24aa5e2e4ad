"""Parameter-shape layouts for optimizer-step benchmarks.

Shapes are written down from the architectures by formula (no download, no torchvision,
no transformers), in the order ``named_parameters()`` yields them:

* ``resnet50``: torchvision's ``resnet50()`` - 161 tensors, 25,557,032 parameters
  (conv weights without bias, BatchNorm weight/bias, fc weight/bias).
* ``gpt2-small``: Hugging Face ``GPT2Model`` / GPT-2 124M with the LM head tied to ``wte`` -
  148 tensors, 124,439,808 parameters (Conv1D weights are stored (in, out)).
* ``uniform_shapes(count, size)``: ``count`` 1-D tensors of ``size`` elements.

Run ``python benchmarks/layouts.py`` to print a summary of every layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Shape = tuple[int, ...]

RESNET50_PARAMS = 25_557_032
GPT2_SMALL_PARAMS = 124_439_808


def numel(shape: Shape) -> int:
    return math.prod(shape)


def total_params(shapes: list[Shape]) -> int:
    return sum(numel(s) for s in shapes)


def resnet50_named_shapes() -> list[tuple[str, Shape]]:
    """torchvision resnet50 (Bottleneck, layers [3, 4, 6, 3], expansion 4, 1000 classes)."""
    out: list[tuple[str, Shape]] = []

    def bn(name: str, c: int) -> None:
        out.append((f"{name}.weight", (c,)))
        out.append((f"{name}.bias", (c,)))

    out.append(("conv1.weight", (64, 3, 7, 7)))
    bn("bn1", 64)
    inplanes = 64
    for li, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True), start=1):
        for b in range(blocks):
            pre = f"layer{li}.{b}"
            width = planes  # groups=1, width_per_group=64
            out.append((f"{pre}.conv1.weight", (width, inplanes, 1, 1)))
            bn(f"{pre}.bn1", width)
            out.append((f"{pre}.conv2.weight", (width, width, 3, 3)))
            bn(f"{pre}.bn2", width)
            out.append((f"{pre}.conv3.weight", (planes * 4, width, 1, 1)))
            bn(f"{pre}.bn3", planes * 4)
            if b == 0:  # stride or channel change: projection shortcut
                out.append((f"{pre}.downsample.0.weight", (planes * 4, inplanes, 1, 1)))
                bn(f"{pre}.downsample.1", planes * 4)
            inplanes = planes * 4
    out.append(("fc.weight", (1000, 2048)))
    out.append(("fc.bias", (1000,)))
    assert len(out) == 161, len(out)
    assert total_params([s for _, s in out]) == RESNET50_PARAMS, total_params([s for _, s in out])
    return out


def resnet50_shapes() -> list[Shape]:
    return [s for _, s in resnet50_named_shapes()]


def gpt2_small_named_shapes(
    vocab: int = 50257, n_positions: int = 1024, d: int = 768, n_layer: int = 12
) -> list[tuple[str, Shape]]:
    """GPT-2 small (HF layout, Conv1D weights (in, out)); the LM head is tied to wte."""
    out: list[tuple[str, Shape]] = [("wte.weight", (vocab, d)), ("wpe.weight", (n_positions, d))]
    for i in range(n_layer):
        pre = f"h.{i}"
        out += [
            (f"{pre}.ln_1.weight", (d,)),
            (f"{pre}.ln_1.bias", (d,)),
            (f"{pre}.attn.c_attn.weight", (d, 3 * d)),
            (f"{pre}.attn.c_attn.bias", (3 * d,)),
            (f"{pre}.attn.c_proj.weight", (d, d)),
            (f"{pre}.attn.c_proj.bias", (d,)),
            (f"{pre}.ln_2.weight", (d,)),
            (f"{pre}.ln_2.bias", (d,)),
            (f"{pre}.mlp.c_fc.weight", (d, 4 * d)),
            (f"{pre}.mlp.c_fc.bias", (4 * d,)),
            (f"{pre}.mlp.c_proj.weight", (4 * d, d)),
            (f"{pre}.mlp.c_proj.bias", (d,)),
        ]
    out += [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]
    return out


def gpt2_small_shapes() -> list[Shape]:
    shapes = [s for _, s in gpt2_small_named_shapes()]
    assert len(shapes) == 2 + 12 * 12 + 2
    assert total_params(shapes) == GPT2_SMALL_PARAMS, total_params(shapes)
    return shapes


def uniform_shapes(count: int, size: int) -> list[Shape]:
    return [(size,)] * count


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
    for name, fn in LAYOUTS.items():
        print(f"{name:11s} {describe(fn())}")
