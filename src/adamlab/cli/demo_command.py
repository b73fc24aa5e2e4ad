"""``adamlab demo``: the article's example, x³ − 2x² + 2 minimized by Adam, printed and plotted."""

from __future__ import annotations

import argparse
from pathlib import Path

import adamlab
from adamlab.lab.functions import get_function

DEFAULT_OUT = "adamlab_demo.png"

ORDER = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="minimize x^3 - 2x^2 + 2 with Adam, as in the article, and plot the path",
        description="Minimize f(x) = x³ − 2x² + 2 with Adam (Keras conventions: lr 0.05, ε̂ = 1e-7), "
        "starting at x = 0.001, 100 steps in float32, and plot the function with the path.",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"plot file, .png/.svg/.pdf (default {DEFAULT_OUT})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cubic = get_function("cubic")
    rule = adamlab.Adam(lr=0.05, eps=1e-7, preset="keras")
    res = adamlab.minimize(cubic, x0=0.001, optimizer=rule, steps=100, dtype="float32")
    out = res.plot(
        args.out,
        domain=cubic.domain[0],
        minima=[m[0] for m in cubic.minima],
        title="Adam on f(x) = x³ − 2x² + 2 (lr 0.05, ε̂ 1e-7, keras preset)",
    )
    x_star, f_star = cubic.minima[0][0], cubic.min_value
    print("Adam (keras preset: lr=0.05, eps=1e-7 before bias correction) on f(x) = x^3 - 2x^2 + 2")
    print("start x0 = 0.001, 100 steps, float32")
    print(f"optimized:  x = {res.x:.6f}   f(x) = {res.fun:.6f}   ({res.message})")
    print(f"analytic:   x = 4/3 = {x_star:.6f}   f = 22/27 = {f_star:.6f}   (local minimum)")
    print(f"plot written to {Path(out).resolve()}")
    return 0
