"""Session set-up shared by every test module."""

from __future__ import annotations


def pytest_configure(config: object) -> None:
    """Warm MKL's VML in torch's OpenMP threads before any test compares with torch.

    The first ``torch.sqrt`` of a process sometimes computes an OpenMP worker's chunk with errors near 1e-4
    (``adamlab.torch.arithmetic.warm_vml``); a test whose torch.optim step were that first call would compare
    adamlab with a wrong reference. adamlab's fast path warms VML itself before its probe.
    """
    try:
        from adamlab.torch.arithmetic import warm_vml
    except ImportError:  # torch not installed: nothing to warm
        return
    warm_vml()
