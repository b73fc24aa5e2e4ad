"""Safe parser for user-typed math expressions (``adamlab minimize EXPR --x0 ...``).

The text is parsed with :func:`ast.parse` and the tree is walked with an allow-list; nothing is ever
handed to ``eval``/``exec``. The result is a tree of small closures that evaluate with torch operations,
so autograd gives gradients. Allowed: int/float literals, the variables ``x`` and ``y``, the constants
``pi`` and ``e``, binary ``+ - * / **``, unary ``- +``, parentheses, and one-argument calls of the
functions in :data:`FUNCTIONS`. Everything else raises :class:`ExpressionError`.
"""

from __future__ import annotations

import ast
import math
import sys
import warnings
from collections.abc import Callable

import torch

MAX_LENGTH = 1000  #: longest accepted expression, in characters
MAX_NODES = 400  #: most AST nodes accepted (as counted by ``ast.walk``, operators and contexts included)

VARIABLES = ("x", "y")
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    name: getattr(torch, name) for name in ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sinh", "cosh")
}
_BINARY = {
    ast.Add: torch.add,
    ast.Sub: torch.sub,
    ast.Mult: torch.mul,
    ast.Div: torch.div,
    ast.Pow: torch.pow,
}
_UNARY = {ast.USub: torch.neg, ast.UAdd: torch.positive}
_SYMBOLS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
            ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.Not: "not", ast.Invert: "~"}  # fmt: skip
_REJECTED = {
    ast.Attribute: "attribute access is",
    ast.Subscript: "subscripts are",
    ast.Lambda: "lambda expressions are",
    ast.Compare: "comparisons are",
    ast.BoolOp: "boolean operators are",
    ast.IfExp: "conditional expressions are",
    ast.Starred: "starred arguments are",
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehensions are"),
}

_Env = dict[str, torch.Tensor]
_Node = Callable[[_Env], torch.Tensor]


class ExpressionError(ValueError):
    """An expression was rejected; the message is one line starting with ``expression:``."""


def _fail(message: str) -> ExpressionError:
    return ExpressionError("expression: " + message)


def _build(node: ast.AST) -> _Node:
    """Validate ``node`` against the allow-list and return a closure evaluating it on an environment."""
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) not in (int, float):  # ``type`` (not isinstance) so that True/False are rejected
            raise _fail(f"{type(value).__name__} literals are not allowed (only int and float numbers)")
        if not abs(value) <= sys.float_info.max:  # exact int/float comparison: catches inf and huge ints
            raise _fail(f"number at column {node.col_offset + 1} is not a finite float")
        number = float(value)
        return lambda env: env["x"].new_tensor(number)
    if isinstance(node, ast.Name):
        if node.id in VARIABLES:
            return lambda env: env[node.id]
        if node.id in CONSTANTS:
            constant = CONSTANTS[node.id]
            return lambda env: env["x"].new_tensor(constant)
        if node.id in FUNCTIONS:
            raise _fail(f"function '{node.id}' must be called with one argument, e.g. {node.id}(x)")
        raise _fail(f"name '{node.id}' is not allowed (allowed: {', '.join((*VARIABLES, *CONSTANTS))})")
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        table = _BINARY if isinstance(node, ast.BinOp) else _UNARY
        op = table.get(type(node.op))
        if op is None:
            symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
            hint = "; use ** for powers" if symbol == "^" else ""
            raise _fail(f"operator '{symbol}' is not allowed (allowed: + - * / ** and unary - +{hint})")
        if isinstance(node, ast.UnaryOp):
            operand = _build(node.operand)
            return lambda env: op(operand(env))
        left, right = _build(node.left), _build(node.right)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise _fail(_REJECTED.get(type(node.func), "calling an expression is") + " not allowed")
        name = node.func.id
        if name not in FUNCTIONS:
            raise _fail(f"function '{name}' is not allowed (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords or len(node.args) != 1:
            raise _fail(f"function '{name}' takes exactly one positional argument")
        function, argument = FUNCTIONS[name], _build(node.args[0])
        return lambda env: function(argument(env))
    raise _fail(_REJECTED.get(type(node), f"{type(node).__name__} syntax is") + " not allowed")


def _parse(text: str) -> ast.Expression:
    """Run :func:`ast.parse` under the size limits, turning every parser failure into ExpressionError."""
    if not isinstance(text, str):
        raise TypeError(f"expression must be a str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _fail(f"longer than {MAX_LENGTH} characters")
    flat = "".join(" " if char.isspace() else char for char in text)  # one line, same columns as text
    source = flat.lstrip()  # a leading space would be an "unexpected indent"
    if not source.strip():
        raise _fail("empty expression")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escape sequences in (rejected) string literals
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:  # offset is 1-based; 0 or None means "at the end of the input"
        column = len(flat) - len(source) + (exc.offset or len(source.rstrip()) + 1)
        detail = "" if exc.msg in ("", "invalid syntax") else f" ({exc.msg})"
        raise _fail(f"invalid syntax at column {column}{detail}".replace("\n", " ")) from None
    except RecursionError:
        raise _fail("nested too deeply") from None
    except ValueError as exc:  # e.g. null bytes on some Python versions
        raise _fail(f"invalid input ({exc})".replace("\n", " ")) from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise _fail(f"more than {MAX_NODES} syntax nodes (too complex)")
    return tree


class Expression:
    """A validated expression in ``x`` (and optionally ``y``), callable on torch tensors.

    ``Expression(text)`` parses and validates immediately and raises :class:`ExpressionError` on any
    disallowed construct. ``variables`` is the ordered subset of ``("x", "y")`` used; ``dimension`` is
    2 when ``y`` is used (even without ``x``), else 1.
    """

    def __init__(self, text: str) -> None:
        tree = _parse(text)
        self.text: str = text
        self._function: _Node = _build(tree.body)
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        self.variables: tuple[str, ...] = tuple(name for name in VARIABLES if name in used)
        self.dimension: int = 2 if "y" in used else 1

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """Evaluate elementwise; the coordinate axis is the first axis of ``v``.

        Dimension 1: ``v`` is ``x`` itself (any shape). Dimension 2: ``v[0]`` is ``x`` and ``v[1]`` is ``y``
        (shape ``(2,)``, ``(2, K)``, ``(2, N, N)``, ...). The result has ``v``'s dtype (non-floating input is
        converted to the default dtype) and the variables' shape, and stays connected to autograd even
        when the expression is constant.
        """
        v = torch.as_tensor(v)
        if not v.is_floating_point():
            v = v.to(torch.get_default_dtype())
        if self.dimension == 2:
            if v.ndim == 0 or v.shape[0] != 2:
                raise ValueError(f"expression: {self.text!r} uses y, so v needs shape (2, ...), got {tuple(v.shape)}")
            env = {"x": v[0], "y": v[1]}
        else:
            env = {"x": v}
        result = self._function(env)
        if not self.variables:  # constant: broadcast to x's shape and keep the autograd connection
            result = result + 0 * env["x"].nan_to_num()
        return result

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def parse_expression(text: str) -> Expression:
    """Parse and validate ``text``; shorthand for ``Expression(text)``."""
    return Expression(text)
