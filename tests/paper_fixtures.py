"""Small data sets written in the published formats (IDX, CIFAR-10 binary, aclImdb folders) for the loaders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """``array`` (uint8) as an IDX file: zero, zero, type 0x08, ndim, then big-endian dimensions and bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_mnist(folder: Path, n: int = 300, seed: int = 0, gz: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, labels.astype(int) * 2, :] = 255  # a class-dependent stripe, so the data can be learned
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels, gz)
    return images, labels


def write_cifar10(folder: Path, per_batch: int = 20, batches: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``data_batch_k.bin`` files of ``per_batch`` records: 1 label byte, then 1024 R, 1024 G, 1024 B bytes."""
    base = folder / "cifar-10-batches-bin"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    all_images, all_labels = [], []
    for k in range(1, batches + 1):
        labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        records = np.concatenate([labels[:, None], images.reshape(per_batch, -1)], axis=1)
        (base / f"data_batch_{k}.bin").write_bytes(records.tobytes())
        all_images.append(images)
        all_labels.append(labels)
    (base / "test_batch.bin").write_bytes(b"\x00" * 3073)
    return np.concatenate(all_images), np.concatenate(all_labels)


POSITIVE = ["a wonderful film, great acting", "great story and wonderful music", "I loved it<br />great fun"]
NEGATIVE = ["a boring film, bad acting", "bad story and awful music", "I didn't like it<br />boring"]


def write_imdb(folder: Path, copies: int = 20) -> None:
    """``aclImdb/train/{pos,neg}/<id>_<rating>.txt`` reviews."""
    for part, texts in (("pos", POSITIVE), ("neg", NEGATIVE)):
        d = folder / "aclImdb" / "train" / part
        d.mkdir(parents=True, exist_ok=True)
        for i in range(copies):
            (d / f"{i}_{8 if part == 'pos' else 2}.txt").write_text(texts[i % len(texts)] + f" review{i}")
