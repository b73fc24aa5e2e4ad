"""The batched mode of :func:`~adamlab.lab.minimize.minimize`: K independent runs advanced as one array computation.

The lab often runs one rule on K tiny independent problems: 36 learning rates on one 2-D function, or one
learning rate from K starting points. Instead of K Python loops, the K problems are stacked on a trailing
axis and each step is ONE call of the rule and ONE evaluation of the function::

    x   : shape (n, K)    coordinate axis first, member k is x[:, k]  (a 1-D problem: shape (K,) for fun)
    lr  : shape (K,)      broadcasts against (n, K) inside the rule (the rules accept array hyperparameters)
    f(x): shape (K,)      the test functions evaluate every column at once (coordinate axis first)
    ∇f  : shape (n, K)    one autograd pass of Σ_k f_k, since f_k depends on column k only

The optimizer math is not written here: the rule's own ``step`` advances all members. A member whose f,
gradient or iterate becomes NaN/inf is masked: it stays at its last finite point, its history rows become
NaN from then on, and its divergence step is recorded; the other members are unaffected. Member ``k``
reproduces the sequential ``minimize`` run with ``lr[k]`` from ``x0[:, k]`` (see :meth:`member`).

Example::

    >>> import numpy as np, adamlab
    >>> from adamlab.lab.functions import get_function
    >>> f = get_function("rosenbrock")
    >>> res = minimize_batched(f, f.start, adamlab.Adam(), steps=50, lr=np.logspace(-3, 0, 8))
    >>> res.x.shape, res.fun.shape
    ((2, 8), (8,))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from adamlab.lab.minimize import DTYPES, History, MinimizeResult, _as_rule, _nonfinite_message
from adamlab.rules import Averaged, Rule
from adamlab.rules.base import check_number

__all__ = ["BatchedHistory", "BatchedMinimizeResult", "minimize_batched"]


@dataclasses.dataclass
class BatchedHistory:
    """The paths of a batched run: row ``i`` holds every member after step ``i + 1``.

    Rows after a member's last finite step are NaN for that member.

    Attributes:
        x0: start points, shape ``(n, K)``.   fun0: f there, shape ``(K,)``.
        x: shape ``(T, n, K)``.   fun: shape ``(T, K)``.   grad: the gradient each step used, ``(T, n, K)``.
        state: the rule's state after each step, e.g. ``state["exp_avg"]``, each ``(T, n, K)``.
    """

    x0: np.ndarray
    fun0: np.ndarray
    x: np.ndarray
    fun: np.ndarray
    grad: np.ndarray
    state: dict[str, np.ndarray]

    def losses(self) -> np.ndarray:
        """f at the start and after every step, shape ``(T + 1, K)`` (NaN after a member diverged)."""
        return np.concatenate([self.fun0[None], self.fun])

    def paths(self) -> np.ndarray:
        """Start points followed by every iterate, shape ``(T + 1, n, K)`` (NaN after divergence)."""
        return np.concatenate([self.x0[None], self.x])


@dataclasses.dataclass
class BatchedMinimizeResult:
    """What :func:`minimize_batched` returns; member ``k`` is column ``k`` of every array.

    Attributes:
        x: the last finite point of each member, ``(n, K)``.   fun: f there, ``(K,)``.
        nit: finite steps completed per member, ``(K,)``.
        status: per member ``"max_steps"``, ``"nonfinite"`` (diverged) or ``"callback"``.
        diverged_at: per member the step whose result was NaN/inf (0: already at x0), or None.
        lr: the learning rate of each member, ``(K,)``.
        history: :class:`BatchedHistory`.
        optimizer: the rule as run (its ``lr`` is the array of all members' rates).
    """

    x: np.ndarray
    fun: np.ndarray
    nit: np.ndarray
    status: list[str]
    diverged_at: list[int | None]
    lr: np.ndarray
    history: BatchedHistory
    optimizer: Rule | Averaged
    function: Callable[[Any], Any] = dataclasses.field(repr=False)
    steps: int = 0
    point_shape: tuple[int, ...] = ()
    divergence_values: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0), repr=False)
    #: per member: did x itself overflow when it diverged (else f or the gradient did)
    x_overflowed: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, dtype=bool), repr=False)

    @property
    def size(self) -> int:
        """K, the number of members."""
        return int(self.fun.shape[0])

    @property
    def diverged(self) -> np.ndarray:
        """Boolean ``(K,)``: which members became non-finite."""
        return np.array([d is not None for d in self.diverged_at])

    def member(self, k: int) -> MinimizeResult:
        """Member ``k`` as the :class:`MinimizeResult` the sequential ``minimize`` run gives (same arrays)."""
        if not -self.size <= k < self.size:
            raise IndexError(f"member {k} out of range for {self.size} members")
        k = k % self.size
        h, n_k, shape = self.history, int(self.nit[k]), self.point_shape

        def rows(a: np.ndarray) -> np.ndarray:
            return a[:n_k, ..., k].reshape(n_k, *shape) if a.ndim > 2 else a[:n_k, k]  # (steps, K): 0-d entries

        history = History(
            x0=h.x0[..., k].reshape(shape),
            fun0=float(h.fun0[k]),
            x=rows(h.x),
            fun=h.fun[:n_k, k].astype(float),
            grad=rows(h.grad),
            state={name: rows(a) for name, a in h.state.items()} if n_k else {},  # as minimize: no step, no state
        )
        status = self.status[k]
        if status == "nonfinite":
            overflow = np.array([np.inf]) if self.x_overflowed.size and self.x_overflowed[k] else None
            message = _nonfinite_message(self.divergence_values[k], int(self.diverged_at[k] or 0), overflow)
        elif status == "callback":
            message = f"stopped by the callback after {n_k} steps"
        else:
            message = f"completed {self.steps} steps"
        x_k = self.x[..., k].reshape(shape)
        return MinimizeResult(
            x=float(x_k) if shape == () else x_k,
            fun=float(self.fun[k]),
            nit=n_k,
            status=status,
            message=message,
            history=history,
            optimizer=_with_lr(self.optimizer, float(self.lr[k])),
            function=self.function,
        )


def minimize_batched(
    fun: Callable[[Any], Any],
    x0: float | list[float] | np.ndarray,
    optimizer: Rule | Averaged | str | None = None,
    steps: int = 100,
    *,
    lr: float | list[float] | np.ndarray | None = None,
    grad: Callable[[np.ndarray], Any] | None = None,
    dtype: str = "float64",
    callback: Callable[[int, np.ndarray, np.ndarray], bool | None] | None = None,
) -> BatchedMinimizeResult:
    """Run K independent minimizations of ``fun`` as one array computation (K learning rates and/or starts).

    Args:
        fun: f with the coordinate axis first, evaluating all members at once: it receives a torch tensor of
            shape ``(n, K)`` (``(K,)`` for a scalar ``x0``) and returns K values. The registry's test functions
            and ``adamlab minimize``'s expressions do this. With ``grad``, it receives a NumPy array.
        x0: one start for every member (a number or shape ``(n,)``) or K starts, shape ``(n, K)``.
        optimizer: a rule, a rule name, or None for ``Adam()``.
        steps: steps per member (≥ 1).
        lr: K learning rates (shape ``(K,)``) or one; None keeps the rule's ``lr``.
        grad: optional ∇f on NumPy arrays of ``x``'s shape; then torch is not used.
        dtype: ``"float32"`` or ``"float64"``.
        callback: ``callback(t, x, f)`` after each step with ``x`` of shape ``(n, K)``; True stops every member.

    K is ``x0.shape[1]`` or ``len(lr)`` (they must agree when both are given).
    """
    rule = _as_rule(optimizer)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    start = np.asarray(x0, dtype=dtype)
    if start.ndim > 2 or start.size == 0:
        raise ValueError(f"x0 must be a number, shape (n,) or shape (n, K); got shape {start.shape}")
    if not np.all(np.isfinite(start)):
        raise ValueError("x0 must be finite")
    inner = rule.base
    rates = np.asarray(inner.lr if lr is None else lr, dtype=float)
    if rates.ndim > 1:
        raise ValueError(f"lr must be a number or a 1-D array of K learning rates; got shape {rates.shape}")
    check_number("lr", rates)
    k_starts = start.shape[1] if start.ndim == 2 else None
    k_rates = rates.size if rates.ndim == 1 else None
    if k_starts is not None and k_rates is not None and k_starts != k_rates:
        raise ValueError(f"x0 has {k_starts} starting points (columns) but lr has {k_rates} values")
    size = k_starts or k_rates or 1
    point_shape: tuple[int, ...] = start.shape[:1] if start.ndim >= 1 else ()
    columns = start if start.ndim == 2 else start.reshape(-1, 1)  # (n, K) or one start (n, 1)
    starts = np.array(np.broadcast_to(columns, (columns.shape[0], size)))

    evaluate: _BatchEvaluator = (
        _NumpyBatch(fun, grad, point_shape, size) if grad is not None else _TorchBatch(fun, dtype, point_shape, size)
    )
    if rates.ndim == 1:  # one learning rate per member, as an array the rule broadcasts over the last axis
        rule = _with_lr(rule, evaluate.to_array(rates))
    lrs = np.broadcast_to(rates, (size,)).astype(float)

    stepper: Rule | Averaged | _MemberByMember = rule
    if not (rule.elementwise and rule.layout().elementwise):  # Adafactor: its step couples a parameter's elements
        stepper = _MemberByMember(rule, lrs if rates.ndim == 1 else None, size)
    run = _BatchedLoop(stepper, evaluate, starts, steps, callback)
    h = run.history()
    return BatchedMinimizeResult(
        x=evaluate.numpy(run.x),
        fun=evaluate.numpy(run.f).astype(float),
        nit=run.nit,
        status=run.status,
        diverged_at=run.diverged_at,
        lr=lrs,
        history=h,
        optimizer=rule,
        function=fun,
        steps=steps,
        point_shape=point_shape,
        divergence_values=run.divergence_values,
        x_overflowed=run.x_overflowed,
    )


def _with_lr(rule: Rule | Averaged, lr: Any) -> Rule | Averaged:
    """The same rule with another learning rate (a float, or an array for a batch)."""
    if isinstance(rule, Averaged):
        return dataclasses.replace(rule, rule=dataclasses.replace(rule.rule, lr=lr))
    return dataclasses.replace(rule, lr=lr)


class _MemberByMember:
    """The step of K members for a rule whose update is not elementwise (Adafactor: the factored second moment
    and the RMS scaling mix a parameter's elements, so K stacked columns would act on each other). Each member
    is stepped on its own column, with its own learning rate; the state keeps the members on its last axis, as
    the batched loop expects. The K members still share one function evaluation per step."""

    def __init__(self, rule: Rule | Averaged, lrs: np.ndarray | None, size: int) -> None:
        self.rule, self.size = rule, size
        rates = [None] * size if lrs is None else [float(lr) for lr in np.broadcast_to(lrs, (size,))]
        self.rules = [rule if lr is None else _with_lr(rule, lr) for lr in rates]

    def layout(self) -> Any:
        return self.rule.layout()

    def init(self, x: Any) -> dict[str, Any]:
        states = [r.init(_column(x, k)) for k, r in enumerate(self.rules)]
        return {name: _stack([s[name] for s in states]) for name in states[0]}

    def step(self, x: Any, g: Any, state: dict[str, Any], t: int) -> tuple[Any, dict[str, Any]]:
        out = [
            r.step(_column(x, k), _column(g, k), {name: _column(v, k) for name, v in state.items()}, t)
            for k, r in enumerate(self.rules)
        ]
        return _stack([o[0] for o in out]), {name: _stack([o[1][name] for o in out]) for name in out[0][1]}


def _column(a: Any, k: int) -> Any:
    """Member k of a stacked array, as an array of its own (contiguous, so that reductions over it round as they
    do in a sequential run)."""
    return a[..., k].contiguous() if hasattr(a, "contiguous") else np.ascontiguousarray(a[..., k])


def _stack(members: list[Any]) -> Any:
    """The members on a new last axis."""
    if hasattr(members[0], "contiguous"):
        import torch

        return torch.stack(members, dim=-1)
    return np.stack(members, axis=-1)


class _BatchedLoop:
    """The step loop over all members, with masking of diverged members."""

    def __init__(
        self, rule: Rule | Averaged | _MemberByMember, ev: _BatchEvaluator, starts: np.ndarray, steps: int,
        callback: Any,
    ) -> None:
        self.ev = ev
        size = starts.shape[1]
        x = ev.to_array(starts)
        f, g = ev(x)
        self.x0, self.f0 = starts, ev.numpy(f).astype(float)
        alive = ev.finite(f, g)
        self.nit = np.zeros(size, dtype=int)
        self.status = ["max_steps"] * size
        self.diverged_at: list[int | None] = [None] * size
        self.divergence_values = np.full(size, np.nan)
        self.x_overflowed = np.zeros(size, dtype=bool)
        for k in np.flatnonzero(~ev.numpy(alive)):
            self.status[k], self.diverged_at[k] = "nonfinite", 0
            self.divergence_values[k] = self.f0[k]
        self.xs: list[Any] = []
        self.fs: list[Any] = []
        self.gs: list[Any] = []
        self.states: list[dict[str, Any]] = []
        # a scalar entry (NAdam's mu_product, as the rule's layout declares it) gets one value per member, which
        # broadcasts over the last axis like everything else and can be masked when a member diverges
        scalars = set(rule.layout().of_kind("scalar"))
        state = {k: ev.where(alive, v, v) if k in scalars else v for k, v in rule.init(x).items()}
        for t in range(1, steps + 1):
            if not bool(alive.any()):
                break
            x_new, state_new = rule.step(x, g, state, t)
            x_new = ev.where(alive, x_new, x)  # members that diverged stay at their last finite point
            f_new, g_new = ev(x_new)
            ok = alive & ev.finite(f_new, g_new) & ev.finite_columns(x_new)
            if bool(ok.all()):
                self._record(x_new, f_new, g, state_new)
                x, state, f, g = x_new, state_new, f_new, g_new
            else:
                self._diverged(alive & ~ok, f_new, t, ~ev.finite_columns(x_new))
                nan = ev.nan_like
                self._record(ev.where(ok, x_new, nan(x)), ev.where(ok, f_new, nan(f)), ev.where(ok, g, nan(g)),
                             {k: ev.where(ok, v, nan(v)) for k, v in state_new.items()})  # fmt: skip
                x, f, g = ev.where(ok, x_new, x), ev.where(ok, f_new, f), ev.where(ok, g_new, g)
                state = {k: ev.where(ok, v, state[k]) for k, v in state_new.items()}
            alive = ok
            self.nit[ev.numpy(ok)] = t
            if callback is not None and callback(t, ev.numpy(x), ev.numpy(f)):
                for k in np.flatnonzero(ev.numpy(alive)):
                    self.status[k] = "callback"
                break
        self.x, self.f = x, f

    def _diverged(self, newly: Any, f_new: Any, t: int, x_bad: Any) -> None:
        values = self.ev.numpy(f_new)
        for k in np.flatnonzero(self.ev.numpy(newly)):
            self.status[k], self.diverged_at[k] = "nonfinite", t
            self.divergence_values[k] = values[k]
        self.x_overflowed |= self.ev.numpy(newly & x_bad)

    def _record(self, x: Any, f: Any, g: Any, state: dict[str, Any]) -> None:
        self.xs.append(x)
        self.fs.append(f)
        self.gs.append(g)
        self.states.append(state)

    def history(self) -> BatchedHistory:
        ev, (n, size) = self.ev, self.x0.shape
        stack = ev.stack

        def rows(items: list[Any]) -> np.ndarray:
            return ev.numpy(stack(items)) if items else np.empty((0, n, size), dtype=self.x0.dtype)

        names = list(self.states[0]) if self.states else []
        return BatchedHistory(
            x0=self.x0,
            fun0=self.f0,
            x=rows(self.xs),
            fun=ev.numpy(stack(self.fs)).astype(float) if self.fs else np.empty((0, size)),
            grad=rows(self.gs),
            state={name: rows([s[name] for s in self.states]) for name in names},
        )


class _BatchEvaluator:
    """f (K,) and ∇f (n, K) of all members at once, plus the few array operations the loop needs."""

    point_shape: tuple[int, ...]
    size: int

    def _check(self, f_shape: tuple[int, ...], numel: int) -> None:
        if numel != self.size:
            raise ValueError(
                f"fun must return one value per member (shape ({self.size},)); it returned shape {f_shape}. "
                "Write it with the coordinate axis first (v[0], v[1]) and without sums over all elements"
            )

    def point_view(self, x: Any) -> Any:
        """What ``fun`` receives: (n, K), or (K,) for a scalar problem."""
        return x[0] if self.point_shape == () else x


class _TorchBatch(_BatchEvaluator):
    def __init__(self, fun: Callable[[Any], Any], dtype: str, point_shape: tuple[int, ...], size: int) -> None:
        import torch

        self.torch, self.fun, self.dtype = torch, fun, getattr(torch, dtype)
        self.point_shape, self.size = point_shape, size

    def to_array(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(np.asarray(a), dtype=self.dtype)

    def __call__(self, x: Any) -> tuple[Any, Any]:
        torch = self.torch
        with torch.enable_grad():
            xr = x.detach().clone().requires_grad_(True)
            f = self.fun(self.point_view(xr))
            if not torch.is_tensor(f):
                f = torch.as_tensor(f, dtype=self.dtype)
            self._check(tuple(f.shape), f.numel())
            f = f.reshape(self.size)
            if not f.requires_grad:  # f does not depend on x
                return f.detach(), torch.zeros_like(x)
            (g,) = torch.autograd.grad(f.sum(), xr, allow_unused=True)  # column k of ∇Σf is ∇f_k
        return f.detach(), torch.zeros_like(x) if g is None else g.detach()

    def finite(self, f: Any, g: Any) -> Any:
        return self.torch.isfinite(f) & self.torch.isfinite(g).all(dim=0)

    def finite_columns(self, x: Any) -> Any:
        return self.torch.isfinite(x).all(dim=0)

    def where(self, mask: Any, a: Any, b: Any) -> Any:
        return self.torch.where(mask, a, b)

    def nan_like(self, a: Any) -> Any:
        return self.torch.full_like(a, math.nan)

    def stack(self, items: list[Any]) -> Any:
        return self.torch.stack(items)

    def numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy().copy() if hasattr(a, "detach") else np.array(a)


class _NumpyBatch(_BatchEvaluator):
    def __init__(
        self, fun: Callable[[Any], Any], grad: Callable[[np.ndarray], Any], point_shape: tuple[int, ...], size: int
    ) -> None:
        self.fun, self.grad, self.point_shape, self.size = fun, grad, point_shape, size

    def to_array(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        view = self.point_view(x)
        with np.errstate(all="ignore"):
            f = np.asarray(self.fun(view), dtype=float)
            self._check(f.shape, f.size)
            g = np.asarray(self.grad(view), dtype=x.dtype)
        if g.shape != view.shape:
            raise ValueError(f"grad must return an array of x's shape {view.shape}; it returned shape {g.shape}")
        return f.reshape(self.size), g.reshape(x.shape)

    def finite(self, f: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.isfinite(f) & np.isfinite(g).all(axis=0)

    def finite_columns(self, x: np.ndarray) -> np.ndarray:
        return np.isfinite(x).all(axis=0)

    def where(self, mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(mask, a, b)

    def nan_like(self, a: np.ndarray) -> np.ndarray:
        return np.full_like(a, np.nan)

    def stack(self, items: list[np.ndarray]) -> np.ndarray:
        return np.stack(items)

    def numpy(self, a: Any) -> np.ndarray:
        return np.array(a)
