"""The contract every update rule follows: a frozen set of hyperparameters with pure ``init`` and ``step``.

A rule never mutates its inputs and never keeps state of its own::

    state = rule.init(param)                                   # dict of arrays, named after the math
    param, state = rule.step(param, grad, state, t)            # t = 1, 2, 3, ... (Python int)

The same rule object runs on NumPy arrays, torch tensors and JAX arrays; the faces (``adamlab.torch``,
``adamlab.numpy``, ``adamlab.optax``) and the fast kernels are adapters over it.

Hyperparameters left as ``None`` are filled from the chosen preset, then from the rule's own defaults;
an explicit argument always wins over the preset.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

Array = Any  # numpy.ndarray | torch.Tensor | jax.Array
State = dict[str, Array]

PRESETS: tuple[str, ...] = ("paper", "torch", "keras", "optax")
#: what a face does with a NaN/inf gradient or loss (documented on each face)
NONFINITE_POLICIES: tuple[str, ...] = ("raise", "skip", "ignore")


@dataclasses.dataclass(frozen=True)
class Rule:
    """Base class of all update rules. Subclasses declare hyperparameter fields defaulting to ``None``."""

    preset: str = dataclasses.field(default="paper", kw_only=True)

    name: ClassVar[str] = ""
    #: hyperparameter defaults used when neither the caller nor the preset sets a value
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: per-preset overrides of ``defaults``
    preset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: state entries this rule may create, for checkpoint validation
    state_names: ClassVar[tuple[str, ...]] = ()

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

    def init(self, param: Array) -> State:
        """Return the initial state for one parameter array."""
        raise NotImplementedError

    def step(self, param: Array, grad: Array, state: State, t: int) -> tuple[Array, State]:
        """Return ``(new_param, new_state)`` after step number ``t`` (1-based) with gradient ``grad``."""
        raise NotImplementedError


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


def safe_denominator(xp: Any, denom: Array, eps: float) -> Array:
    """Guard a denominator √(·) + ε of an adaptive rule when ε = 0.

    A zero denominator then means every gradient so far was 0, so the numerator is 0 too: dividing by 1
    there makes the step 0 instead of 0/0. With ε > 0 the denominator is returned unchanged.
    """
    return xp.where(denom > 0, denom, xp.ones_like(denom)) if eps == 0 else denom


# --- the step count t: a Python int on the host, or a 0-d array (traced under jax.jit) -------------------


def is_host_step(t: Any) -> bool:
    """True when ``t`` is a host integer (the exact path); False for an array step (e.g. traced by ``jax.jit``)."""
    return isinstance(t, (int, np.integer))


def cast_like(x: Any, like: Array) -> Any:
    """``x`` (an array) converted to ``like``'s dtype, in ``like``'s array module."""
    from adamlab.rules._array import namespace

    xp = namespace(like)
    return x.to(like.dtype) if xp.__name__ == "torch" else xp.asarray(x, dtype=like.dtype)


def bias_correction(beta: Any, t: Any, like: Array) -> Any:
    """1 − β^t for step ``t``.

    A Python int ``t`` gives a host float64 (exact, and it never stalls). An array ``t`` is raised in its own
    array module at its own float precision and the result cast to ``like``'s dtype: the optax face's traced
    int32 count gives optax's arithmetic (float32 parameters keep float32 state under ``jax.jit``), the Keras
    face's count in the variable's dtype gives Keras's.
    """
    if is_host_step(t):
        return 1 - beta**t
    return cast_like(1 - beta**t, like)


def scalar_sqrt(x: Any) -> Any:
    """√x of a host float (``math.sqrt``) or of a 0-d array (its module's ``sqrt``)."""
    if isinstance(x, (int, float, np.floating)):
        return math.sqrt(x)
    from adamlab.rules._array import namespace

    return namespace(x).sqrt(x)
