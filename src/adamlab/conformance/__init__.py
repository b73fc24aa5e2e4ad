"""Conformance: adamlab's faces against the real torch.optim, optax and Keras 3 optimizers, bit for bit.

Every optimizer × framework pair the framework has (:mod:`.cases`, random hyperparameters over a few variants
per pair) runs for N steps on a chaotic problem (:mod:`.problems`) in float32 and float64, along each code
path of :data:`~.cases.PAIRS`: torch.optim's default CPU path (the for-loop) against adamlab.torch's plain and
fast paths, optax under ``jax.jit``, Keras on its torch and its jax backend. Each result is the largest
distance in ulps between the two trajectories (the parameters after every step): 0 is *identical*. A pair
passes only when every run is identical; there is no tolerance. Reference pairs (torch.optim's own foreach
path against its for-loop) show how far a framework is from itself and are never required to be identical.

    >>> from adamlab.conformance import run_conformance, format_table
    >>> report = run_conformance(steps=1000)              # doctest: +SKIP
    >>> print(format_table(report))                       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import time
from collections.abc import Callable
from typing import Any

from adamlab.conformance import runners
from adamlab.conformance.cases import (
    DTYPES,
    EXTRAS,
    FRAMEWORKS,
    LACKS,
    MISSING,
    OPTIMIZERS,
    PAIRS,
    Case,
    Pair,
    cases,
)
from adamlab.conformance.problems import Problem, relative_difference, ulp_distance

MAX_STEPS = 1_000_000  #: most steps per run
DEFAULT_STEPS = 1000
_MODULES = {"torch": ("torch",), "optax": ("jax", "optax"), "keras": ("keras",)}


@dataclasses.dataclass
class Result:
    """One case along one pair in one dtype: the largest ulp distance over the trajectories, the relative difference."""

    case: Case
    pair: Pair
    dtype: str
    ulps: float  # inf when a run produced NaN, or failed
    relative: float
    seconds: float
    error: str | None = None

    @property
    def identical(self) -> bool:
        return self.error is None and self.ulps == 0

    @property
    def passed(self) -> bool:
        return self.identical or (self.pair.reference and self.error is None)

    def as_dict(self) -> dict[str, Any]:
        plain = (int, float, bool, tuple)
        options = {k: (v if isinstance(v, plain) else repr(v)) for k, v in self.case.options.items()}
        return {
            "optimizer": self.case.optimizer,
            "framework": self.case.framework,
            "pair": self.pair.key,
            "label": self.pair.label,
            "reference_pair": self.pair.reference,
            "variant": self.case.variant,
            "framework_optimizer": self.case.reference,
            "options": options,
            "dtype": self.dtype,
            "max_ulp_distance": _finite(self.ulps),
            "max_relative_difference": _finite(self.relative),
            "identical": self.identical,
            "passed": self.passed,
            "error": self.error,
        }


@dataclasses.dataclass
class Report:
    steps: int
    seed: int
    results: list[Result]
    skipped: dict[str, str]  # framework or pair key -> why (e.g. the extra to install)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "seed": self.seed,
            "problem": "0.5·xᵀQx + 0.1·Σ sin 3x, Q = AAᵀ/64, x ∈ R^64 in tensors (40,) and (4, 6)",
            "versions": self.versions,
            "passed": self.passed,
            "results": [r.as_dict() for r in self.results],
            "missing": {f"{fw}/{opt}": why for (fw, opt), why in MISSING.items()},
            "lacks": LACKS,
            "skipped": self.skipped,
        }


def installed(framework: str) -> bool:
    """Whether ``framework``'s packages can be imported."""
    return all(importlib.util.find_spec(module) is not None for module in _MODULES[framework])


def run_case(case: Case, problem: Problem, dtype: str, pair: Pair) -> Result:
    """Run ``case`` in this process along ``pair`` (not a Keras backend other than this process's) and compare."""
    start = time.perf_counter()
    if case.framework == "torch":
        reference = runners.run_torch(case, problem, dtype, "torch")
        ours = runners.run_torch(case, problem, dtype, pair.path)
    elif case.framework == "optax":
        reference, ours = (runners.run_optax(case, problem, dtype, ours=flag) for flag in (False, True))
    else:
        reference, ours = (runners.run_keras(case, problem, dtype, ours=flag) for flag in (False, True))
    return _compare(case, pair, dtype, ours, reference, time.perf_counter() - start)


def _compare(case: Case, pair: Pair, dtype: str, ours: Any, reference: Any, seconds: float) -> Result:
    return Result(case, pair, dtype, ulp_distance(ours, reference), relative_difference(ours, reference), seconds)


def run_conformance(
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    frameworks: tuple[str, ...] = FRAMEWORKS,
    optimizers: tuple[str, ...] = OPTIMIZERS,
    on_progress: Callable[[str], None] | None = None,
) -> Report:
    """Run every case of the installed ``frameworks`` along each of their pairs, in float32 and float64.

    Frameworks (and Keras backends) that are not installed are reported as skipped with what to install.
    ``steps`` is 1 to :data:`MAX_STEPS`, ``seed`` an integer >= 0; ``frameworks`` and ``optimizers`` are
    non-empty. ``on_progress`` is called with a label after each run.
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
    tick = on_progress or (lambda _: None)
    results: list[Result] = []
    skipped: dict[str, str] = {}
    for framework in frameworks:
        if not installed(framework):
            skipped[framework] = f"not installed: pip install '{EXTRAS[framework]}'"
            continue
        chosen = [(i, c) for i, c in enumerate(cases(framework, seed)) if c.optimizer in optimizers]
        for pair in (p for p in PAIRS if p.framework == framework):
            if framework == "keras" and pair.path != runners.keras_backend():
                results += _keras_elsewhere(pair, chosen, problem, seed, optimizers, skipped, tick)
                continue
            for _, case in chosen:
                for dtype in DTYPES:
                    results.append(run_case(case, problem, dtype, pair))
                    tick(f"{pair.key} {case.optimizer}")
    return Report(steps, seed, results, skipped, versions(frameworks))


def _keras_elsewhere(
    pair: Pair, chosen: list[tuple[int, Case]], problem: Problem, seed: int, optimizers: tuple[str, ...],
    skipped: dict[str, str], tick: Callable[[str], None],
) -> list[Result]:  # fmt: skip
    """The Keras cases on a backend other than this process's, run in a fresh process."""
    if not runners.backend_installed(pair.path):
        skipped[pair.key] = f"Keras's {pair.path} backend needs {runners.KERAS_BACKENDS[pair.path]}: not installed"
        return []
    start = time.perf_counter()
    runs = runners.keras_in_subprocess(pair.path, seed, problem.steps, optimizers)
    seconds = (time.perf_counter() - start) / max(1, 2 * len(chosen))
    out = []
    for index, case in chosen:
        for dtype in DTYPES:
            if "error" in runs:
                out.append(Result(case, pair, dtype, math.inf, math.inf, seconds, error=str(runs["error"])))
            else:
                ours, reference = runs[f"{index}:{dtype}:ours"], runs[f"{index}:{dtype}:keras"]
                out.append(_compare(case, pair, dtype, ours, reference, seconds))
            tick(f"{pair.key} {case.optimizer}")
    return out


def versions(frameworks: tuple[str, ...]) -> dict[str, str]:
    """The versions the report was measured with (and torch's CPU dispatch level, which changes its rounding)."""
    out: dict[str, str] = {}
    if "torch" in frameworks and installed("torch"):
        import torch

        out["torch"] = torch.__version__
        out["torch CPU capability"] = torch.backends.cpu.get_cpu_capability()
    if "optax" in frameworks and installed("optax"):
        import jax
        import optax

        out["optax"], out["jax"] = optax.__version__, jax.__version__
    if "keras" in frameworks and installed("keras"):
        keras, _ = runners._keras()
        out["keras"] = keras.__version__
    return out


def _cell(results: list[Result]) -> str:
    if not results:
        return "(not run)"
    if any(r.error for r in results):
        return "error (see --json)"
    n = len(results)
    if all(r.identical for r in results):
        return f"identical (n={n})"
    same = sum(r.identical for r in results)
    worst = max(r.ulps for r in results)
    ulps = "NaN" if math.isinf(worst) else f"{int(worst)} ulp" if worst < 1e6 else f"{worst:.1e} ulp"
    return f"differs {n - same}/{n}: {ulps}, rel {max(r.relative for r in results):.1e}"


def format_table(report: Report) -> str:
    """One line per optimizer × pair: identical, or the largest ulp distance (and relative difference)."""
    ran = {r.pair.key for r in report.results}
    pairs = [p for p in PAIRS if p.key in ran]
    width = max([len(p.label) for p in pairs] + [4])
    head = f"{'optimizer':<10}{'pair':<{width + 2}}" + "".join(f"{d:<40}" for d in DTYPES)
    lines = [
        f"adamlab conformance: {report.steps} steps of a chaotic problem (½·xᵀQx + 0.1·Σ sin 3x, 64 parameters "
        f"in two tensors), seed {report.seed}",
        "n variants per pair (random hyperparameters); a cell says 'identical' when every variant's iterates are",
        "equal bit for bit at every step, else the largest distance in ulps (units in the last place) and relative",
    ]
    if report.versions:
        lines.append("measured with " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    lines += ["", head.rstrip(), "-" * len(head.rstrip())]
    for optimizer in OPTIMIZERS:
        first = True
        for pair in pairs:
            mine = [r for r in report.results if r.pair.key == pair.key and r.case.optimizer == optimizer]
            if (pair.framework, optimizer) in MISSING or not mine:
                continue
            cells = "".join(f"{_cell([r for r in mine if r.dtype == d]):<40}" for d in DTYPES)
            lines.append(f"{optimizer if first else '':<10}{pair.label:<{width + 2}}{cells}".rstrip())
            first = False
    lines.append("")
    shown = {p.framework for p in pairs}
    lines += [f"missing: {fw}/{opt}: {why}" for (fw, opt), why in MISSING.items() if fw in shown]
    lines += [f"{fw} has no option: {what}" for fw, what in LACKS.items() if fw in shown]
    lines += [f"skipped: {what} ({why})" for what, why in report.skipped.items()]
    failed = [r for r in report.results if not r.passed]
    lines.append(
        "result: every adamlab run identical to its framework's"
        if not failed
        else f"result: {len(failed)} run(s) not identical (run with --json for the details)"
    )
    return "\n".join(lines)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


__all__ = [
    "DEFAULT_STEPS",
    "MAX_STEPS",
    "Case",
    "Pair",
    "Report",
    "Result",
    "format_table",
    "installed",
    "run_case",
    "run_conformance",
    "versions",
]
