"""``adamlab claims``: measure the article's claims (memory, noise robustness, speed) and write a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from adamlab.cli.progress import progress
from adamlab.lab.claims import ClaimsSettings, memory_verdict, run_claims, work_units, write_claims_report

ORDER = 50


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "claims",
        help="measure the article's claims about Adam and write a markdown report with plots",
        description="Measure optimizer state bytes per parameter (from the real state), robustness to gradient "
        "noise (final loss with re-tuned learning rates) and speed (steps to a target) on the paper's "
        "logistic regression (scikit-learn digits) and on test functions; write claims.md, claims.json and "
        "plots into --out.",
    )
    parser.add_argument("--out", default="adamlab_claims", metavar="DIR", help="output folder (default adamlab_claims)")
    parser.add_argument("--quick", action="store_true", help="small budgets (seconds), for a smoke test")
    parser.add_argument("--format", default="png", metavar="EXT", help="picture format: png, svg or pdf")
    parser.add_argument("--json", action="store_true", help="print claims.json on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.format not in ("png", "svg", "pdf"):
        raise ValueError(f"--format must be one of png, svg, pdf; got {args.format!r}")
    settings = ClaimsSettings.quick() if args.quick else ClaimsSettings()
    with progress(work_units(settings), "claims", enabled=None) as bar:
        claims = run_claims(settings, on_progress=lambda _: bar.update(1))
        written = write_claims_report(claims, Path(args.out), fmt=args.format)
    if args.json:
        print(written["json"].read_text().strip())
        return 0
    print(memory_verdict(claims["memory"]))
    for cmp in claims["speed"].values():
        print()
        print(cmp.summary().rsplit("\n\n", 1)[0])  # the table without the disclaimer (it is in the report)
    print(f"\nreport written to {written['report']}")
    return 0
