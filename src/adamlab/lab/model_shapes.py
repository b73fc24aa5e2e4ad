"""Parameter shapes of real models, written down by formula (no download, no torchvision or transformers).

* ``resnet50``: torchvision's ``resnet50()`` in ``named_parameters()`` order: 161 tensors, 25,557,032 parameters.
* ``gpt2-small``: GPT-2 124M (Hugging Face ``GPT2Model``; Conv1D weights stored (in, out); the LM head tied
  to ``wte``): 148 tensors, 124,439,808 parameters.
* ``"NxM"`` (e.g. ``"10000x1k"``, ``"1x50M"``): N one-dimensional tensors of M elements (k, M suffixes).
"""

from __future__ import annotations

import math
import re

Shape = tuple[int, ...]

RESNET50_PARAMS = 25_557_032
GPT2_SMALL_PARAMS = 124_439_808


def resnet50_shapes() -> list[Shape]:
    """Bottleneck blocks [3, 4, 6, 3], expansion 4, 1000 classes; convolutions without bias, BatchNorm affine."""
    shapes: list[Shape] = [(64, 3, 7, 7), (64,), (64,)]
    inplanes = 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True):
        for b in range(blocks):
            shapes += [(planes, inplanes, 1, 1), (planes,), (planes,)]
            shapes += [(planes, planes, 3, 3), (planes,), (planes,)]
            shapes += [(planes * 4, planes, 1, 1), (planes * 4,), (planes * 4,)]
            if b == 0:  # projection shortcut
                shapes += [(planes * 4, inplanes, 1, 1), (planes * 4,), (planes * 4,)]
            inplanes = planes * 4
    shapes += [(1000, 2048), (1000,)]
    return shapes


def gpt2_small_shapes(vocab: int = 50257, positions: int = 1024, d: int = 768, layers: int = 12) -> list[Shape]:
    """Token and position embeddings, 12 blocks (2 LayerNorms, attention, MLP), the final LayerNorm."""
    shapes: list[Shape] = [(vocab, d), (positions, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,)]  # ln_1, attn.c_attn, attn.c_proj
        shapes += [(d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]  # ln_2, mlp.c_fc, mlp.c_proj
    return shapes + [(d,), (d,)]


def uniform_shapes(count: int, size: int) -> list[Shape]:
    return [(size,)] * count


_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000}


def layout_shapes(name: str) -> list[Shape]:
    """The shapes of a named layout: ``resnet50``, ``gpt2-small`` or ``NxM`` (``10000x1k``, ``1x50M``)."""
    key = name.strip().lower()
    if key == "resnet50":
        return resnet50_shapes()
    if key in ("gpt2-small", "gpt2"):
        return gpt2_small_shapes()
    match = re.fullmatch(r"(\d+)x(\d+)([km]?)", key)
    if match is None:
        raise ValueError(f"layout must be resnet50, gpt2-small or NxM (e.g. 10000x1k, 1x50M); got {name!r}")
    count, size = int(match.group(1)), int(match.group(2)) * _SUFFIX[match.group(3)]
    if count < 1 or size < 1:
        raise ValueError(f"layout {name!r} has no parameters")
    return uniform_shapes(count, size)


def total_params(shapes: list[Shape]) -> int:
    return sum(math.prod(s) for s in shapes)
