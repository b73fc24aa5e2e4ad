"""Problems the lab compares optimizers on: test functions and learning problems, behind one interface.

A problem runs ONE rule on K independent members at once (one learning rate and one seed each) and returns
the loss curve of every member. That is all :func:`~adamlab.lab.compare.compare` needs, so a 2-D test
function and a minibatch learning problem are compared the same way::

    runs = problem.run(rule, lr=np.array([1e-3, 1e-2]), seeds=np.array([0, 0]), steps=200)
    runs.losses        # (P, K): the loss at the recorded points, NaN after a member diverged
    runs.points        # (P,):   the step number of each point (every step; every epoch for learning problems)

Every member with the same seed starts from the same initialisation, whatever its optimizer (the paper's
protocol, §6). A member whose loss, gradient or parameters become NaN/inf is recorded as diverged at that
step and frozen; the other members are unaffected.

Registry: every test function of :mod:`adamlab.lab.functions` under its name, and ``"digits"`` (the
paper's §6.1 logistic regression on scikit-learn's digits, see :mod:`adamlab.lab.digits`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from adamlab.lab.functions import FUNCTIONS, TestFunction, get_function
from adamlab.lab.minimize_batched import minimize_batched
from adamlab.rules import Averaged, Rule

__all__ = ["FunctionProblem", "PROBLEM_NAMES", "Problem", "Runs", "get_problem", "learning_problems"]

DTYPES: tuple[str, ...] = ("float32", "float64")


def check_non_negative(name: str, value: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real number >= 0 (not a bool)."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value >= 0):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")


def check_dtype(dtype: object) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")


@dataclasses.dataclass
class Runs:
    """Loss curves of K members of one problem.

    Attributes:
        losses: ``(P, K)`` loss at each recorded point; NaN from a member's divergence on.
        points: ``(P,)`` step number of each point (0 is the initialisation).
        diverged_at: per member the step at which the loss, gradient or parameters became non-finite, or None.
        paths: ``(P, n, K)`` iterates of a test-function problem (NaN after divergence); None otherwise.
    """

    losses: np.ndarray
    points: np.ndarray
    diverged_at: list[int | None]
    paths: np.ndarray | None = None

    def select(self, members: list[int] | np.ndarray) -> Runs:
        """The runs of the given members only, in that order."""
        idx = np.asarray(members, dtype=int)
        return Runs(
            losses=self.losses[:, idx],
            points=self.points,
            diverged_at=[self.diverged_at[i] for i in idx],
            paths=None if self.paths is None else self.paths[..., idx],
        )


class Problem:
    """What every problem provides (subclasses set the class attributes and implement :meth:`run`)."""

    name: str
    title: str
    kind: ClassVar[str]  #: ``"function"`` or ``"learning"``
    unit: ClassVar[str]  #: what one curve point is: ``"step"`` or ``"epoch"``
    steps_per_epoch: int = 1
    default_steps: int = 500
    min_value: float | None = None  #: known minimum of the loss, if any
    grad_noise: float = 0.0  #: σ of Gaussian noise added to every gradient component

    @property
    def deterministic(self) -> bool:
        """True when every seed gives the same run (so one seed is enough)."""
        return False

    @property
    def default_seeds(self) -> int:
        return 1 if self.deterministic else 5

    def run(self, rule: Rule | Averaged, lr: np.ndarray, seeds: np.ndarray, steps: int) -> Runs:
        """Run ``rule`` with ``lr[k]`` and ``seeds[k]`` for member k, all members at once."""
        raise NotImplementedError

    def gradient_scale(self) -> float:
        """Root-mean-square of the (noise-free) gradient at the initialisation of seed 0."""
        raise NotImplementedError

    def with_noise(self, grad_noise: float) -> Problem:
        """The same problem with Gaussian noise of standard deviation ``grad_noise`` added to every gradient."""
        check_non_negative("grad_noise", grad_noise)
        return dataclasses.replace(self, grad_noise=float(grad_noise))  # type: ignore[type-var]

    def describe(self) -> str:
        """One paragraph saying what the problem is and which choices were made."""
        return self.title

    def identity(self) -> dict[str, Any]:
        """The problem as JSON data for a run's record: its class, name and every option."""
        out: dict[str, Any] = {"class": type(self).__name__, "name": self.name}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            out[field.name] = value.name if isinstance(value, TestFunction) else value
        return out


@dataclasses.dataclass(frozen=True)
class FunctionProblem(Problem):
    """A test function of :mod:`adamlab.lab.functions`, started at its standard start point.

    Runs go through :func:`~adamlab.lab.minimize_batched.minimize_batched`: the K learning rates are one
    array computation. With ``grad_noise`` σ > 0 the optimizer sees ∇f + σ·ξ, ξ ~ N(0, I) drawn from the
    member's seed (the loss recorded is the noise-free f).
    """

    function: TestFunction
    grad_noise: float = 0.0
    dtype: str = "float64"

    kind = "function"
    unit = "step"
    default_steps = 500

    def __post_init__(self) -> None:
        check_non_negative("grad_noise", self.grad_noise)
        check_dtype(self.dtype)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.function.name

    @property
    def title(self) -> str:  # type: ignore[override]
        return self.function.title

    @property
    def min_value(self) -> float | None:  # type: ignore[override]
        return self.function.min_value if self.function.bounded_below else None

    @property
    def deterministic(self) -> bool:
        return self.grad_noise == 0

    def describe(self) -> str:
        f = self.function
        noise = f"; gradient noise σ = {self.grad_noise:g}" if self.grad_noise else ""
        return f"{f.title}: f(x, y) = {f.formula}, start {f.start}{noise}."

    def run(self, rule: Rule | Averaged, lr: np.ndarray, seeds: np.ndarray, steps: int) -> Runs:
        f = self.function
        lr = np.asarray(lr, dtype=float).reshape(-1)
        grad = None if self.grad_noise == 0 else NoisyGradient(f, self.grad_noise, seeds, self.dtype)
        res = minimize_batched(f, np.asarray(f.start), rule, steps, lr=lr, grad=grad, dtype=self.dtype)
        losses, paths = res.history.losses(), res.history.paths()
        if len(losses) < steps + 1:  # every member diverged early: pad with NaN
            pad = steps + 1 - len(losses)
            losses = np.concatenate([losses, np.full((pad, lr.size), np.nan)])
            paths = np.concatenate([paths, np.full((pad, *paths.shape[1:]), np.nan)])
        return Runs(losses=losses, points=np.arange(steps + 1), diverged_at=list(res.diverged_at), paths=paths)

    def gradient_scale(self) -> float:
        import torch

        x = torch.tensor(self.function.start, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(self.function(x), x)
        return float(torch.sqrt(torch.mean(g * g)))


class NoisyGradient:
    """∇f by autograd plus σ·N(0, 1) noise, one generator per member (so a member's noise does not depend on K)."""

    def __init__(self, f: TestFunction, sigma: float, seeds: np.ndarray, dtype: str) -> None:
        import torch

        self.torch, self.f, self.sigma, self.dtype = torch, f, sigma, getattr(torch, dtype)
        self.generators = [np.random.default_rng([int(s), 7]) for s in np.asarray(seeds).reshape(-1)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        xt = torch.tensor(x, dtype=self.dtype, requires_grad=True)
        (g,) = torch.autograd.grad(self.f(xt).sum(), xt)
        noise = np.stack([gen.standard_normal(x.shape[0]) for gen in self.generators], axis=1)
        return g.numpy() + self.sigma * noise


def learning_problems() -> dict[str, type[Problem]]:
    """Learning problems by name (imported lazily: they need scikit-learn)."""
    from adamlab.lab.digits import DigitsLogisticRegression

    return {"digits": DigitsLogisticRegression}


#: every name :func:`get_problem` accepts
PROBLEM_NAMES: tuple[str, ...] = (*sorted(FUNCTIONS), "digits")


def get_problem(name: str | Problem, **options: Any) -> Problem:
    """A problem by name: a test function name (``"rosenbrock"``) or a learning problem (``"digits"``).

    ``options`` go to the problem's constructor (e.g. ``grad_noise=0.1``, or ``l2=1e-3`` for digits).
    Unknown names raise ``ValueError`` listing the valid ones.
    """
    if isinstance(name, Problem):
        _check_options(type(name), options)
        return dataclasses.replace(name, **options) if options else name  # type: ignore[type-var]
    key = str(name).lower()
    if key in FUNCTIONS:
        _check_options(FunctionProblem, options)
        return FunctionProblem(get_function(key), **options)
    if key == "digits":
        cls = learning_problems()[key]
        _check_options(cls, options)
        return cls(**options)
    raise ValueError(f"unknown problem {name!r}; choose one of: {', '.join(PROBLEM_NAMES)}")


def _check_options(cls: type[Problem], options: dict[str, Any]) -> None:
    """Unknown options raise ``ValueError`` listing the ones ``cls`` accepts."""
    accepted = [f.name for f in dataclasses.fields(cls) if f.init and f.name != "function"]  # type: ignore[arg-type]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for {cls.__name__}; accepted: {', '.join(accepted)}")
