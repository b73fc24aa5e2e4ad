"""``minimize()``: run any rule on a function of a scalar or a vector and keep the whole path.

Its batched mode, :func:`minimize_batched` (K learning rates or K starts advanced as one array computation),
lives in :mod:`adamlab.lab.minimize_batched` and is re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adamlab.rules import Averaged, Rule, make_rule

DTYPES: tuple[str, ...] = ("float32", "float64")
STATUSES: tuple[str, ...] = ("max_steps", "converged", "nonfinite", "callback")


@dataclasses.dataclass(repr=False)
class History:
    """The path of a run, one row per completed step ``i = 1..nit``.

    Attributes:
        x0, fun0: the start point and f there.
        x: x after step i, shape ``(nit, *x0.shape)``.
        fun: f at ``x[i]``, shape ``(nit,)``.
        grad: the gradient step i used (taken at the point before it), shape of ``x``.
        state: the optimizer's state after step i, e.g. ``state["exp_avg"]`` (m) and ``state["exp_avg_sq"]`` (v).
    """

    x0: np.ndarray
    fun0: float
    x: np.ndarray
    fun: np.ndarray
    grad: np.ndarray
    state: dict[str, np.ndarray]

    def path(self) -> np.ndarray:
        """The start point followed by every iterate, shape ``(nit + 1, *x0.shape)``."""
        return np.concatenate([self.x0[None], self.x])

    def __repr__(self) -> str:
        state = ", ".join(self.state) or "none"
        return f"History({len(self.fun)} steps, x of shape {tuple(self.x.shape)}, state: {state})"


@dataclasses.dataclass(repr=False)
class MinimizeResult:
    """What :func:`minimize` returns.

    ``status`` is one of ``"max_steps"`` (all steps done), ``"converged"`` (‖g‖∞ ≤ gtol),
    ``"nonfinite"`` (x, f or its gradient became NaN/inf: ``x`` is the last finite point and the history
    stops there) or ``"callback"`` (the callback returned True); ``message`` says it in words.
    """

    x: float | np.ndarray
    fun: float
    nit: int
    status: str
    message: str
    history: History
    optimizer: Rule | Averaged
    function: Callable[[Any], Any] = dataclasses.field(repr=False)

    @property
    def success(self) -> bool:
        return self.status in ("max_steps", "converged")

    def _x_text(self) -> str:
        x = np.asarray(self.x)
        return f"{float(x):.8g}" if x.ndim == 0 else np.array2string(x, precision=6, threshold=6, separator=", ")

    def __repr__(self) -> str:
        return (f"MinimizeResult(x={self._x_text()}, fun={self.fun:.8g}, nit={self.nit}, status={self.status!r}, "
                f"optimizer={_label(self.optimizer)}, history={len(self.history.fun)} steps)")  # fmt: skip

    def _repr_html_(self) -> str:
        import html

        rows = [("x", self._x_text()), ("fun", f"{self.fun:.8g}"), ("steps", str(self.nit)),
                ("status", f"{self.status}: {self.message}"), ("optimizer", _label(self.optimizer)),
                ("history", repr(self.history))]  # fmt: skip
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table><caption>MinimizeResult</caption>{body}</table>"

    @property
    def dimension(self) -> int:
        return int(np.asarray(self.history.x0).size)

    def to_dict(self, history: bool = True) -> dict[str, Any]:
        """JSON-ready: ``{"x", "fun", "nit", "status", "message", "history": {"x": [...], "fun": [...]}}``."""
        out: dict[str, Any] = {
            "x": np.asarray(self.x).tolist(),
            "fun": float(self.fun),
            "nit": self.nit,
            "status": self.status,
            "message": self.message,
        }
        if history:
            out["history"] = {"x": self.history.x.tolist(), "fun": self.history.fun.tolist()}
        return out

    def plot(self, out: str | Path, **kwargs: Any) -> Path:
        """Draw the path: the function and its markers in 1-D (the article's figure), a contour in 2-D."""
        from adamlab.lab import plots

        label = kwargs.pop("label", _label(self.optimizer))
        h = self.history
        if self.dimension == 1:
            return plots.plot_function_path(
                self.function, h.x.reshape(-1), h.fun, out, x0=float(h.x0), f0=h.fun0, label=label, **kwargs
            )
        if self.dimension == 2:
            return plots.plot_contour_paths(self.function, {label: h.path().reshape(-1, 2)}, out, **kwargs)
        raise ValueError(f"plot draws 1-D and 2-D problems; this one has {self.dimension} coordinates")

    def plot_loss(self, out: str | Path, **kwargs: Any) -> Path:
        """Draw f against the step number (log scale)."""
        from adamlab.lab import plots

        curve = np.concatenate([[self.history.fun0], self.history.fun])
        return plots.plot_loss_curves({_label(self.optimizer): curve}, out, **kwargs)


def _label(rule: Rule | Averaged) -> str:
    from adamlab.lab.names import rule_label

    return f"{rule_label(rule)} (lr={getattr(rule.base, 'lr', float('nan')):g})"


def minimize(
    fun: Callable[[Any], Any],
    x0: float | list[float] | np.ndarray,
    optimizer: Rule | Averaged | str | None = None,
    steps: int = 100,
    *,
    grad: Callable[[np.ndarray], Any] | None = None,
    dtype: str = "float64",
    gtol: float | None = None,
    callback: Callable[[int, np.ndarray, float], bool | None] | None = None,
) -> MinimizeResult:
    """Minimize ``fun`` from ``x0`` with ``steps`` steps of an update rule and record the path.

    Args:
        fun: f(x) → scalar. Without ``grad``, it receives a torch tensor (0-d for a scalar ``x0``, shape
            ``(n,)`` for a vector) and is differentiated by torch autograd: write it with operators and
            torch functions (``torch.sin``). With ``grad``, it receives a NumPy array.
        x0: the start: a float, a list or a 1-D array.
        optimizer: a rule (``adamlab.Adam(lr=0.05)``), a rule name (``"adam"``), or None for ``Adam()``.
        steps: the number of steps (≥ 1).
        grad: optional ∇f(x) → array like x, called with a NumPy array; then torch is not used.
        dtype: ``"float32"`` or ``"float64"``.
        gtol: stop early once max|g| ≤ gtol (status ``"converged"``).
        callback: called as ``callback(i, x_i, f_i)`` after each step; returning True stops the run.

    Returns:
        :class:`MinimizeResult` with ``x``, ``fun``, ``nit``, ``status``, ``message`` and ``history``.

    Example (the article's example)::

        >>> import adamlab
        >>> res = adamlab.minimize(lambda x: x**3 - 2*x**2 + 2, x0=0.001,
        ...                        optimizer=adamlab.Adam(lr=0.05, eps=1e-7, preset="keras"), steps=100)
        >>> abs(res.x - 4/3) < 0.05
        True
    """
    rule = _as_rule(optimizer)
    for name, function in (("fun", fun), ("grad", grad), ("callback", callback)):
        if not callable(function) and (function is not None or name == "fun"):
            raise TypeError(f"{name} must be a function; got {function!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    real = isinstance(gtol, (int, float, np.integer, np.floating)) and not isinstance(gtol, bool)
    if gtol is not None and not (real and math.isfinite(gtol) and gtol >= 0):
        raise ValueError(f"gtol must be a finite number >= 0 or None; got {gtol!r}")
    start = _start(x0, dtype)

    evaluate = _numpy_evaluator(fun, grad) if grad is not None else _torch_evaluator(fun, dtype)
    x = start if grad is not None else evaluate.to_array(start)
    f, g = evaluate(x)
    f0 = float(f)
    if grad is None and _finite(f, g):
        from adamlab.lab.gradient_check import autograd_gradient_mismatch

        problem = autograd_gradient_mismatch(fun, start, _np(g), dtype)
        if problem is not None:
            raise ValueError(problem)
    xs, fs, gs, states = [], [], [], []
    status, message, nit = "max_steps", f"completed {steps} steps", 0
    if not _finite(f, g):
        status, message = "nonfinite", _nonfinite_message(f, 0, x)
    else:
        state = rule.init(x)
        for t in range(1, steps + 1):
            if gtol is not None and float(np.max(np.abs(_np(g)))) <= gtol:
                status, message = "converged", f"max|gradient| <= gtol={gtol:g} after {nit} steps"
                break
            x_new, state_new = rule.step(x, g, state, t)
            f_new, g_new = evaluate(x_new)
            if not (_finite(f_new, g_new) and np.all(np.isfinite(_np(x_new)))):
                status, message = "nonfinite", _nonfinite_message(f_new, t, x_new)
                break
            xs.append(_np(x_new))
            fs.append(float(f_new))
            gs.append(_np(g))
            states.append({k: _np(v) for k, v in state_new.items()})
            x, state, f, g, nit = x_new, state_new, f_new, g_new, t
            if callback is not None and callback(t, _np(x), float(f)):
                status, message = "callback", f"stopped by the callback after {t} steps"
                break

    history = History(
        x0=start,
        fun0=f0,
        x=np.array(xs).reshape(nit, *start.shape) if xs else np.empty((0, *start.shape), dtype=dtype),
        fun=np.array(fs, dtype=float),
        grad=np.array(gs).reshape(nit, *start.shape) if gs else np.empty((0, *start.shape), dtype=dtype),
        state={k: np.array([s[k] for s in states]) for k in (states[0] if states else {})},
    )
    x_final = _np(x)
    return MinimizeResult(
        x=float(x_final) if start.ndim == 0 else x_final,
        fun=float(f),
        nit=nit,
        status=status,
        message=message,
        history=history,
        optimizer=rule,
        function=fun,
    )


def _start(x0: Any, dtype: str) -> np.ndarray:
    """x0 as an array of ``dtype``: a real number or a non-empty 1-D list of them, all finite."""
    what = "x0 must be a number or a non-empty 1-D list of numbers"
    try:
        raw = np.asarray(x0)
    except (TypeError, ValueError):  # e.g. a ragged list
        raise ValueError(f"{what}; got {x0!r}") from None
    if raw.dtype.kind not in "iuf":  # strings, complex numbers, booleans, objects
        raise ValueError(f"{what} (real numbers only); got {x0!r}")
    if raw.ndim > 1 or raw.size == 0:
        raise ValueError(f"{what}; got shape {raw.shape}")
    start = raw.astype(dtype)
    if not np.all(np.isfinite(start)):
        raise ValueError("x0 must be finite")
    return start


def _real_value(name: str, value: Any) -> np.ndarray:
    """What ``fun`` or ``grad`` returned, as a real array, or a ``ValueError`` saying what it returned."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        array = np.asarray(None)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must return real numbers; it returned {type(value).__name__} {value!r:.60}")
    return array


def _as_rule(optimizer: Rule | Averaged | str | None) -> Rule | Averaged:
    if optimizer is None:
        return make_rule("adam")
    if isinstance(optimizer, str):
        return make_rule(optimizer)
    if isinstance(optimizer, (Rule, Averaged)):
        return optimizer
    raise ValueError(f"optimizer must be a rule such as adamlab.Adam(...), a rule name, or None; got {optimizer!r}")


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy().copy() if hasattr(a, "detach") else np.array(a)


def _finite(f: Any, g: Any) -> bool:
    return bool(np.isfinite(float(f))) and bool(np.all(np.isfinite(_np(g))))


def _nonfinite_message(f: Any, t: int, x: Any = None) -> str:
    """Say what became NaN/inf: x itself (an overflowing step; when ``x`` is given), f(x), or else the gradient."""
    where = "at x0" if t == 0 else f"after step {t}"
    if x is not None and not np.all(np.isfinite(_np(x))):
        what = "x is not finite (the step overflowed)"
    elif not math.isfinite(float(f)):
        what = f"f(x) = {float(f)}"
    else:
        what = "the gradient is not finite"
    kept = "" if t == 0 else f"; the history keeps the {t - 1} finite steps before it"
    return f"stopped: {what} {where}{kept}"


class _torch_evaluator:
    """f and ∇f by torch autograd; x is a torch tensor of the run's dtype."""

    def __init__(self, fun: Callable[[Any], Any], dtype: str) -> None:
        import torch

        self.torch, self.fun, self.dtype = torch, fun, getattr(torch, dtype)

    def to_array(self, x: np.ndarray) -> Any:
        return self.torch.as_tensor(x, dtype=self.dtype)

    def __call__(self, x: Any) -> tuple[float, Any]:
        import warnings

        from adamlab.lab.gradient_check import TORCH_HINT

        torch = self.torch
        with torch.enable_grad(), warnings.catch_warnings():
            # math.sin(x) of a tensor warns "Converting a tensor with requires_grad=True to a scalar"; the
            # gradient check at x0 reports what it does to the gradient, in one line
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
            xr = x.detach().clone().requires_grad_(True)
            try:
                f = self.fun(xr)
            except RuntimeError as exc:
                if "numpy()" in str(exc) and "requires grad" in str(exc):  # np.sin(x) of a tensor
                    raise ValueError(f"fun: {exc} ({TORCH_HINT})") from None
                raise
            if not torch.is_tensor(f):
                f = torch.as_tensor(_real_value("fun", f), dtype=self.dtype)
            elif f.is_complex():
                raise ValueError(f"fun must return real numbers; it returned a tensor of {f.dtype}")
            if f.numel() != 1:
                raise ValueError(f"fun must return a scalar; it returned shape {tuple(f.shape)}")
            f = f.reshape(())
            if not f.requires_grad:  # f does not depend on x
                return float(f.detach()), torch.zeros_like(x)
            (g,) = torch.autograd.grad(f, xr, allow_unused=True)
        return float(f.detach()), torch.zeros_like(x) if g is None else g.detach()


class _numpy_evaluator:
    """f and ∇f from user callables on NumPy arrays."""

    def __init__(self, fun: Callable[[Any], Any], grad: Callable[[np.ndarray], Any]) -> None:
        self.fun, self.grad = fun, grad

    def to_array(self, x: np.ndarray) -> np.ndarray:
        return x

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f = _real_value("fun", self.fun(x))
        if f.size != 1:
            raise ValueError(f"fun must return a scalar; it returned shape {f.shape}")
        g = _real_value("grad", self.grad(x)).astype(x.dtype)
        if g.shape != x.shape:
            raise ValueError(f"grad must return an array of x's shape {x.shape}; it returned shape {g.shape}")
        return float(f.reshape(())), g  # a size-1 array of any shape (float() refuses shape (1,))


__all__ = ["History", "MinimizeResult", "minimize"]  # the batched mode lives in adamlab.lab.minimize_batched
