"""``adamlab conformance [--json]``: adamlab against the real torch.optim, optax and Keras 3 optimizers, bit for bit."""

from __future__ import annotations

import argparse
import json

from adamlab.cli.arguments import integer
from adamlab.cli.progress import progress
from adamlab.conformance import DEFAULT_STEPS, MAX_STEPS, format_table, installed, run_conformance
from adamlab.conformance.cases import DTYPES, FRAMEWORKS, OPTIMIZERS, PAIRS, cases

ORDER = 60


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "conformance",
        help="run adamlab side by side with torch.optim, optax and Keras 3 and say which runs are bit-identical",
        description="For every optimizer x framework pair the installed frameworks have, run the framework's own "
        "optimizer and adamlab's face for it (its default preset, the same arguments, random hyperparameters) "
        "on a chaotic problem in float32 and float64, along each code path: torch.optim's default for-loop "
        "against adamlab.torch's plain and fast paths (and torch's own foreach path, for reference), optax "
        "under jax.jit, Keras on its torch and jax backends (the other backend in a fresh process). Print, per "
        "pair, 'identical' or the largest distance of the final parameters in ulps. Frameworks that are not "
        "installed are listed as skipped with the extra to install. Exit code 1 unless every adamlab run is "
        "identical to its framework's.",
    )
    parser.add_argument(
        "--steps",
        type=integer("--steps", 1, MAX_STEPS),
        default=DEFAULT_STEPS,
        help=f"steps per run, 1 to {MAX_STEPS:,} (default {DEFAULT_STEPS})",
    )
    parser.add_argument(
        "--seed",
        type=integer("--seed", 0),
        default=0,
        help="seed of the problem and the hyperparameters, an integer >= 0 (default 0)",
    )
    parser.add_argument(
        "--frameworks",
        default=",".join(FRAMEWORKS),
        metavar="A,B",
        help=f"comma-separated, from {', '.join(FRAMEWORKS)} (default all)",
    )
    parser.add_argument(
        "--optimizers",
        default=",".join(OPTIMIZERS),
        metavar="A,B",
        help=f"comma-separated, from {', '.join(OPTIMIZERS)} (default all)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    frameworks = tuple(name.strip().lower() for name in args.frameworks.split(",") if name.strip())
    optimizers = tuple(name.strip().lower() for name in args.optimizers.split(",") if name.strip())
    if not frameworks:
        raise ValueError(f"--frameworks: give at least one of {', '.join(FRAMEWORKS)}; got {args.frameworks!r}")
    if not optimizers:
        raise ValueError(f"--optimizers: give at least one of {', '.join(OPTIMIZERS)}; got {args.optimizers!r}")
    units = _units(frameworks, optimizers)
    with progress(units, "conformance") as bar:
        report = run_conformance(args.steps, args.seed, frameworks, optimizers, on_progress=lambda _: bar.update(1))
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_table(report))
    return 0 if report.passed else 1


def _units(frameworks: tuple[str, ...], optimizers: tuple[str, ...]) -> int:
    """How many runs the report will make (for the progress bar); unknown names count 0 (run_conformance says why)."""
    total = 0
    for framework in frameworks:
        if framework not in FRAMEWORKS or not installed(framework):
            continue
        chosen = sum(c.optimizer in optimizers for c in cases(framework))
        total += chosen * len(DTYPES) * sum(p.framework == framework for p in PAIRS)
    return total
