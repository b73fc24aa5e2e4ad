"""IMDB movie reviews as bag-of-words features (paper §6.1, Fig. 1 right), read from the ``aclImdb`` folders.

Layout (Maas et al. 2011, ``aclImdb_v1.tar.gz`` unpacked): ``DIR/aclImdb/train/pos/*.txt`` and
``DIR/aclImdb/train/neg/*.txt``, one review per file (``DIR/train/...`` works too). Each review is lower-cased,
its ``<br />`` tags removed, and split into words (letters and digits, with an inner apostrophe: ``don't``).
The vocabulary is the 10,000 most frequent words of the training reviews (ties broken alphabetically), and
a review's features are 1 for each vocabulary word it contains, else 0 (the paper says "bag-of-words
feature vectors"; presence rather than counts is our choice). Labels: 1 positive, 0 negative.

The 25,000 × 10,000 matrix is kept sparse (row offsets and column indices); minibatches are made dense.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from pathlib import Path

import numpy as np

from adamlab.lab.paper.data import DataMissing, Dataset, digest

__all__ = ["IMDB_LAYOUT", "SparseRows", "load_imdb", "tokenize"]

IMDB_LAYOUT = "DIR/aclImdb/train/pos/*.txt and DIR/aclImdb/train/neg/*.txt (the aclImdb_v1 review folders)"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """The words of one review (see the module docstring)."""
    return _WORD.findall(text.lower().replace("<br />", " "))


@dataclasses.dataclass(frozen=True, eq=False)
class SparseRows:
    """A 0/1 matrix in compressed rows: row i has ones at ``indices[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray
    indices: np.ndarray
    columns: int

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, rows: np.ndarray) -> SparseRows:
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # position k of the result reads indices[starts[row of k] + (k − indptr[row of k])]
        source = np.arange(indptr[-1]) + np.repeat(starts - indptr[:-1], lengths)
        return SparseRows(indptr, self.indices[source], self.columns)

    def dense(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` as a dense float32 array (len(rows), columns)."""
        part = self[rows]
        out = np.zeros((len(part), self.columns), dtype=np.float32)
        out[np.repeat(np.arange(len(part)), np.diff(part.indptr)), part.indices] = 1.0
        return out


def _folder(data_dir: Path) -> Path | None:
    for base in (data_dir / "aclImdb", data_dir):
        if (base / "train" / "pos").is_dir() and (base / "train" / "neg").is_dir():
            return base
    return None


@functools.lru_cache(maxsize=2)
def load_imdb(data_dir: str | None, vocabulary: int = 10_000, examples: int | None = None) -> Dataset:
    """IMDB's training reviews as a :class:`SparseRows` bag of words over the ``vocabulary`` most frequent words."""
    if data_dir is None:
        raise DataMissing(f"IMDB has no offline copy: give --data DIR with {IMDB_LAYOUT}")
    base = _folder(Path(data_dir))
    if base is None:
        raise DataMissing(f"IMDB not found in {data_dir}: expected {IMDB_LAYOUT}")
    docs: list[set[str]] = []
    labels: list[int] = []
    counts: Counter[str] = Counter()
    for label, part in ((1, "pos"), (0, "neg")):
        for path in sorted((base / "train" / part).glob("*.txt")):
            words = tokenize(path.read_text(encoding="utf-8", errors="replace"))
            counts.update(words)
            docs.append(set(words))
            labels.append(label)
    if not docs:
        raise DataMissing(f"IMDB: no reviews in {base / 'train'}: expected {IMDB_LAYOUT}")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:vocabulary]
    index = {word: i for i, (word, _) in enumerate(ranked)}
    rows = [np.array(sorted(index[w] for w in doc if w in index), dtype=np.int64) for doc in docs]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    x = SparseRows(indptr, np.concatenate(rows), len(index))
    y = np.asarray(labels, dtype=np.int64)
    if examples is not None:
        if isinstance(examples, bool) or not isinstance(examples, int) or not 1 <= examples <= len(y):
            raise ValueError(f"examples must be an integer from 1 to {len(y):,} (IMDB's size); got {examples!r}")
        keep = np.sort(np.random.default_rng(0).permutation(len(y))[:examples])
        x, y = x[keep], y[keep]
    words = "\n".join(w for w, _ in ranked).encode()
    source = (f"IMDB's aclImdb training reviews ({len(y):,}), bag of words over the {len(index):,} most "
              "frequent words (1 if present)")  # fmt: skip
    return Dataset("imdb", source, x, y, digest(x.indptr, x.indices, y, np.frombuffer(words, np.uint8)))
