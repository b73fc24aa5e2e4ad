"""The ``adamlab`` command: ``adamlab demo``, ``adamlab minimize EXPR ...`` and the lab's commands.

Errors are one line on stderr and exit code 2, never a traceback. Each command lives in its own module
``adamlab/cli/<name>_command.py`` with ``ORDER`` (position in ``--help``), ``add_parser(subparsers)`` and
``run(args) -> int``; modules with that suffix are found automatically.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

import adamlab.cli


def command_modules() -> list[ModuleType]:
    """The ``*_command`` modules of :mod:`adamlab.cli`, in their ``ORDER``."""
    names = [m.name for m in pkgutil.iter_modules(adamlab.cli.__path__) if m.name.endswith("_command")]
    modules = [importlib.import_module(f"adamlab.cli.{name}") for name in names]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports mistakes as one line (no usage block) by raising :class:`UsageError`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="adamlab", description="The Adam optimizer family, done properly.")
    from adamlab import __version__

    parser.add_argument("--version", action="version", version=f"adamlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for command in command_modules():
        command.add_parser(subparsers)
    return parser


def join_negative_values(
    argv: Sequence[str], options: Sequence[str] = ("--x0", "--betas", "--lr", "--eps")
) -> list[str]:
    """Let ``--x0 -1.2,1`` mean ``--x0=-1.2,1`` (argparse would take ``-1.2,1`` or ``-1e-8`` for an option)."""
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        if args[i] in options and i + 1 < len(args) and args[i + 1].startswith("-") and _numeric(args[i + 1]):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def protect_leading_minus(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """Let ``adamlab minimize '-cos(x)' ...`` work: argparse would take an EXPR starting with '-' for an option.

    A token of ``minimize`` that starts with one '-', is not one of its options nor an option's value, and
    parses as an expression is moved to the end, after ``--`` (which makes it positional).
    """
    args = list(argv)
    minimize = _subparser(parser, "minimize")
    if len(args) < 2 or args[0] != "minimize" or "--" in args or minimize is None:
        return args
    actions = minimize._option_string_actions
    for i, token in enumerate(args[1:], start=1):
        previous = actions.get(args[i - 1])
        if previous is not None and previous.nargs != 0:
            continue  # the value of an option such as --plot
        if token.startswith("-") and not token.startswith("--") and token not in actions and _expression(token):
            return [*args[:i], *args[i + 1 :], "--", token]
    return args


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def _expression(text: str) -> bool:
    from adamlab.cli.expression import Expression

    try:
        Expression(text)
    except ValueError:
        return False
    return True


def _numeric(text: str) -> bool:
    try:
        [float(part) for part in text.split(",")]
    except ValueError:
        return False
    return True


#: the exit status of a command whose reader went away (128 + SIGPIPE), as ``yes | head`` gives
BROKEN_PIPE = 141


def _quiet_broken_pipe() -> int:
    """The reader of stdout closed it (``adamlab functions --json | head``): stop quietly, as Unix tools do.

    Python would print "Exception ignored ... BrokenPipeError" when it flushes stdout at exit; pointing
    stdout at /dev/null first avoids that.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass
    return BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adamlab`` console script; returns the exit code."""
    args_list = join_negative_values(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not args_list:  # plain `adamlab`: the usage and the commands
            parser.print_help()
            return 0
        args = parser.parse_args(protect_leading_minus(args_list, parser))
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below, not at exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (UsageError, ValueError) as error:
        text = " ".join(str(error).split())  # one line, whatever the message held
        prefix = "" if text.startswith("adamlab") else "adamlab: error: "
        print(f"{prefix}{text}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. a plot path that cannot be written
        where = f": {error.filename}" if error.filename else ""
        print(f"adamlab: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except MemoryError as error:  # e.g. a budget that passed the caps but not this machine's memory
        print(
            f"adamlab: error: out of memory: {' '.join(str(error).split()) or 'try a smaller problem'}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("adamlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
