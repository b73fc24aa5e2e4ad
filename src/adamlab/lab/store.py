"""Sweeps as runs in a store: one JSON record per run, keyed by a hash of its configuration.

A run is fully described by its configuration, a JSON-able dict: the problem and the identity of its data
(a SHA-256 of the arrays, not their path), the optimizer with every hyperparameter, the seed, the budget and
the versions of the protocol, of adamlab and of torch. Its key is the SHA-256 of the canonical JSON of that
dict (sorted keys, no spaces), so the same run always lands in the same file ``<folder>/<key>.json``::

    store = RunStore("out/runs")
    record = store.get(config)          # None when the run was never finished
    store.put(config, {"cost": array, "final_loss": 0.12})

A record is written to a temporary file in the same folder and moved into place with ``os.replace``, which is
atomic: a sweep killed at any moment leaves finished records and no half record. Restarted with the same
command, it finds the finished runs and computes only the others; because a run depends only on its
configuration (its seeds give its initialisation, data order and noise), the resumed sweep ends with the
same bytes as one that never stopped.

Arrays are stored exactly: their little-endian bytes in base64 with dtype and shape (float64 keeps every
bit; NaN and inf survive). Non-finite floats outside arrays are written as ``{"__float__": "nan"}``.
Nothing is ever unpickled: records are JSON, read with :func:`json.loads`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RECORD_FORMAT", "RunStore", "canonical_json", "config_key", "decode", "encode"]

RECORD_FORMAT = 1
#: dtypes a record may hold (anything else is refused, never reinterpreted)
_DTYPES = ("float64", "float32", "int64", "int32", "bool")


def canonical_json(config: Mapping[str, Any]) -> str:
    """The configuration as canonical JSON: sorted keys, no spaces, finite numbers only."""
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config must be JSON data with finite numbers ({exc})") from None


def config_key(config: Mapping[str, Any]) -> str:
    """The record key of ``config``: the SHA-256 of its canonical JSON, 64 hex digits."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


def encode(value: Any) -> Any:
    """``value`` as JSON data: arrays as base64 bytes with dtype and shape, non-finite floats tagged."""
    if isinstance(value, np.ndarray):
        dtype = value.dtype.name
        if dtype not in _DTYPES:
            raise ValueError(f"a record holds arrays of {', '.join(_DTYPES)}; got {dtype}")
        data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
        return {"__array__": dtype, "shape": list(value.shape), "data": base64.b64encode(data).decode("ascii")}
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, dict):
        if "__array__" in value:
            dtype = value["__array__"]
            if dtype not in _DTYPES:
                raise ValueError(f"a record holds arrays of {', '.join(_DTYPES)}; got {dtype!r}")
            raw = base64.b64decode(value["data"], validate=True)
            return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(value["shape"])
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class RunStore:
    """A folder of run records (see the module docstring).

    ``get`` returns the stored result of a configuration or None; ``put`` writes one atomically. A file that
    cannot be read back, or whose configuration is not the one asked for, counts as missing (the run is
    computed again and the file replaced).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"RunStore({str(self.folder)!r}, {len(self)} records)"

    def path(self, config: Mapping[str, Any]) -> Path:
        """Where the record of ``config`` lives."""
        return self.folder / f"{config_key(config)}.json"

    def get(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored result of ``config``, or None when there is no valid record of it."""
        path = self.path(config)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
            return None
        if record.get("config") != json.loads(canonical_json(config)):
            return None
        try:
            return decode(record["result"])
        except (KeyError, ValueError, TypeError):
            return None

    def meta(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """What was recorded about the run besides its result (e.g. its wall time), or None."""
        try:
            record = json.loads(self.path(config).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record.get("meta") if isinstance(record, dict) else None

    def put(self, config: Mapping[str, Any], result: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> Path:
        """Write the record of ``config`` atomically (temporary file, then ``os.replace``); returns its path."""
        record = {"format": RECORD_FORMAT, "key": config_key(config), "config": json.loads(canonical_json(config)),
                  "result": encode(dict(result)), "meta": encode(dict(meta or {}))}  # fmt: skip
        text = json.dumps(record, allow_nan=False, indent=None) + "\n"
        path = self.path(config)
        self.folder.mkdir(parents=True, exist_ok=True)
        # not "*.json": a glob for records (ours, or a user's ``runs/*.json``) never sees a half-written file
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def __contains__(self, config: Mapping[str, Any]) -> bool:
        return self.get(config) is not None

    def keys(self) -> Iterator[str]:
        """Keys of the records in the folder (temporary files excluded)."""
        if not self.folder.is_dir():
            return iter(())
        return (p.stem for p in sorted(self.folder.glob("*.json")) if not p.name.startswith(".tmp-"))

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

