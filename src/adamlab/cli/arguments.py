"""argparse ``type=`` helpers whose errors name the option and the accepted range (one line, exit code 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def number(option: str) -> Callable[[str], float]:
    """A float (any float, inf and nan included: the consumer checks the range)."""

    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a number; got {text!r}") from None

    return parse


def integer(option: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be an integer; got {text!r}") from None
        if value < low or (high is not None and value > high):
            accepted = f">= {low:,}" if high is None else f"between {low:,} and {high:,}"
            raise argparse.ArgumentTypeError(f"{option} must be {accepted}; got {value}")
        return value

    return parse


def add_executor_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """``--workers N | --serial | --scheduler ADDRESS``: where the runs execute (see adamlab.lab.executor)."""
    group = parser.add_mutually_exclusive_group()
    workers = integer("--workers", 1, 1024)
    group.add_argument("--workers", type=workers, help=f"local worker processes (default: {default})")
    group.add_argument("--serial", action="store_true", help="run in this process, one run after another")
    group.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler (tcp://HOST:8786) to send runs to")


def executor_from(args: argparse.Namespace) -> object:
    """The ``executor=`` value the options name (None: the command's default)."""
    if args.serial:
        return "serial"
    return args.scheduler or args.workers
