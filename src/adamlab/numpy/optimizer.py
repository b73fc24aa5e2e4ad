"""The NumPy face: a stateful optimizer over ndarrays (and lists/tuples/dicts of them) for user-supplied gradients.

    >>> import numpy as np, adamlab.numpy
    >>> opt = adamlab.numpy.Adam(lr=0.1)
    >>> params = {"w": np.ones(3), "b": 0.0}
    >>> params = opt.step(params, {"w": np.full(3, 2.0), "b": -1.0})   # returns new arrays; inputs untouched
    >>> params["w"].round(6).tolist(), round(float(params["b"]), 6)
    ([0.9, 0.9, 0.9], 0.1)

No torch import happens on this path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from adamlab.errors import NonFiniteError
from adamlab.rules import Averaged, Rule
from adamlab.rules.base import NONFINITE_POLICIES, check_choice, check_number

Tree = Any  # ndarray | float | list | tuple | dict of those


def flatten(tree: Tree) -> tuple[list[Any], Callable[[list[Any]], Tree]]:
    """Split a nested list/tuple/dict of arrays into leaves and a function that rebuilds the structure."""
    if isinstance(tree, dict):
        keys = list(tree)
        parts = [flatten(tree[k]) for k in keys]
    elif isinstance(tree, (list, tuple)):
        keys = None
        parts = [flatten(v) for v in tree]
    else:
        return [tree], lambda leaves: leaves[0]
    sizes = [len(leaves) for leaves, _ in parts]

    def rebuild(leaves: list[Any]) -> Tree:
        out, start = [], 0
        for (_, sub), n in zip(parts, sizes, strict=True):
            out.append(sub(leaves[start : start + n]))
            start += n
        if keys is not None:
            return dict(zip(keys, out, strict=True))
        return type(tree)(out)

    return [leaf for leaves, _ in parts for leaf in leaves], rebuild


def _as_float_array(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def per_element_entries(rule: Any) -> set[str]:
    """The state entries with the parameter's shape, as the rule's layout declares them."""
    return set(rule.layout().of_kind("element"))


class NumpyOptimizer:
    """Runs a rule over NumPy arrays. ``step(params, grads)`` returns the new parameters (same structure).

    Args:
        rule: the update rule (e.g. ``adamlab.Adam(lr=0.1)``); the named classes build it for you.
        averaging: ``None`` | ``"polyak"`` | ``"ema"``: also keep an average of the iterates (paper §7.2),
            read with :meth:`averaged`.
        averaging_decay: β of the EMA.
        nonfinite: a NaN/inf gradient ``"raise"`` (:class:`~adamlab.errors.NonFiniteError`, nothing changes),
            ``"skip"`` (return the parameters unchanged, count it in ``skipped_steps``) or ``"ignore"``.

    State is kept at least in float32 (float16 params get float32 state and arithmetic).
    """

    rule_type: ClassVar[type[Rule] | None] = None

    def __init__(
        self,
        rule: Rule,
        *,
        averaging: str | None = None,
        averaging_decay: float = 0.999,
        nonfinite: str = "raise",
    ) -> None:
        check_choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        check_number("averaging_decay", averaging_decay, high=1.0)  # also when unused, as a typo would be
        self.rule: Rule | Averaged = Averaged(rule, averaging, averaging_decay) if averaging else rule
        self.nonfinite = nonfinite
        self.t = 0
        self.skipped_steps = 0
        self.state: list[dict[str, np.ndarray]] | None = None

    def step(self, params: Tree, grads: Tree) -> Tree:
        """One optimizer step; returns the new parameters with the structure (and dtype) of ``params``."""
        leaves, rebuild = flatten(params)
        grad_leaves, _ = flatten(grads)
        if len(grad_leaves) != len(leaves):
            raise ValueError(f"grads has {len(grad_leaves)} arrays; params has {len(leaves)}")
        arrays = [_as_float_array(p) for p in leaves]
        grad_arrays = [np.asarray(g) for g in grad_leaves]
        for i, (p, g) in enumerate(zip(arrays, grad_arrays, strict=True)):
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] has shape {g.shape}; its parameter has shape {p.shape}")
        if self.nonfinite != "ignore" and not all(np.isfinite(g).all() for g in grad_arrays):
            if self.nonfinite == "raise":
                raise NonFiniteError("non-finite gradient: parameters and state were left unchanged")
            self.skipped_steps += 1
            return rebuild([a.copy() for a in arrays])  # new arrays, as every step returns
        work = [p.astype(np.promote_types(p.dtype, np.float32)) for p in arrays]
        if self.state is None:
            self.state = [self.rule.init(p) for p in work]
        elif len(self.state) != len(work):
            raise ValueError(f"params has {len(work)} arrays; the optimizer state was built for {len(self.state)}")
        else:  # a state of another shape would broadcast silently against the parameter
            per_element = per_element_entries(self.rule)
            for i, (p, s) in enumerate(zip(work, self.state, strict=True)):
                shape = next((np.shape(v) for k, v in s.items() if k in per_element), p.shape)
                if shape != p.shape:
                    raise ValueError(f"params[{i}] has shape {p.shape}; the optimizer state was built for {shape}")
        self.t += 1
        new = []
        for i, (p, g) in enumerate(zip(work, grad_arrays, strict=True)):
            p_new, self.state[i] = self.rule.step(p, g.astype(p.dtype), self.state[i], self.t)
            new.append(np.asarray(p_new).astype(arrays[i].dtype))
        return rebuild(new)

    def averaged(self, params: Tree) -> Tree:
        """The averaged parameters (structure of ``params``), when constructed with ``averaging``."""
        if not isinstance(self.rule, Averaged):
            raise ValueError("this optimizer keeps no average: construct it with averaging='ema' or 'polyak'")
        if self.state is None:
            raise ValueError("averaged parameters exist only after the first step")
        leaves, rebuild = flatten(params)
        return rebuild(
            [
                np.asarray(self.rule.averaged(s, self.t)).astype(_as_float_array(p).dtype)
                for s, p in zip(self.state, leaves, strict=True)
            ]
        )

    def state_dict(self) -> dict[str, Any]:
        """A picklable copy of the step count and state (arrays copied)."""
        rule = self.rule.base
        return {
            "rule": rule.name,
            "hyperparameters": rule.hyperparameters(),
            "step": self.t,
            "state": None if self.state is None else [{k: np.array(v) for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a state of another optimizer or with wrong keys raises ``ValueError``."""
        rule = self.rule.base
        for key in ("rule", "step", "state"):
            if key not in state_dict:
                raise ValueError(f"state_dict is missing {key!r}")
        if state_dict["rule"] != rule.name:
            raise ValueError(f"state_dict is of optimizer {state_dict['rule']!r}; this one is {rule.name!r}")
        state = state_dict["state"]
        if state is not None:
            for i, entry in enumerate(state):
                some = next(iter(entry.values()), None)
                expected = set(self.rule.init(np.zeros_like(some) if some is not None else np.zeros(())))
                if set(entry) != expected:
                    raise ValueError(f"state[{i}] has keys {sorted(entry)}; expected {sorted(expected)}")
            state = [{k: np.array(v) for k, v in entry.items()} for entry in state]
        self.t = int(state_dict["step"])
        self.state = state


def make_numpy_optimizer(rule_type: type[Rule], name: str | None = None) -> type[NumpyOptimizer]:
    """Create the NumPy face class for ``rule_type``: ``Cls(lr=..., preset=..., averaging=..., nonfinite=...)``."""

    def __init__(
        self: NumpyOptimizer,
        *args: Any,
        preset: str = "paper",
        averaging: str | None = None,
        averaging_decay: float = 0.999,
        nonfinite: str = "raise",
        **hyperparameters: Any,
    ) -> None:
        NumpyOptimizer.__init__(
            self,
            rule_type(*args, preset=preset, **hyperparameters),
            averaging=averaging,
            averaging_decay=averaging_decay,
            nonfinite=nonfinite,
        )

    doc = f"NumPy optimizer running :class:`adamlab.rules.{rule_type.__name__}`.\n\n{rule_type.__doc__}"
    attrs = {"__init__": __init__, "rule_type": rule_type, "__doc__": doc}
    cls = type(name or rule_type.__name__, (NumpyOptimizer,), attrs)
    cls.__module__ = "adamlab.numpy"
    return cls
