"""``adamlab functions``: list the lab's test functions (and learning problems) with their known minima."""

from __future__ import annotations

import argparse
import json
from typing import Any

from adamlab.lab.functions import TestFunction, list_functions
from adamlab.lab.problems import learning_problems

ORDER = 30


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "functions",
        help="list the test functions (and learning problems) that minimize and compare accept",
        description="List the registry of test functions: formula, plot box, standard start point and known "
        "minima. Each name works as `adamlab compare NAME`.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    functions = list_functions()
    problems = {name: cls() for name, cls in learning_problems().items()}
    if args.json:
        out = {
            "functions": [_as_dict(f) for f in functions],
            "learning_problems": [
                {"name": name, "title": p.title, "description": p.describe()} for name, p in problems.items()
            ],
        }
        print(json.dumps(out))
        return 0
    print(f"{'name':<17} {'dim':>3}  {'f*':>9}  {'minimum':<24} {'start':<14} formula")
    for f in functions:
        value = "none" if f.min_value is None else f"{f.min_value:.6g}"
        minima = "; ".join("(" + ", ".join(f"{c:.4g}" for c in m) + ")" for m in f.minima[:1]) or "-"
        if len(f.minima) > 1:
            minima += f" +{len(f.minima) - 1}"
        start = "(" + ", ".join(f"{c:g}" for c in f.start) + ")"
        print(f"{f.name:<17} {f.dim:>3}  {value:>9}  {minima:<24} {start:<14} {f.formula}")
        if f.note:
            print(f"{'':<17}      {f.note}")
    print("\nlearning problems (adamlab compare NAME --epochs N):")
    for name, p in problems.items():
        print(f"{name:<17} {p.describe()}")
    return 0


def _as_dict(f: TestFunction) -> dict[str, Any]:
    return {
        "name": f.name,
        "title": f.title,
        "formula": f.formula,
        "dim": f.dim,
        "domain": [list(d) for d in f.domain],
        "start": list(f.start),
        "minima": [list(m) for m in f.minima],
        "min_value": f.min_value,
        "bounded_below": f.bounded_below,
        "note": f.note,
    }
