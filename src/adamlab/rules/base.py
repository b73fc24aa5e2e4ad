"""The contract every update rule follows: frozen hyperparameters, a declared state, per-step coefficients and an
elementwise update written once in the primitives of :mod:`adamlab.ops`.

A rule never mutates its inputs and never keeps state of its own::

    state = rule.init(param)                                   # dict of arrays, named after the math
    param, state = rule.step(param, grad, state, t)            # t = 1, 2, 3, ... (Python int, or a 0-d array)

``step`` is the composition of the rule's three declarations, which is all any face or kernel reads:

- :meth:`Rule.layout`: the state entries, each per element (the parameter's shape), a 0-d scalar (NAdam's μ
  product) or another declared shape (Adafactor's factored moments), with its initial value and dtype;
- :meth:`Rule.coefficients`: the host scalars of step t (bias corrections, step sizes ...), computed in the
  arithmetic of the rule's preset, and the new values of the scalar state entries;
- :meth:`Rule.update`: the elementwise math, with Python operators and :class:`adamlab.ops.Ops` primitives.
  It branches only on static options, so :mod:`adamlab.kernels` can trace it once and generate a numba kernel
  that computes the same operations with the same rounding.

The same rule object runs on NumPy arrays, torch tensors and JAX arrays (:func:`adamlab.ops.ops_for` picks the
backend); the faces (``adamlab.torch``, ``adamlab.numpy``, ``adamlab.optax``, ``adamlab.keras``) and the fast
kernels are adapters over it.

Hyperparameters left as ``None`` are filled from the chosen preset, then from the rule's own defaults;
an explicit argument always wins over the preset. The preset also chooses the order of arithmetic: each rule
writes its update in the order of the framework the preset names (torch.optim's for-loop path, optax's
transformations, Keras's ``update_step``; the paper's Algorithm 1 for ``"paper"``), which is what makes a
preset identical to that framework bit for bit on its own face.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from adamlab.ops import Ops, is_number, ops_for

Array = Any  # numpy.ndarray | torch.Tensor | jax.Array
State = dict[str, Array]
Coefficients = dict[str, Any]

PRESETS: tuple[str, ...] = ("paper", "torch", "keras", "optax")
#: what a face does with a NaN/inf gradient or loss (documented on each face)
NONFINITE_POLICIES: tuple[str, ...] = ("raise", "skip", "ignore")
#: kinds of state entry (see :class:`StateEntry`)
STATE_KINDS: tuple[str, ...] = ("element", "scalar", "shaped")


@dataclasses.dataclass(frozen=True)
class StateEntry:
    """One entry of a rule's per-parameter state.

    Attributes:
        name: the state key (torch.optim's name where torch has the optimizer: ``exp_avg``, ``exp_avg_sq``...).
        kind: ``"element"`` (the parameter's shape, updated elementwise by :meth:`Rule.update`), ``"scalar"``
            (0-d, updated by :meth:`Rule.coefficients`) or ``"shaped"`` (the shape ``shape(param_shape)``).
        fill: initial value.
        dtype: ``"param"`` (the dtype the rule computes in), ``"float32"``, or ``"default"`` (torch's default
            float dtype, ``torch.get_default_dtype()``, on torch; float32 on NumPy and JAX, torch's own default).
        shape: for ``"shaped"`` entries, the entry's shape for a parameter of shape ``param_shape``.
        nonnegative: a second moment (an average or sum of squares, a maximum of magnitudes): finite and ≥ 0
            whenever the rule made it, so a checkpoint holding a negative one is refused on load (its square
            root would put NaN into the parameters at the next step).
    """

    name: str
    kind: str = "element"
    fill: float = 0.0
    dtype: str = "param"
    shape: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None
    nonnegative: bool = False

    def shape_for(self, param_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The entry's shape for a parameter of shape ``param_shape``."""
        if self.kind == "element":
            return tuple(param_shape)
        if self.kind == "scalar":
            return ()
        return tuple(self.shape(tuple(param_shape)))  # type: ignore[misc]


@dataclasses.dataclass(frozen=True)
class StateLayout:
    """The state of one parameter, as a rule declares it: an ordered tuple of :class:`StateEntry`."""

    entries: tuple[StateEntry, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    @property
    def nonnegative(self) -> frozenset[str]:
        """The names of the entries declared ``nonnegative`` (second moments)."""
        return frozenset(e.name for e in self.entries if e.nonnegative)

    def of_kind(self, kind: str) -> tuple[str, ...]:
        """The names of the entries of one kind, in declaration order."""
        return tuple(e.name for e in self.entries if e.kind == kind)

    @property
    def elementwise(self) -> bool:
        """True when every entry is per element or scalar (a flat buffer can hold the state)."""
        return all(e.kind in ("element", "scalar") for e in self.entries)

    def shapes(self, param_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Each entry's shape for a parameter of shape ``param_shape``."""
        return {e.name: e.shape_for(param_shape) for e in self.entries}

    def entry(self, name: str) -> StateEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)


def per_element(*names: str, nonnegative: bool = False) -> tuple[StateEntry, ...]:
    """Zero-initialised per-element entries (second moments with ``nonnegative=True``)."""
    return tuple(StateEntry(n, nonnegative=nonnegative) for n in names)


@dataclasses.dataclass(frozen=True)
class Rule:
    """Base class of all update rules. Subclasses declare hyperparameter fields defaulting to ``None``."""

    preset: str = dataclasses.field(default="paper", kw_only=True)

    name: ClassVar[str] = ""
    #: hyperparameter defaults used when neither the caller nor the preset sets a value
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: per-preset overrides of ``defaults``
    preset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: True when :meth:`update` is elementwise: each output element depends only on the same element of the
    #: parameter, the gradient and the per-element state (and on scalars), so a kernel can be generated from it
    elementwise: ClassVar[bool] = True
    #: True when :meth:`update` is right for complex arrays (|g|² as g·conj(g), as optax computes it); the torch
    #: face steps complex parameters as pairs of reals instead, as torch.optim does
    supports_complex: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        chosen = self.preset_defaults.get(self.preset, {})
        for field in self.hyperparameter_names():
            if getattr(self, field) is None:
                value = chosen.get(field, self.defaults.get(field))
                if value is None:
                    raise ValueError(f"{type(self).__name__}: {field} is required (no default in this preset)")
                object.__setattr__(self, field, value)
        self.validate()

    @classmethod
    def hyperparameter_names(cls) -> tuple[str, ...]:
        """Names of the hyperparameter fields, in constructor order (``preset`` excluded)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "preset")

    @property
    def base(self) -> Rule:
        """The rule itself (a wrapper such as :class:`~adamlab.rules.averaging.Averaged` returns the rule it wraps)."""
        return self

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved hyperparameters as a plain dict (``preset`` excluded)."""
        return {name: getattr(self, name) for name in self.hyperparameter_names()}

    def validate(self) -> None:
        """Raise ``ValueError`` naming the argument and its accepted range for any invalid value."""

    # --- the three declarations ------------------------------------------------------------------------

    def layout(self) -> StateLayout:
        """The state entries this rule keeps for one parameter (they may depend on options, e.g. amsgrad)."""
        raise NotImplementedError

    def coefficients(self, t: Any, state: State) -> Coefficients:
        """The scalars step ``t`` uses (a Python int ``t`` gives host floats), and the new scalar-state values.

        ``state`` holds at least the scalar entries (0-d arrays); the result maps a coefficient name to its
        value and each scalar entry's name to its value after this step.
        """
        return {}

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        """The elementwise step: ``(new_param, new_element_state)`` from the coefficients ``k`` of this step."""
        raise NotImplementedError

    # --- what the faces call -----------------------------------------------------------------------------

    def init(self, param: Array) -> State:
        """The initial state for one parameter array, as :meth:`layout` declares it."""
        ops = ops_for(param)
        shape = tuple(getattr(param, "shape", ()))
        return {
            e.name: ops.full(e.shape_for(shape), e.fill, like=param, dtype=ops.float_dtype(e.dtype, param))
            for e in self.layout().entries
        }

    def step(self, param: Array, grad: Array, state: State, t: Any) -> tuple[Array, State]:
        """Return ``(new_param, new_state)`` after step number ``t`` (1-based) with gradient ``grad``."""
        ops = ops_for(param)
        k = self.coefficients(t, state)
        new_param, new_state = self.update(ops, k, param, grad, state)
        scalars = self.layout().of_kind("scalar")
        return applied(new_param), {**new_state, **{name: k[name] for name in scalars}}

    def increment(self, param: Array, grad: Array, state: State, t: Any) -> tuple[Array, State]:
        """``(u, new_state)`` with ``new_param = param + u``: the update as optax's ``update`` returns it.

        In optax's order of arithmetic the rule computes u itself (``ops.apply_increment``) and u is returned
        as computed; otherwise u is ``new_param − param``.
        """
        ops = ops_for(param)
        k = self.coefficients(t, state)
        new_param, new_state = self.update(ops, k, param, grad, state)
        scalars = self.layout().of_kind("scalar")
        u = new_param.delta if isinstance(new_param, Increment) else new_param - param
        return u, {**new_state, **{name: k[name] for name in scalars}}


def build_rule(rule_type: type[Rule], **hyperparameters: Any) -> Rule:
    """``rule_type(**hyperparameters)``, from the one cache of rule objects every face shares (a scheduler makes a
    new learning rate every step, and each face used to keep a cache of its own). Equal hyperparameters give the
    same object; unhashable ones (a tensor lr) build a new rule each time. Validation errors are not cached."""
    try:
        return _cached_rule(rule_type, tuple(sorted(hyperparameters.items())))
    except TypeError:  # unhashable hyperparameters
        return rule_type(**hyperparameters)


@functools.lru_cache(maxsize=1024)
def _cached_rule(rule_type: type[Rule], items: tuple[tuple[str, Any], ...]) -> Rule:
    return rule_type(**dict(items))


def with_hyperparameters(rule: Rule, **changes: Any) -> Rule:
    """``rule`` with some hyperparameters changed (``lr`` from a schedule ...), through :func:`build_rule`."""
    return build_rule(type(rule), **{**rule.hyperparameters(), "preset": rule.preset, **changes})


@dataclasses.dataclass(frozen=True)
class Increment:
    """``base + delta``, not yet added: what :func:`apply_increment` returns, so that the increment stays exact."""

    base: Array
    delta: Array


def apply_increment(param: Array, delta: Array) -> Increment:
    """The new parameter ``param + delta`` of a rule that computes its increment (optax's order), kept unevaluated
    so that :meth:`Rule.increment` can return ``delta`` itself; :meth:`Rule.step` and :func:`applied` add it."""
    return Increment(param, delta)


def applied(value: Array | Increment) -> Array:
    """An :class:`Increment` evaluated (``base + delta``); anything else unchanged."""
    return value.base + value.delta if isinstance(value, Increment) else value


# --- validation helpers: each message names the argument and the accepted range -----------------------


def check_number(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = True,
) -> None:
    """Check ``low <= value (<|<=) high`` and finiteness; arrays (batched hyperparameters) are checked elementwise.

    Concrete torch tensors and JAX arrays are checked like NumPy arrays; a value that is being traced (inside
    ``jax.jit``, a Keras trace) has no value yet and is left alone.
    """
    if isinstance(value, (str, bool, np.bool_, type(None))):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if not isinstance(value, (numbers.Real, np.ndarray, np.number, list, tuple)):
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            raise ValueError(f"{name} must be a number; got {value!r}")
        value = _concrete(value)
        if value is None:
            return
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers; got {value!r}") from None
    lo = "(" if low_open else "["
    hi = ")" if high_open or math.isinf(high) else "]"
    interval = f"{lo}{low:g}, {'inf' if math.isinf(high) else f'{high:g}'}{hi}"
    ok = np.isfinite(arr) & (arr > low if low_open else arr >= low) & (arr < high if high_open else arr <= high)
    if not np.all(ok):
        shown = value if isinstance(value, (int, float)) else arr[~ok].ravel()[0].item()  # not np.float64(...)
        raise ValueError(f"{name} must be a finite number in {interval}; got {shown!r}")


def _concrete(value: Any) -> np.ndarray | None:
    """A tensor or array as NumPy, or None while it is traced (no value to check yet)."""
    try:
        if hasattr(value, "detach"):  # torch (np.asarray on a tensor that requires grad raises)
            value = value.detach().cpu()
            return value.numpy() if value.is_floating_point() and value.dtype.itemsize >= 4 else value.double().numpy()
        return np.asarray(value)
    except Exception:  # tracer conversion errors differ by library
        return None


def check_betas(value: Any, name: str = "betas") -> None:
    """Betas are a pair, each in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2), each in [0, 1); got {value!r}")
    for i, beta in enumerate(value):
        check_number(f"{name}[{i}]", beta, low=0.0, high=1.0)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Check ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_flag(name: str, value: Any) -> None:
    """Check ``value`` is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")


def nonzero(x: Any) -> bool:
    """A static branch on a hyperparameter: False only for a host number 0. An array hyperparameter (batched,
    or traced by ``optax.inject_hyperparams``) has no value to branch on, so its term is always computed."""
    return not (is_number(x) and x == 0)


def positive(x: Any) -> bool:
    """A static branch on a hyperparameter: False only for a host number ≤ 0 (arrays: see :func:`nonzero`)."""
    return not (is_number(x) and x <= 0)


def guard_zero(ops: Ops, denom: Array, eps: Any) -> Array:
    """Guard a denominator √(·) + ε of an adaptive rule when ε may be 0 (a static decision on the rule's ε).

    A zero denominator then means every gradient so far was 0, so the numerator is 0 too: dividing by 1
    there makes the step 0 instead of 0/0. With a host ε > 0 the denominator is returned unchanged.
    """
    return denom if is_number(eps) and eps != 0 else ops.where(denom > 0, denom, 1.0)


# --- the step count t: a Python int on the host, or a 0-d array (traced by jax.jit, Keras's count) ---------


def is_host_step(t: Any) -> bool:
    """True when ``t`` is a host integer (the exact path); False for an array step (e.g. traced by ``jax.jit``)."""
    return isinstance(t, (int, np.integer))


def like_step(x: Any, t: Any) -> Any:
    """The number ``x`` as an array of ``t``'s dtype and library when ``t`` is an array (Keras computes β^t as
    ``ops.power(ops.cast(β, dtype), t)``); unchanged for a host ``t``."""
    if is_host_step(t):
        return x
    ops = ops_for(t)
    float_t = t if _is_float(t) else t * 1.0  # an integer count: the float type its library promotes it to
    return ops.full((), x, like=float_t)


def _is_float(t: Any) -> bool:
    kind = getattr(getattr(t, "dtype", None), "kind", None)  # NumPy, JAX
    if kind is not None:
        return kind == "f"
    return bool(getattr(t, "is_floating_point", lambda: False)())  # torch


def scalar_sqrt(x: Any) -> Any:
    """√x of a host number (``math.sqrt``) or of a 0-d array (its backend's ``sqrt``)."""
    if is_number(x):
        return math.sqrt(x)
    return ops_for(x).sqrt(x)


def cast_like(x: Any, like: Array) -> Any:
    """``x`` in ``like``'s dtype (host numbers stay host numbers)."""
    return ops_for(like).cast(x, like)
