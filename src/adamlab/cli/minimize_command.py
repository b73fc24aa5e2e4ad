"""``adamlab minimize EXPR --x0 V[,V] ...``: minimize a typed-in expression of x (or x and y)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import adamlab
from adamlab.cli.arguments import integer, number
from adamlab.cli.expression import Expression
from adamlab.cli.progress import progress
from adamlab.lab.functions import FUNCTIONS
from adamlab.lab.results import finite_or_none
from adamlab.rules import OPTIMIZER_NAMES, PRESETS, make_rule

ORDER = 20
#: the history keeps every step (x, f, gradient, state): a million steps of a 2-D problem peak near
#: 0.9 GB while running (100,000 steps measured 87 MB) and take minutes
MAX_STEPS = 1_000_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "minimize",
        help="minimize an expression of x (or x and y), or a test function by name, and print the result",
        description="Minimize EXPR, written with numbers, x, y, + - * / **, parentheses, pi, e and "
        "sin cos tan exp log sqrt abs tanh sinh cosh, or a registered test function by name (adamlab functions: "
        "rosenbrock, beale, ...; it starts at its standard start point unless --x0 is given). Negative starts: "
        "--x0 -1.2,1 or --x0=-1.2,1.",
    )
    parser.add_argument(
        "expr", metavar="EXPR", help="e.g. 'x**3 - 2*x**2 + 2', '(1-x)**2 + 100*(y-x**2)**2' or rosenbrock"
    )
    parser.add_argument(
        "--x0", metavar="V[,V]", help="start point: one value, or two for x,y (default for a test function: its start)"
    )
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
    if args.plot is not None:
        if not args.plot.strip():
            raise ValueError("--plot needs a file name such as path.png; got ''")
        from adamlab.lab.plots import check_output_path

        if Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
            raise ValueError(f"--plot: unsupported file extension '{Path(args.plot).suffix}'; use .png, .svg or .pdf")
        check_output_path(args.plot)  # before the run: a missing folder is one line, and nothing is created
    function = FUNCTIONS.get(args.expr.strip().lower())
    expr = function if function is not None else Expression(args.expr)
    dimension = function.dim if function is not None else expr.dimension
    if args.x0 is None and function is None:
        raise ValueError("--x0 is required for an expression (a registered test function starts at its own start)")
    x0 = list(function.start) if args.x0 is None else _floats("--x0", args.x0)
    if len(x0) != dimension:
        names = " and ".join(("x", "y")[:dimension])
        what = f"{function.name} is {dimension}-D" if function is not None else f"the expression uses {names}"
        raise ValueError(f"--x0 has {len(x0)} value(s); {what}, so give {dimension}")
    betas = None if args.betas is None else tuple(_floats("--betas", args.betas))
    rule = make_rule(args.optimizer, preset=args.preset, lr=args.lr, betas=betas, eps=args.eps)
    bar = progress(args.steps, f"minimize ({args.optimizer})", enabled=None if args.steps >= 20_000 else False)
    with bar:
        res = adamlab.minimize(
            expr,
            x0[0] if dimension == 1 else x0,
            rule,
            args.steps,
            dtype=args.dtype,
            callback=lambda *_: bar.update(1) and None,
        )
    options = {}
    if function is not None:  # a registered function: its box and known minima on the plot
        minima = [m[0] for m in function.minima] if dimension == 1 else list(function.minima)
        options = {"domain": function.domain[0] if dimension == 1 else function.domain, "minima": minima}
    plot = res.plot(args.plot, **options) if args.plot is not None else None
    if args.json:
        print(json.dumps(finite_or_none(res.to_dict()), allow_nan=False))
    else:
        x = res.x if dimension == 1 else ", ".join(f"{v:.8g}" for v in res.x)
        print(f"x = {x:.8g}" if dimension == 1 else f"x, y = {x}")
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
