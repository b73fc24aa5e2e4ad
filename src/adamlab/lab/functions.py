"""Registry of optimization test functions for the optimizer lab.

Each formula is written once against the array module picked by :func:`adamlab.ops.array_module`, so
it evaluates NumPy arrays, torch tensors (with autograd) and JAX arrays alike.

Conventions: the coordinate axis is the FIRST axis. A 2-D function takes ``v`` with ``v[0] = x`` and
``v[1] = y``; trailing axes are batch axes, so shapes ``(2,)``, ``(2, K)`` and ``(2, N, N)`` give results of
shape ``()``, ``(K,)`` and ``(N, N)``. The 1-D cubic is elementwise: its result has the shape of ``v``.
Anything that is not a torch/JAX array (lists, tuples, floats) is converted with ``numpy.asarray``.

Example::

    >>> import numpy as np
    >>> from adamlab.lab.functions import get_function
    >>> f = get_function("rosenbrock")
    >>> float(f(np.array([0.0, 0.0]))), float(f(np.array(f.minima[0])))
    (1.0, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from adamlab.ops import array_module as namespace

Array = Any  # numpy.ndarray | torch.Tensor | jax.Array

__all__ = ["FUNCTIONS", "TestFunction", "get_function", "list_functions"]


@dataclass(frozen=True)
class TestFunction:
    """One test function with its plot box, standard start point and known minima."""

    __test__ = False  # not a pytest test class

    name: str  #: registry key, e.g. ``"rosenbrock"``
    title: str  #: display name, e.g. ``"Rosenbrock"``
    formula: str  #: human-readable formula (unicode)
    fn: Callable[[Array], Array]  #: the function; coordinate axis first
    dim: int  #: number of coordinates (1 or 2)
    domain: tuple[tuple[float, float], ...]  #: plot box (low, high) per coordinate
    start: tuple[float, ...]  #: standard start point used in the lab
    minima: tuple[tuple[float, ...], ...]  #: known global minimisers (the cubic: its local minimum)
    min_value: float | None  #: f at ``minima``; None when there is no minimum
    bounded_below: bool  #: False when f → −∞ somewhere (saddle, cubic)
    note: str = ""  #: remarks such as "many local minima"

    def __call__(self, v: Array) -> Array:
        """Evaluate the function at ``v`` (coordinate axis first)."""
        return self.fn(v)


def _xs(v: Array) -> tuple[Any, Array]:
    """Return the array module for ``v`` and ``v`` as an array of that module."""
    xp = namespace(v)
    return xp, (np.asarray(v) if xp is np else v)


def rosenbrock(v: Array) -> Array:
    _, v = _xs(v)
    x, y = v[0], v[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(v: Array) -> Array:
    _, v = _xs(v)
    x, y = v[0], v[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def booth(v: Array) -> Array:
    _, v = _xs(v)
    x, y = v[0], v[1]
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def himmelblau(v: Array) -> Array:
    _, v = _xs(v)
    x, y = v[0], v[1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def rastrigin(v: Array) -> Array:
    xp, v = _xs(v)
    x, y = v[0], v[1]
    return 20 + (x**2 - 10 * xp.cos(2 * math.pi * x)) + (y**2 - 10 * xp.cos(2 * math.pi * y))


def ackley(v: Array) -> Array:
    xp, v = _xs(v)
    x, y = v[0], v[1]
    # The +1e-30 keeps autograd finite at the origin (the minimum is a cone tip, where d√r/dr = ∞):
    # the gradient there comes out as 0 instead of NaN; values change by < 1e-14.
    r = xp.sqrt(0.5 * (x**2 + y**2) + 1e-30)
    cosines = 0.5 * (xp.cos(2 * math.pi * x) + xp.cos(2 * math.pi * y))
    return -20 * xp.exp(-0.2 * r) - xp.exp(cosines) + math.e + 20


def styblinski_tang(v: Array) -> Array:
    _, v = _xs(v)
    x, y = v[0], v[1]
    return 0.5 * ((x**4 - 16 * x**2 + 5 * x) + (y**4 - 16 * y**2 + 5 * y))


def goldstein_price(v: Array) -> Array:
    _, v = _xs(v)
    x, y = v[0], v[1]
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return a * b


def three_hump_camel(v: Array) -> Array:
    _, v = _xs(v)
    x, y = v[0], v[1]
    return 2 * x**2 - 1.05 * x**4 + x**6 / 6 + x * y + y**2


def saddle(v: Array) -> Array:
    _, v = _xs(v)
    return v[0] ** 2 - v[1] ** 2


KAPPA = 100.0  #: condition number of ``ill_conditioned`` (Hessian diag(1, KAPPA), axis-aligned)


def ill_conditioned(v: Array) -> Array:
    _, v = _xs(v)
    return 0.5 * (v[0] ** 2 + KAPPA * v[1] ** 2)


def cubic(v: Array) -> Array:
    _, v = _xs(v)
    return v**3 - 2 * v**2 + 2


# Minimisers of Himmelblau and Styblinski–Tang refined by Newton's method from the published 6-decimal
# values (-2.805118, 3.131312), ... and -2.903534; they agree with those to 1e-6.
_ST = -2.9035340277711783

_TABLE = [
    TestFunction("rosenbrock", "Rosenbrock", "(1−x)² + 100(y−x²)²", rosenbrock, 2,
                 ((-2.0, 2.0), (-1.0, 3.0)), (-1.2, 1.0), ((1.0, 1.0),), 0.0, True,
                 "curved narrow valley"),
    TestFunction("beale", "Beale", "(1.5−x+xy)² + (2.25−x+xy²)² + (2.625−x+xy³)²", beale, 2,
                 ((-4.5, 4.5), (-4.5, 4.5)), (1.0, 1.5), ((3.0, 0.5),), 0.0, True,
                 "flat plateaus, steep ridges near the corners"),
    TestFunction("booth", "Booth", "(x+2y−7)² + (2x+y−5)²", booth, 2,
                 ((-10.0, 10.0), (-10.0, 10.0)), (-5.0, -5.0), ((1.0, 3.0),), 0.0, True,
                 "convex quadratic"),
    TestFunction("himmelblau", "Himmelblau", "(x²+y−11)² + (x+y²−7)²", himmelblau, 2,
                 ((-5.0, 5.0), (-5.0, 5.0)), (0.0, 0.0),
                 ((3.0, 2.0), (-2.805118086952745, 3.131312518250573),
                  (-3.779310253377747, -3.2831859912861696), (3.5844283403304917, -1.8481265269644036)),
                 0.0, True, "four global minima; local maximum near (−0.2708, −0.9230)"),
    TestFunction("rastrigin", "Rastrigin", "20 + x² − 10cos(2πx) + y² − 10cos(2πy)", rastrigin, 2,
                 ((-5.12, 5.12), (-5.12, 5.12)), (-2.0, 3.5), ((0.0, 0.0),), 0.0, True,
                 "many local minima (near integer points)"),
    TestFunction("ackley", "Ackley", "−20·exp(−0.2·√(½(x²+y²))) − exp(½(cos 2πx + cos 2πy)) + e + 20",
                 ackley, 2, ((-5.0, 5.0), (-5.0, 5.0)), (-4.0, 3.0), ((0.0, 0.0),), 0.0, True,
                 "many local minima; non-differentiable at the global minimum (cone tip)"),
    TestFunction("styblinski_tang", "Styblinski–Tang", "½(x⁴ − 16x² + 5x + y⁴ − 16y² + 5y)",
                 styblinski_tang, 2, ((-5.0, 5.0), (-5.0, 5.0)), (0.0, 0.0), ((_ST, _ST),),
                 -78.33233140754282, True, "local minima at x or y ≈ 2.746803"),
    TestFunction("goldstein_price", "Goldstein–Price",
                 "[1+(x+y+1)²(19−14x+3x²−14y+6xy+3y²)]·[30+(2x−3y)²(18−32x+12x²+48y−36xy+27y²)]",
                 goldstein_price, 2, ((-2.0, 2.0), (-2.0, 2.0)), (1.0, 1.0), ((0.0, -1.0),), 3.0, True,
                 "several local minima; values span ~6 orders of magnitude (plot on a log scale)"),
    TestFunction("three_hump_camel", "Three-hump camel", "2x² − 1.05x⁴ + x⁶/6 + xy + y²",
                 three_hump_camel, 2, ((-2.0, 2.0), (-2.0, 2.0)), (1.5, 1.5), ((0.0, 0.0),), 0.0, True,
                 "two local minima near ±(1.7476, −0.8738)"),
    TestFunction("saddle", "Saddle", "x² − y²", saddle, 2, ((-2.0, 2.0), (-2.0, 2.0)), (1.5, 1e-3),
                 (), None, False, "no minimum; saddle point at the origin; unbounded below: y→±∞"),
    TestFunction("ill_conditioned", "Ill-conditioned quadratic", "½(x² + 100y²)", ill_conditioned, 2,
                 ((-2.0, 2.0), (-1.0, 1.0)), (-1.5, 0.5), ((0.0, 0.0),), 0.0, True,
                 "axis-aligned quadratic, condition number κ = 100"),
    TestFunction("cubic", "Cubic", "x³ − 2x² + 2", cubic, 1, ((-2.0, 2.0),), (0.001,), ((4 / 3,),),
                 22 / 27, False, "local minimum x=4/3 (local maximum at 0); unbounded below: x→−∞"),
]  # fmt: skip

FUNCTIONS: dict[str, TestFunction] = {f.name: f for f in _TABLE}


def list_functions() -> list[TestFunction]:
    """All registered test functions, sorted by name."""
    return [FUNCTIONS[name] for name in sorted(FUNCTIONS)]


def get_function(name: str) -> TestFunction:
    """Look up a test function by registry key; raise ``ValueError`` listing the keys if unknown."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        choices = ", ".join(sorted(FUNCTIONS))
        raise ValueError(f"unknown function {name!r}; choose one of: {choices}") from None
