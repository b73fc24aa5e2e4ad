"""``adamlab minimize EXPR --x0 V[,V] ...``: minimize a typed-in expression of x (or x and y)."""

from __future__ import annotations

import argparse
import json

import adamlab
from adamlab.cli.arguments import integer, number
from adamlab.cli.expression import Expression
from adamlab.cli.progress import progress
from adamlab.lab.results import finite_or_none
from adamlab.rules import OPTIMIZER_NAMES, PRESETS, make_rule

ORDER = 20
#: the history keeps every step (x, f, gradient, state): a million steps of a 2-D problem peak near
#: 0.9 GB while running (100,000 steps measured 87 MB) and take minutes
MAX_STEPS = 1_000_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "minimize",
        help="minimize an expression of x (or x and y) and print the result",
        description="Minimize EXPR, written with numbers, x, y, + - * / **, parentheses, pi, e and "
        "sin cos tan exp log sqrt abs tanh sinh cosh. Negative starts: --x0 -1.2,1 or --x0=-1.2,1.",
    )
    parser.add_argument("expr", metavar="EXPR", help="e.g. 'x**3 - 2*x**2 + 2' or '(1-x)**2 + 100*(y-x**2)**2'")
    parser.add_argument("--x0", required=True, metavar="V[,V]", help="start point: one value, or two for x,y")
    parser.add_argument("--optimizer", default="adam", metavar="NAME", help=f"one of {', '.join(OPTIMIZER_NAMES)}")
    parser.add_argument("--preset", default="paper", metavar="NAME", help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--lr", type=number("--lr"), help="learning rate (default: the optimizer's)")
    parser.add_argument("--betas", metavar="F,F", help="Adam/AdaMax betas, e.g. 0.9,0.999")
    parser.add_argument("--eps", type=number("--eps"), help="epsilon (default: the optimizer's)")
    parser.add_argument(
        "--steps",
        type=integer("--steps", 1, MAX_STEPS),
        default=100,
        help=f"number of steps, 1 to {MAX_STEPS:,} (default 100)",
    )
    parser.add_argument("--dtype", default="float64", metavar="DTYPE", help="float32 or float64 (default float64)")
    parser.add_argument("--plot", metavar="FILE", help="write a plot of the path (.png, .svg or .pdf)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout and nothing else")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.plot is not None and not args.plot.strip():
        raise ValueError("--plot needs a file name such as path.png; got ''")
    expr = Expression(args.expr)
    x0 = _floats("--x0", args.x0)
    if len(x0) != expr.dimension:
        names = " and ".join(("x", "y")[: expr.dimension])
        raise ValueError(f"--x0 has {len(x0)} value(s); the expression uses {names}, so give {expr.dimension}")
    betas = None if args.betas is None else tuple(_floats("--betas", args.betas))
    rule = make_rule(args.optimizer, preset=args.preset, lr=args.lr, betas=betas, eps=args.eps)
    bar = progress(args.steps, f"minimize ({args.optimizer})", enabled=None if args.steps >= 20_000 else False)
    with bar:
        res = adamlab.minimize(
            expr,
            x0[0] if expr.dimension == 1 else x0,
            rule,
            args.steps,
            dtype=args.dtype,
            callback=lambda *_: bar.update(1) and None,
        )
    plot = res.plot(args.plot) if args.plot is not None else None
    if args.json:
        print(json.dumps(finite_or_none(res.to_dict()), allow_nan=False))
    else:
        x = res.x if expr.dimension == 1 else ", ".join(f"{v:.8g}" for v in res.x)
        print(f"x = {x:.8g}" if expr.dimension == 1 else f"x, y = {x}")
        print(f"f = {res.fun:.8g}")
        print(f"steps = {res.nit}, status = {res.status}: {res.message}")
        if plot:
            print(f"plot written to {plot}")
    return 0


def _floats(option: str, text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} must be numbers separated by commas; got {text!r}") from None
