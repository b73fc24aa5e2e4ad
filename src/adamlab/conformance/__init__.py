"""Conformance: adamlab's faces against the real torch.optim, optax and Keras 3 optimizers, side by side.

Every optimizer × framework pair the framework has is run twice for N steps on the same problem (a noisy
random quadratic and a small MLP on random minibatches, :mod:`.problems`) with random hyperparameters
(:mod:`.cases`): once with the framework's optimizer, once with adamlab's face for that framework under
its default preset and the same arguments. The maximum relative difference of the final parameters must
be ≤ 1e-12 in float64 (torch, optax) and ≤ 1e-5 in float32 (Keras).

    >>> from adamlab.conformance import run_conformance, format_table
    >>> report = run_conformance(steps=300)              # doctest: +SKIP
    >>> print(format_table(report))                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import time
from typing import Any

from adamlab.conformance.cases import DTYPES, EXTRAS, FRAMEWORKS, LACKS, MISSING, OPTIMIZERS, TOLERANCE, Case, cases
from adamlab.conformance.problems import Problem, relative_difference
from adamlab.conformance.runners import RUNNERS

MAX_STEPS = 1_000_000  #: most steps per run (every case runs twice; the default is 300)
_MODULES = {"torch": ("torch",), "optax": ("jax", "optax"), "keras": ("keras",)}


@dataclasses.dataclass
class Result:
    """One case: the framework's optimizer vs adamlab's, after ``steps`` steps."""

    case: Case
    difference: dict[str, float]  # max relative difference on the quadratic's and the MLP's parameters
    dtype: str
    tolerance: float
    seconds: float

    @property
    def max_difference(self) -> float:
        return max(self.difference.values())

    @property
    def passed(self) -> bool:
        return self.max_difference <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        plain = (int, float, bool, tuple)
        options = {k: (v if isinstance(v, plain) else repr(v)) for k, v in self.case.options.items()}
        return {
            "optimizer": self.case.optimizer,
            "framework": self.case.framework,
            "variant": self.case.variant,
            "reference": self.case.reference,
            "options": options,
            "dtype": self.dtype,
            "tolerance": self.tolerance,
            "max_relative_difference": {k: _finite(v) for k, v in self.difference.items()},
            "passed": self.passed,
        }


@dataclasses.dataclass
class Report:
    steps: int
    seed: int
    results: list[Result]
    skipped: dict[str, str]  # framework -> the extra to install

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "seed": self.seed,
            "passed": self.passed,
            "results": [r.as_dict() for r in self.results],
            "missing": {f"{fw}/{opt}": why for (fw, opt), why in MISSING.items()},
            "lacks": LACKS,
            "skipped": {fw: f"not installed: pip install '{extra}'" for fw, extra in self.skipped.items()},
        }


def installed(framework: str) -> bool:
    """Whether ``framework``'s packages can be imported."""
    return all(importlib.util.find_spec(module) is not None for module in _MODULES[framework])


def run_case(case: Case, problem: Problem) -> Result:
    """Run ``case`` with the framework's optimizer and with adamlab's, and compare the final parameters."""
    start = time.perf_counter()
    runner = RUNNERS[case.framework]
    reference = runner(case, problem, ours=False)
    ours = runner(case, problem, ours=True)
    dtype = DTYPES[case.framework]
    difference = relative_difference(ours, reference)
    return Result(case, difference, dtype, TOLERANCE[dtype], time.perf_counter() - start)


def run_conformance(
    steps: int = 300, seed: int = 0, frameworks: tuple[str, ...] = FRAMEWORKS, optimizers: tuple[str, ...] = OPTIMIZERS
) -> Report:
    """Run every case of the installed ``frameworks``; the others are reported as skipped with their extra.

    ``steps`` is 1 to :data:`MAX_STEPS`, ``seed`` an integer >= 0; ``frameworks`` and ``optimizers`` are
    non-empty.
    """
    if not frameworks:
        raise ValueError(f"frameworks: give at least one of {', '.join(FRAMEWORKS)}")
    if not optimizers:
        raise ValueError(f"optimizers: give at least one of {', '.join(OPTIMIZERS)}")
    for name in frameworks:
        if name not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}; got {name!r}")
    for name in optimizers:
        if name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS:,}; got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    problem = Problem(seed, steps)
    results, skipped = [], {}
    for framework in frameworks:
        if not installed(framework):
            skipped[framework] = EXTRAS[framework]
            continue
        results += [run_case(c, problem) for c in cases(framework, seed) if c.optimizer in optimizers]
    return Report(steps, seed, results, skipped)


def format_table(report: Report) -> str:
    """The optimizer × framework table: worst relative difference over the variants, and pass/fail."""
    ran = {r.case.framework for r in report.results}
    frameworks = [fw for fw in FRAMEWORKS if fw in ran]
    head = (f"{'optimizer':<10}" + "".join(f"{f'{fw} ({DTYPES[fw]})':<24}" for fw in frameworks)).rstrip()
    lines = [
        f"adamlab conformance: {report.steps} steps, seed {report.seed}; max relative difference of the final "
        "parameters, adamlab vs the framework's own optimizer (random quadratic + MLP; n = variants run)",
        "",
        head,
        "-" * len(head),
    ]
    for optimizer in OPTIMIZERS:
        row = [f"{optimizer:<10}"]
        for fw in frameworks:
            mine = [r for r in report.results if r.case.framework == fw and r.case.optimizer == optimizer]
            if (fw, optimizer) in MISSING:
                cell = "— (none in framework)"
            elif not mine:
                cell = "(not run)"
            else:
                worst = max(r.max_difference for r in mine)
                cell = f"{worst:.1e} {'pass' if all(r.passed for r in mine) else 'FAIL'} (n={len(mine)})"
            row.append(f"{cell:<24}")
        if any("(not run)" not in c for c in row[1:]):
            lines.append("".join(row).rstrip())
    lines += ["", "tolerance: " + ", ".join(f"{v:g} ({k})" for k, v in TOLERANCE.items())]
    lines += [f"missing: {fw}/{opt}: {why}" for (fw, opt), why in MISSING.items() if fw in frameworks]
    lines += [f"{fw} has no option: {what}" for fw, what in LACKS.items() if fw in frameworks]
    lines += [f"skipped: {fw} (not installed: pip install '{extra}')" for fw, extra in report.skipped.items()]
    lines.append("result: " + ("all pass" if report.passed else "FAILURES (run with --json for the details)"))
    return "\n".join(lines)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


__all__ = ["Case", "Report", "Result", "format_table", "installed", "run_case", "run_conformance"]
