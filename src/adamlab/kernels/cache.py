"""Generated kernel modules on disk, so that numba's cache carries compiled kernels from one process to the next.

numba caches a function by its module's file; a module made in memory is compiled again in every process
(0.5–1 s per parallel kernel). :func:`load` writes a generated module's source to a file named after its hash
in the kernel cache directory and imports it from there; the next process finds the same file and numba's
cache beside it. The directory is ``$ADAMLAB_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/adamlab/kernels``
(``~/.cache/adamlab/kernels``), else a temporary directory for this process.

The file is always compared with the source before it is imported: a file that differs (edited, truncated by
a crash) is rewritten, so what runs is exactly what :mod:`adamlab.kernels.codegen` generated.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from adamlab.kernels.codegen import KernelSource

_LOCK = threading.Lock()
_LOADED: dict[str, ModuleType] = {}


def cache_dir() -> Path:
    """Where generated kernel modules are written (created if needed; a temporary one if nothing is writable)."""
    chosen = os.environ.get("ADAMLAB_KERNEL_CACHE")
    if not chosen:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(base, "adamlab", "kernels")
    for candidate in (Path(chosen), Path(tempfile.gettempdir()) / f"adamlab-kernels-{os.getuid()}"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            probe = candidate / f".write-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
            return candidate
        except OSError:
            continue
    return Path(tempfile.mkdtemp(prefix="adamlab-kernels-"))


def load(kernel: KernelSource) -> ModuleType:
    """The imported module of ``kernel`` (written to the cache directory first if it is not there as generated)."""
    with _LOCK:
        module = _LOADED.get(kernel.name)
        if module is not None:
            return module
        path = cache_dir() / f"{kernel.name}.py"
        try:
            current = path.read_text()
        except OSError:
            current = None
        if current != kernel.source:
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(kernel.source)
            os.replace(temporary, path)  # atomic: a concurrent reader sees the old file or the new one
        spec = importlib.util.spec_from_file_location(kernel.name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[kernel.name] = module
        spec.loader.exec_module(module)
        _LOADED[kernel.name] = module
        return module
