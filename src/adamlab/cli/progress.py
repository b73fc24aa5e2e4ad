"""Progress bars for long work, written to stderr so ``--json`` output on stdout stays clean."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


def progress(total: int, description: str, *, enabled: bool | None = None) -> Any:
    """A tqdm bar on stderr; shown only on an interactive terminal unless ``enabled`` is given."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, desc=description, file=sys.stderr, disable=not enabled, leave=False, dynamic_ncols=True)
