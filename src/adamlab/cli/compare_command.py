"""``adamlab compare PROBLEM --optimizers adam,sgd,...``: a fair comparison, with pictures and results.json."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from adamlab.cli.arguments import add_executor_arguments, executor_from, integer
from adamlab.cli.progress import progress
from adamlab.lab.compare import DEEPOBS_GRID, MAX_EPOCHS, MAX_GRID, MAX_SEEDS, MAX_STEPS, OBJECTIVES, TUNING, compare
from adamlab.lab.comparison_plots import write_comparison
from adamlab.lab.problems import PROBLEM_NAMES, get_problem
from adamlab.rules import OPTIMIZER_NAMES, PRESETS

ORDER = 40
DEFAULT_OPTIMIZERS = "adam,nesterov,adagrad,rmsprop,sgd"
FORMATS = ("png", "svg", "pdf")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare optimizers fairly on a test function or a learning problem; write pictures and results.json",
        description="Tune each optimizer's learning rate on a log grid (DeepOBS's 36 values from 1e-5 to 1e2 by "
        "default) by the stated objective, re-run the best setting over seeds, and write the pictures "
        "(paths, GIF, interactive HTML, loss curves, sensitivity) and results.json into --out.",
    )
    parser.add_argument("problem", metavar="PROBLEM", help=f"one of {', '.join(PROBLEM_NAMES)}")
    parser.add_argument(
        "--optimizers",
        default=DEFAULT_OPTIMIZERS,
        metavar="A,B,...",
        help=f"comma-separated, from {', '.join(OPTIMIZER_NAMES)} (default {DEFAULT_OPTIMIZERS})",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps",
        type=integer("--steps", 1, MAX_STEPS),
        help=f"steps per run, 1 to {MAX_STEPS:,} (default 500 for test functions)",
    )
    budget.add_argument(
        "--epochs",
        type=integer("--epochs", 1, MAX_EPOCHS),
        help=f"epochs per run, 1 to {MAX_EPOCHS:,}, learning problems only (digits default: 45)",
    )
    parser.add_argument("--tune", default="grid", metavar="MODE", help=f"one of {', '.join(TUNING)} (default grid)")
    parser.add_argument(
        "--objective",
        default="final",
        metavar="OBJ",
        help="tuning objective: final (final training loss, default) or mean (mean loss over the run)",
    )
    parser.add_argument(
        "--grid",
        metavar="LO,HI,N",
        help=f"log grid of N learning rates, 0 < LO <= HI finite, N from 1 to {MAX_GRID} "
        f"(default {DEEPOBS_GRID[0]:g},{DEEPOBS_GRID[-1]:g},36)",
    )
    parser.add_argument("--lr", type=float, help="with --tune none: the learning rate of every optimizer")
    parser.add_argument(
        "--seeds",
        type=integer("--seeds", 1, MAX_SEEDS),
        help=f"seeds for the best setting, 1 to {MAX_SEEDS:,} (default 5; 1 for noise-free functions)",
    )
    parser.add_argument("--noise", type=float, default=0.0, help="σ of Gaussian noise added to every gradient")
    parser.add_argument("--preset", default="paper", metavar="NAME", help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--out", metavar="DIR", help="output folder (default compare_PROBLEM)")
    parser.add_argument("--format", default="png", metavar="EXT", help="picture format: png, svg or pdf")
    parser.add_argument("--no-animation", action="store_true", help="skip the GIF and the HTML page")
    parser.add_argument("--json", action="store_true", help="print results.json on stdout instead of the table")
    parser.add_argument("--fresh", action="store_true", help="compute every run: neither read nor write DIR/runs")
    add_executor_arguments(parser, "this process for test functions, one local process per core for digits")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    _check_choice("--tune", args.tune, TUNING)
    _check_choice("--objective", args.objective, OBJECTIVES)
    _check_choice("--format", args.format, FORMATS)
    problem = get_problem(args.problem)
    if args.noise:
        problem = problem.with_noise(args.noise)
    names = [n.strip().lower() for n in args.optimizers.split(",") if n.strip()]
    if args.lr is not None and args.tune != "none":
        raise ValueError("--lr sets a fixed learning rate: use it with --tune none")
    from adamlab.rules import make_rule

    optimizers = {n: make_rule(n, preset=args.preset, lr=args.lr) for n in names} if names else {}
    if len(set(names)) != len(names):
        raise ValueError(f"--optimizers: a name is given twice in {args.optimizers!r}")
    out = Path(args.out or f"compare_{problem.name}")
    units = len(optimizers) * (2 if args.tune == "grid" else 1) + 1
    with progress(units, f"compare {problem.name}", enabled=None) as bar:
        results = compare(problem, optimizers, args.steps, epochs=args.epochs, tune=args.tune,
                          grid=_grid(args.grid), objective=args.objective, seeds=args.seeds,
                          on_progress=lambda _: bar.update(1), store=None if args.fresh else out / "runs",
                          executor=executor_from(args))  # fmt: skip
        written = write_comparison(results, out, fmt=args.format, animate=not args.no_animation)
        bar.update(1)
    if args.json:
        print(json.dumps(results.to_dict(), allow_nan=False))
        return 0
    print(results.summary())
    for note in results.notes:
        print(f"note: {note}")
    runs = results.runs
    print(f"\nruns: {runs['computed']} computed, {runs['reused']} reused from {out / 'runs'}")
    print(f"written to {out}/: " + ", ".join(p.name for p in written.values()), file=sys.stdout)
    return 0


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(choices)}; got {value!r}")


def _grid(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        lo, hi, n = text.split(",")
        lo_f, hi_f, count = float(lo), float(hi), int(n)
    except ValueError:
        raise ValueError(f"--grid must be LO,HI,N (e.g. 1e-4,1,13); got {text!r}") from None
    if not (0 < lo_f <= hi_f < math.inf) or not 1 <= count <= MAX_GRID:
        raise ValueError(f"--grid needs finite 0 < LO <= HI and N from 1 to {MAX_GRID}; got {text!r}")
    import numpy as np

    return list(np.geomspace(lo_f, hi_f, count))
