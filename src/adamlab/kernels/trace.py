"""Trace a rule's elementwise ``update`` into a small graph of primitive operations.

:func:`trace_update` calls ``rule.update`` once with symbolic arrays (the parameter, the gradient, each
per-element state entry) and symbolic scalars (each coefficient the rule reads), through :data:`TRACE_OPS`,
an :class:`adamlab.ops.Ops` that records instead of computing. Python's operators on symbols record too. The
result is the rule's math as data: :mod:`adamlab.kernels.codegen` turns it into a numba kernel, so no kernel
restates a rule.

The graph keeps the semantics of the backend the kernel must equal (torch's, on the torch face): an array
operation rounds in the array's dtype and a host scalar meeting an array is first rounded into that dtype;
operations between host scalars stay in float64, as Python's arithmetic on torch.optim's host floats does;
``scalar / array`` is torch's ``reciprocal(array) * scalar``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from adamlab.rules.base import Increment

#: node kinds that combine two operands elementwise
BINARY = ("add", "sub", "mul", "div", "rdiv", "gt", "ge", "lt", "le", "eq", "ne", "maximum", "minimum")


@dataclasses.dataclass(frozen=True)
class Node:
    """One operation: ``op`` applied to ``args`` (node indices, or constants for ``const``)."""

    op: str
    args: tuple[Any, ...]
    scalar: bool  # a per-step scalar (computed once per coefficient row) rather than an array


class Graph:
    """The operations recorded so far, in execution order (every node's inputs come before it)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._index: dict[Node, int] = {}
        self.coefficients: list[str] = []  # coefficient names in row order

    def add(self, op: str, args: tuple[Any, ...], scalar: bool) -> Sym:
        node = Node(op, args, scalar)
        index = self._index.get(node)  # common subexpressions share one node (the rule reads k["b1"] twice ...)
        if index is None:
            index = self._index[node] = len(self.nodes)
            self.nodes.append(node)
        return Sym(self, index)

    def coefficient(self, name: str) -> Sym:
        if name not in self.coefficients:
            self.coefficients.append(name)
        return self.add("coef", (self.coefficients.index(name),), True)

    def constant(self, value: Any) -> Sym:
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)):
            raise TypeError(f"a kernel can only hold host number constants; the rule used {value!r}")
        return self.add("const", (float(value),), True)

    def as_sym(self, value: Any) -> Sym:
        return value if isinstance(value, Sym) else self.constant(value)


class Sym:
    """A symbolic array or scalar; arithmetic on it records nodes in its graph."""

    __slots__ = ("graph", "index")

    def __init__(self, graph: Graph, index: int) -> None:
        self.graph, self.index = graph, index

    @property
    def __adamlab_ops__(self) -> TraceOps:  # noqa: PLW3201 - the ops_for protocol
        return TRACE_OPS

    @property
    def is_scalar(self) -> bool:
        return self.graph.nodes[self.index].scalar

    # shapes and dtypes are the kernel's business: a rule asking for them is not elementwise enough
    @property
    def shape(self) -> Any:
        raise TypeError("a rule's update must not depend on the array's shape to be compiled into a kernel")

    def _binary(self, op: str, other: Any, reverse: bool = False) -> Sym:
        other = self.graph.as_sym(other)
        a, b = (other, self) if reverse else (self, other)
        if op == "div" and a.is_scalar and not b.is_scalar:
            op = "rdiv"  # torch: scalar / tensor = tensor.reciprocal() * scalar
        return self.graph.add(op, (a.index, b.index), a.is_scalar and b.is_scalar)

    def __add__(self, o: Any) -> Sym:
        return self._binary("add", o)

    def __radd__(self, o: Any) -> Sym:
        return self._binary("add", o, True)

    def __sub__(self, o: Any) -> Sym:
        return self._binary("sub", o)

    def __rsub__(self, o: Any) -> Sym:
        return self._binary("sub", o, True)

    def __mul__(self, o: Any) -> Sym:
        return self._binary("mul", o)

    def __rmul__(self, o: Any) -> Sym:
        return self._binary("mul", o, True)

    def __truediv__(self, o: Any) -> Sym:
        return self._binary("div", o)

    def __rtruediv__(self, o: Any) -> Sym:
        return self._binary("div", o, True)

    def __neg__(self) -> Sym:
        return self.graph.add("neg", (self.index,), self.is_scalar)

    def __gt__(self, o: Any) -> Sym:
        return self._binary("gt", o)

    def __ge__(self, o: Any) -> Sym:
        return self._binary("ge", o)

    def __lt__(self, o: Any) -> Sym:
        return self._binary("lt", o)

    def __le__(self, o: Any) -> Sym:
        return self._binary("le", o)

    def __pow__(self, o: Any) -> Sym:
        if not self.is_scalar:
            raise TypeError("array ** x is not a kernel primitive: write the product (g * g) or use ops")
        return self._binary("pow", o)

    def __rpow__(self, o: Any) -> Sym:
        return self._binary("pow", o, True)

    def __bool__(self) -> bool:
        raise TypeError(
            "a rule's update branched on a per-step value; branch on static options only, or use ops.select"
        )

    __hash__ = object.__hash__


class TraceOps:
    """:class:`adamlab.ops.Ops` that records each primitive into the graph of its symbolic operands."""

    name = "trace"

    @staticmethod
    def _graph(*values: Any) -> Graph:
        for v in values:
            if isinstance(v, Sym):
                return v.graph
        raise TypeError("traced primitives need a symbolic operand")

    def _record(self, op: str, *args: Any) -> Sym:
        graph = self._graph(*args)
        syms = [graph.as_sym(a) for a in args]
        return graph.add(op, tuple(s.index for s in syms), all(s.is_scalar for s in syms))

    def lerp(self, a: Any, b: Any, weight: Any) -> Sym:
        return self._record("lerp", a, b, weight)

    def addcmul(self, c: Any, a: Any, b: Any, value: Any) -> Sym:
        return self._record("addcmul", c, a, b, value)

    def addcdiv(self, c: Any, a: Any, b: Any, value: Any) -> Sym:
        return self._record("addcdiv", c, a, b, value)

    def axpy(self, a: Any, b: Any, alpha: Any) -> Sym:
        return self._record("axpy", a, b, alpha)

    def sqrt(self, x: Any) -> Sym:
        return self._record("sqrt", x)

    def abs(self, x: Any) -> Sym:
        return self._record("abs", x)

    def abs_sq(self, x: Any) -> Sym:
        return x * x  # real parameters (the fast path takes no complex ones)

    def sign(self, x: Any) -> Sym:
        return self._record("sign", x)

    def maximum(self, a: Any, b: Any) -> Sym:
        return self._record("maximum", a, b)

    def minimum(self, a: Any, b: Any) -> Sym:
        return self._record("minimum", a, b)

    def where(self, condition: Any, x: Any, y: Any) -> Sym:
        return self._record("where", condition, x, y)

    def rsqrt(self, x: Any) -> Sym:
        raise TypeError("rsqrt has no kernel emission (torch's rounding of it is not modelled): write 1 / sqrt(x)")

    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        raise TypeError("a reduction (sum) is not elementwise: no kernel can be generated for it")

    def mean(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        raise TypeError("a reduction (mean) is not elementwise: no kernel can be generated for it")

    def norm(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        raise TypeError("a reduction (norm) is not elementwise: no kernel can be generated for it")

    def select(self, flag: Any, x: Any, y: Any) -> Sym:
        if isinstance(flag, (bool, int)):
            return x if flag else y
        return self._record("select", flag, x, y)

    def cast(self, x: Any, like: Any) -> Any:
        return x  # dtypes are the kernel's: a scalar is rounded into the array's dtype where it meets one

    def zeros_like(self, x: Any) -> Sym:
        return self._record("mul", x, 0.0)

    def full(self, shape: Any, value: float, like: Any, dtype: Any = None) -> Any:
        raise TypeError("a rule's update must not allocate arrays to be compiled into a kernel")

    def float_dtype(self, kind: str, like: Any) -> Any:
        raise TypeError("a rule's update must not ask for dtypes to be compiled into a kernel")


TRACE_OPS = TraceOps()


class _Coefficients(dict):
    """The coefficient dict a traced update sees: each key read becomes a symbolic scalar (a row entry)."""

    def __init__(self, graph: Graph, names: Any) -> None:
        super().__init__()
        self.graph = graph
        self.allowed = set(names)

    def __missing__(self, name: str) -> Sym:
        if name not in self.allowed:
            raise KeyError(name)
        value = self[name] = self.graph.coefficient(name)
        return value


@dataclasses.dataclass(frozen=True)
class Trace:
    """A rule's update as a graph: inputs ``param``, ``grad`` and ``state`` (node indices), outputs likewise."""

    graph: Graph
    state_names: tuple[str, ...]  # per-element state entries, in the layout's order
    inputs: dict[str, int]  # "param", "grad", and each state name → its load node
    outputs: dict[str, int]  # "param" and each updated state name → the node holding its new value


def trace_update(rule: Any, coefficient_names: Any) -> Trace:
    """Trace ``rule.update`` (an elementwise rule) with the coefficients ``coefficient_names`` may hold."""
    layout = rule.layout()
    if not (rule.elementwise and layout.elementwise):
        raise TypeError(f"{type(rule).__name__} is not elementwise: no kernel can be generated for it")
    graph = Graph()
    names = layout.of_kind("element")
    inputs = {"param": graph.add("load", ("param",), False), "grad": graph.add("load", ("grad",), False)}
    state = {}
    for name in names:
        state[name] = graph.add("load", (name,), False)
        inputs[name] = state[name]
    k = _Coefficients(graph, coefficient_names)
    new_param, new_state = rule.update(TRACE_OPS, k, inputs["param"], inputs["grad"], state)
    if isinstance(new_param, Increment):
        new_param = new_param.base + new_param.delta
    outputs = {"param": graph.as_sym(new_param).index}
    for name, value in new_state.items():
        if name in names:
            outputs[name] = graph.as_sym(value).index
    return Trace(graph, names, {n: s.index for n, s in inputs.items()}, outputs)
