"""Fair comparison of optimizers on one problem: tune each learning rate, re-run the best over seeds.

The protocol follows DeepOBS (Schneider et al. 2019) and the paper's own §6 (dense grid search, best setting
shown, same initialisation for every method):

1. For each optimizer, run every learning rate of a log grid (default: DeepOBS's 36 values from 1e-5 to 1e2)
   on seed 0, all of them as ONE batched computation, and score each run by the stated objective:
   ``"final"`` (the final training loss) or ``"mean"`` (the mean loss over the run). A run whose loss became
   NaN/inf scores +inf (worst); ties are broken by the other objective.
2. Re-run the best learning rate with ``seeds`` seeds (default 5 for learning problems; 1 for a noise-free test
   function, whose runs do not depend on the seed). Seed s gives every optimizer the same initialisation and
   the same data order.
3. Report per optimizer: the tuned hyperparameters, the curves (mean and min–max over seeds), the final loss,
   the steps to a target loss and whether it diverged. One optimizer diverging does not affect the others.

Example::

    >>> from adamlab.lab.compare import compare
    >>> res = compare("rosenbrock", ["adam", "sgd"], steps=200)
    >>> sorted(res.optimizers), res.optimizers["adam"].lr > 0
    (['adam', 'sgd'], True)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adamlab.lab.compare_runs import COMPARE_PROTOCOL, batch_task, runs_from
from adamlab.lab.executor import RunCounts, open_executor, run_tasks
from adamlab.lab.names import rule_label
from adamlab.lab.problems import Problem, Runs, get_problem
from adamlab.lab.results import Comparison, OptimizerResult, unique_labels
from adamlab.lab.store import RunStore
from adamlab.rules import Averaged, Rule, make_rule

__all__ = ["DEEPOBS_GRID", "OBJECTIVES", "TUNING", "compare", "display_name", "tuning_objective"]

#: DeepOBS's learning-rate grid: 36 log-spaced values from 1e-5 to 1e2
DEEPOBS_GRID: np.ndarray = np.logspace(-5, 2, 36)
TUNING: tuple[str, ...] = ("grid", "none")
OBJECTIVES: tuple[str, ...] = ("final", "mean")
#: target = reference + fraction·(initial loss − reference); see :func:`compare`
TARGET_FRACTION = {"function": 1e-3, "learning": 1e-2}
#: upper bounds of the budget: every run keeps its whole loss curve (and its path on a test function), so
#: the runs of one batch hold (grid values × tune seeds, or seeds) × steps numbers
MAX_STEPS = 1_000_000
MAX_EPOCHS = 10_000
MAX_SEEDS = 1000
MAX_GRID = 1000
MAX_RUN_STEPS = 100_000_000  #: runs in one batch × steps per run (36 grid values × 1,000,000 steps fit)

OptimizerSpec = Sequence[str | Rule | Averaged] | Mapping[str, str | Rule | Averaged]


def display_name(key: str, rule: Rule | Averaged) -> str:
    """The name shown in legends: what the rule computes (:func:`adamlab.lab.names.rule_label`)."""
    return rule_label(rule)


def tuning_objective(losses: np.ndarray, objective: str) -> np.ndarray:
    """Score per member from ``losses`` of shape ``(P, K)``: final or mean loss; +inf for a diverged member."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
    with np.errstate(all="ignore"):
        value = losses[-1] if objective == "final" else losses.mean(axis=0)
    diverged = ~np.isfinite(losses).all(axis=0)
    return np.where(diverged | ~np.isfinite(value), np.inf, value)


def compare(
    problem: str | Problem,
    optimizers: OptimizerSpec,
    steps: int | None = None,
    *,
    epochs: int | None = None,
    tune: str = "grid",
    grid: Sequence[float] | np.ndarray | None = None,
    objective: str = "final",
    seeds: int | None = None,
    tune_seeds: int = 1,
    target: float | None = None,
    preset: str = "paper",
    on_progress: Callable[[str], None] | None = None,
    store: str | Path | RunStore | None = None,
    executor: Any = None,
) -> Comparison:
    """Compare ``optimizers`` on ``problem`` fairly (protocol in the module docstring).

    Args:
        problem: a :class:`~adamlab.lab.problems.Problem` or a name (``"rosenbrock"``, ``"digits"``, ...).
        optimizers: names (``["adam", "nesterov"]``), rules, or a mapping from key to name/rule. A rule's
            other hyperparameters are kept; only its learning rate is tuned.
        steps: steps per run, 1 to 1,000,000 (default: the problem's). ``epochs`` instead, for learning
            problems: 1 to 10,000, and at most 1,000,000 steps in all.
        tune: ``"grid"`` (tune the learning rate on ``grid``) or ``"none"`` (use each rule's own lr).
        grid: 1 to 1000 learning rates to try (default :data:`DEEPOBS_GRID`).
        objective: tuning objective, ``"final"`` (final training loss) or ``"mean"`` (mean loss over the run).
        seeds: runs of the best setting, 1 to 1000 (default: the problem's, 5 for learning problems). One
            batch of runs (grid values × ``tune_seeds``, or ``seeds``) × steps is at most 100,000,000.
        tune_seeds: seeds each learning rate is tuned on, 1 to 1000 (the objective is their mean; a divergence
            on any of them counts as diverged). 1 (DeepOBS) by default; more makes tuning on a noisy problem less lucky.
        target: loss for "steps to target". Default: ref + f·(f0 − ref), with f0 the initial loss, ref the
            known minimum of a test function (f = 1e-3) or else the best final loss of the comparison (f = 1e-2).
        preset: preset used to build rules given by name.
        on_progress: called with a short message after each unit of work (one tuning grid or one re-run
            per optimizer), e.g. to advance a progress bar.
        store: a folder (or :class:`~adamlab.lab.store.RunStore`) that keeps one record per run; a comparison
            run again with the same arguments reuses them (see :mod:`adamlab.lab.compare_runs`). None: keep none.
        executor: where the batches run (see :mod:`adamlab.lab.executor`). None: in this process for test
            functions (a batch takes milliseconds), local processes for learning problems.

    Returns:
        :class:`~adamlab.lab.results.Comparison`.
    """
    started = time.perf_counter()
    problem = get_problem(problem)
    rules = _rules(optimizers, preset)
    steps = _steps(problem, steps, epochs)
    if tune not in TUNING:
        raise ValueError(f"tune must be one of {', '.join(TUNING)}; got {tune!r}")
    tuning_objective(np.zeros((1, 1)), objective)  # validates the name
    lrs = _grid(grid) if tune == "grid" else None
    notes: list[str] = []
    n_seeds = problem.default_seeds if seeds is None else _positive_int("seeds", seeds, MAX_SEEDS)
    n_tune = 1 if problem.deterministic else _positive_int("tune_seeds", tune_seeds, MAX_SEEDS)
    _check_budget(steps, (0 if lrs is None else lrs.size) * n_tune, n_seeds)
    _check_target(target)
    if problem.deterministic and n_seeds > 1:
        notes.append(f"{problem.title} has no randomness (no gradient noise): every seed gives the same run, "
                     "so one run per optimizer is shown.")  # fmt: skip
        n_seeds = 1
    if problem.kind == "function" and not problem.function.bounded_below and tune == "grid":
        notes.append(f"{problem.title} is unbounded below: tuning on the loss rewards running off to −∞ rather than "
                     "finding a minimum; use tune='none' (a given lr) to study its local minimum.")  # fmt: skip
    counts = RunCounts()
    results = _run_all(problem, rules, steps, lrs, objective, (n_tune, n_seeds), notes, on_progress, store, executor,
                       counts)  # fmt: skip
    for key, label in unique_labels(results).items():  # results.json and the pictures name each one apart
        results[key].label = label
    value, rule_text = _target(problem, results, target)
    for r in results.values():
        r.target = value
    return Comparison(
        problem=problem,
        optimizers=results,
        steps=steps,
        seeds=n_seeds,
        tune_seeds=n_tune,
        tune=tune,
        objective=objective,
        grid=lrs,
        target=value,
        target_rule=rule_text,
        notes=notes,
        elapsed_s=time.perf_counter() - started,
        runs=counts.to_dict(),
    )


def _run_all(
    problem: Problem,
    rules: dict[str, Rule | Averaged],
    steps: int,
    grid: np.ndarray | None,
    objective: str,
    seeds: tuple[int, int],
    notes: list[str],
    on_progress: Callable[[str], None] | None,
    store: str | Path | RunStore | None,
    executor: Any,
    counts: RunCounts,
) -> dict[str, OptimizerResult]:
    """Tune every optimizer (one batch of grid × tune seeds each), then re-run each best setting over the seeds.

    Every batch is a task of the executor and every member of a batch a record of the store (its
    configuration names the batch it ran in, so a record is only reused for the same computation).
    """
    n_tune, n_seeds = seeds
    if isinstance(store, (str, Path)):
        store = RunStore(store)
    if executor is None:  # learning problems pay for process start-up; a test function's batch takes milliseconds
        executor = "serial" if problem.kind == "function" else None
    base = {"kind": "compare", "protocol": COMPARE_PROTOCOL, "adamlab": _version(), "problem": problem.identity(),
            "steps": steps}  # fmt: skip
    keys = list(rules)
    lr_of: dict[str, float] = {}
    scores: dict[str, np.ndarray | None] = dict.fromkeys(keys)
    tuned: dict[str, Runs] = {}
    with open_executor(executor) as pool:
        ex = "serial" if pool is None else pool
        if grid is not None:  # member (i, s) = (grid[i], seed s), one batch per optimizer
            tasks = [batch_task(problem, rules[k], np.repeat(grid, n_tune), np.tile(np.arange(n_tune), grid.size),
                                steps, base) for k in keys]  # fmt: skip
            done = _progress(on_progress, keys, "tuned")
            out, n = run_tasks(tasks, store, ex, progress=False, on_done=done)
            counts += n
            for key, members in zip(keys, out, strict=True):
                tuned[key] = runs_from(members)
                lr_of[key], scores[key] = _tune(key, rules[key], tuned[key], grid, objective, n_tune, steps, notes)
        else:
            lr_of = {k: _rule_lr(k, rules[k]) for k in keys}
        reuse = grid is not None and problem.deterministic and n_seeds == 1 and n_tune == 1
        rerun = [] if reuse else keys
        tasks = [batch_task(problem, rules[k], np.full(n_seeds, lr_of[k]), np.arange(n_seeds), steps, base)
                 for k in rerun]  # fmt: skip
        out, n = run_tasks(tasks, store, ex, progress=False, on_done=_progress(on_progress, rerun, "re-run"))
        counts += n
    final: dict[str, Runs] = {k: runs_from(members) for k, members in zip(rerun, out, strict=True)}
    results = {}
    for key, rule in rules.items():
        if reuse:  # the tuning run of the best lr IS the seed-0 run
            final[key] = tuned[key].select([int(np.flatnonzero(grid == lr_of[key])[0])])
            if on_progress:
                on_progress(f"{key}: re-run")
        results[key] = _result(key, rule, lr_of[key], final[key], grid, scores[key])
    return results


def _progress(on_progress: Callable[[str], None] | None, keys: list[str], what: str) -> Callable[[int], None] | None:
    return None if on_progress is None else (lambda i: on_progress(f"{keys[i]}: {what}"))


def _tune(key: str, rule: Rule | Averaged, tuned: Runs, grid: np.ndarray, objective: str, n_tune: int, steps: int,
          notes: list[str]) -> tuple[float, np.ndarray]:  # fmt: skip
    """The best learning rate of a tuning batch by ``objective`` (notes when it diverged or sits at an edge)."""
    name = display_name(key, rule)
    other = "mean" if objective == "final" else "final"
    scores, secondary = (tuning_objective(tuned.losses, o).reshape(grid.size, n_tune).mean(axis=1)
                         for o in (objective, other))  # fmt: skip
    lasted = np.array([steps + 1 if d is None else d for d in tuned.diverged_at]).reshape(grid.size, n_tune)
    best = _best(scores, secondary, lasted.min(axis=1))
    lr = float(grid[best])
    if np.isinf(scores).all():
        notes.append(f"{name}: every learning rate of the grid diverged; the one that lasted longest is shown.")
    elif best in (0, grid.size - 1) and grid.size > 2:
        notes.append(f"{name}: the best learning rate ({lr:.3g}) is at the edge of the grid; widen the grid.")
    return lr, scores


def _result(key: str, rule: Rule | Averaged, lr: float, runs: Runs, grid: np.ndarray | None,
            scores: np.ndarray | None) -> OptimizerResult:  # fmt: skip
    inner = rule.base
    final_rule = dataclasses.replace(inner, lr=lr)
    if isinstance(rule, Averaged):
        final_rule = dataclasses.replace(rule, rule=final_rule)
    return OptimizerResult(
        name=key,
        label=f"{display_name(key, rule)} (lr={lr:.3g})",
        rule=final_rule,
        lr=lr,
        losses=runs.losses.T.copy(),
        points=runs.points,
        diverged_at=runs.diverged_at,
        grid=grid,
        grid_objective=scores,
        path=None if runs.paths is None else runs.paths[..., 0],
    )


def _best(primary: np.ndarray, secondary: np.ndarray, lasted: np.ndarray) -> int:
    """Index of the best score; if every run diverged, the one that diverged last (then the smallest lr)."""
    if np.isfinite(primary).any():
        return int(np.lexsort((secondary, primary))[0])
    return int(np.argmax(lasted))


def _target(problem: Problem, results: dict[str, OptimizerResult], target: float | None) -> tuple[float | None, str]:
    if target is not None:
        return float(target), f"loss <= {target:g} (given)"
    first = next(iter(results.values())).losses[:, 0]
    f0 = float(np.nanmean(first)) if np.isfinite(first).any() else np.nan
    fraction = TARGET_FRACTION[problem.kind]
    if problem.min_value is not None:
        ref, what = float(problem.min_value), "the known minimum"
    else:
        finals = [r.final_loss for r in results.values() if np.isfinite(r.final_loss)]
        if not finals or not np.isfinite(f0):
            return None, "no target (every run diverged)"
        ref, what = min(finals), "the best final loss of this comparison"
    value = ref + fraction * (f0 - ref)
    text = f"loss <= {value:.6g} = f* + {fraction:g}·(f0 − f*), f0 = {f0:.6g} the initial loss, f* = {ref:.6g} {what}"
    return value, text


def _check_target(target: float | None) -> None:
    ok = isinstance(target, (int, float, np.integer, np.floating)) and not isinstance(target, bool)
    if target is not None and not (ok and np.isfinite(target)):
        raise ValueError(f"target must be a finite number or None; got {target!r}")


def _rules(optimizers: OptimizerSpec, preset: str) -> dict[str, Rule | Averaged]:
    if isinstance(optimizers, str):
        optimizers = [s.strip() for s in optimizers.split(",") if s.strip()]
    if not isinstance(optimizers, (Mapping, Iterable)):
        raise ValueError(f"optimizers must be a list of names or rules, or a mapping to them; got {optimizers!r}")
    items = list(optimizers.items()) if isinstance(optimizers, Mapping) else [(None, o) for o in optimizers]
    if not items:
        raise ValueError("optimizers: give at least one optimizer")
    out: dict[str, Rule | Averaged] = {}
    for key, spec in items:
        if isinstance(spec, str):
            rule: Rule | Averaged = make_rule(spec, preset=preset)
            key = key or spec.lower()
        elif isinstance(spec, (Rule, Averaged)):
            rule, key = spec, key or spec.name
        else:
            raise ValueError(f"optimizers: expected names or rules; got {spec!r}")
        if key in out:
            raise ValueError(f"optimizers: {key!r} is given twice; use a mapping to give each one its own key")
        out[key] = rule
    return out


def _steps(problem: Problem, steps: int | None, epochs: int | None) -> int:
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if epochs is not None:
        if problem.unit != "epoch":
            raise ValueError(f"epochs apply to learning problems; {problem.name} is a test function: give steps")
        total = _positive_int("epochs", epochs, MAX_EPOCHS) * problem.steps_per_epoch
        if total > MAX_STEPS:
            raise ValueError(f"epochs × {problem.steps_per_epoch} steps per epoch must be at most {MAX_STEPS:,} "
                             f"steps; got {epochs} epochs = {total:,} steps")  # fmt: skip
        return total
    return problem.default_steps if steps is None else _positive_int("steps", steps, MAX_STEPS)


def _check_budget(steps: int, tuning_runs: int, seeds: int) -> None:
    """Refuse a batch of runs whose loss curves alone would not fit in memory."""
    runs = max(tuning_runs, seeds)
    if runs * steps > MAX_RUN_STEPS:
        raise ValueError(f"(grid values × tune_seeds, or seeds) × steps must be at most {MAX_RUN_STEPS:,}; "
                         f"got {runs:,} runs × {steps:,} steps")  # fmt: skip


def _grid(grid: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if grid is None:
        return DEEPOBS_GRID.copy()
    try:
        lrs = np.asarray(grid, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"grid must be a list of finite learning rates > 0; got {grid!r}") from None
    if lrs.size == 0 or not np.all(np.isfinite(lrs) & (lrs > 0)):
        raise ValueError("grid must be a non-empty list of finite learning rates > 0")
    if lrs.size > MAX_GRID:
        raise ValueError(f"grid must have 1 to {MAX_GRID} learning rates; got {lrs.size:,}")
    return np.sort(lrs)


def _rule_lr(key: str, rule: Rule | Averaged) -> float:
    lr = np.asarray(rule.base.lr)
    if lr.ndim != 0:
        raise ValueError(f"{key}: with tune='none' each rule needs one learning rate, not an array")
    return float(lr)


def _version() -> str:
    from adamlab import __version__

    return __version__


def _positive_int(name: str, value: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= high:
        raise ValueError(f"{name} must be an integer from 1 to {high:,}; got {value!r}")
    return int(value)
