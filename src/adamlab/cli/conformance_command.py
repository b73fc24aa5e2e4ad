"""``adamlab conformance [--json]``: adamlab against the real torch.optim, optax and Keras 3 optimizers."""

from __future__ import annotations

import argparse
import json

from adamlab.cli.arguments import integer
from adamlab.conformance import MAX_STEPS, format_table, run_conformance
from adamlab.conformance.cases import FRAMEWORKS, OPTIMIZERS

ORDER = 60


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "conformance",
        help="run adamlab side by side with torch.optim, optax and Keras 3 and print the differences",
        description="For every optimizer x framework pair the installed frameworks have, run the framework's own "
        "optimizer and adamlab's face for it (its default preset, the same arguments, random hyperparameters) "
        "on a noisy random quadratic and a small MLP, and print the maximum relative difference of the final "
        "parameters with pass/fail (tolerance 1e-12 in float64, 1e-5 in float32). Frameworks that are not "
        "installed are listed as skipped with the extra to install. Exit code 1 if any pair fails.",
    )
    parser.add_argument(
        "--steps",
        type=integer("--steps", 1, MAX_STEPS),
        default=300,
        help=f"steps per run, 1 to {MAX_STEPS:,} (default 300)",
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
    report = run_conformance(steps=args.steps, seed=args.seed, frameworks=frameworks, optimizers=optimizers)
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_table(report))
    return 0 if report.passed else 1
