"""Tests for the safe expression parser behind ``adamlab minimize EXPR``."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from adamlab.cli import expression as expression_module
from adamlab.cli.expression import (
    MAX_LENGTH,
    MAX_NODES,
    Expression,
    ExpressionError,
    parse_expression,
)

CUBIC = "x**3 - 2*x**2 + 2"
ROSENBROCK = "(1-x)**2 + 100*(y-x**2)**2"


def value_and_grad(expr: Expression, point: list[float] | float) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    out = expr(v)
    out.sum().backward()
    return out.detach(), v.grad


# ---------------------------------------------------------------- values and gradients


@pytest.mark.parametrize(
    ("x", "value", "slope"),
    [(-1.0, -1.0, 7.0), (0.0, 2.0, 0.0), (1.0, 1.0, -1.0), (2.0, 2.0, 4.0), (3.0, 11.0, 15.0), (0.5, 1.625, -1.25)],
)
def test_cubic_value_and_gradient_by_hand(x: float, value: float, slope: float) -> None:
    out, grad = value_and_grad(Expression(CUBIC), x)
    assert out.shape == ()
    assert out.item() == pytest.approx(value)
    assert grad.item() == pytest.approx(slope)  # 3x^2 - 4x
    assert slope == pytest.approx(3 * x**2 - 4 * x)


def test_cubic_batched_gradient_matches_formula() -> None:
    xs = torch.linspace(-2.0, 3.0, 11, dtype=torch.float64)
    out, grad = value_and_grad(Expression(CUBIC), xs.tolist())
    torch.testing.assert_close(out, xs**3 - 2 * xs**2 + 2)
    torch.testing.assert_close(grad, 3 * xs**2 - 4 * xs)


def test_rosenbrock_value_and_gradient_by_hand() -> None:
    expr = Expression(ROSENBROCK)
    # at (-1.5, 2): (2.5)^2 + 100*(2 - 2.25)^2 = 6.25 + 6.25
    out, grad = value_and_grad(expr, [-1.5, 2.0])
    assert out.item() == pytest.approx(12.5)
    # d/dx = -2(1-x) - 400 x (y - x^2) = -5 - 150 ; d/dy = 200 (y - x^2) = -50
    assert grad.tolist() == pytest.approx([-155.0, -50.0])
    out, grad = value_and_grad(expr, [1.0, 1.0])  # the minimum
    assert out.item() == 0.0
    assert grad.tolist() == [0.0, 0.0]


def test_simple_examples() -> None:
    assert Expression("x**2")(torch.tensor([1.0, 2.0, 3.0])).tolist() == [1.0, 4.0, 9.0]
    assert Expression("x*y + 1")(torch.tensor([3.0, 4.0])).item() == 13.0


@pytest.mark.parametrize(
    ("name", "reference", "points"),
    [
        ("sin", math.sin, [0.25, 1.5, -2.0]),
        ("cos", math.cos, [0.25, 1.5, -2.0]),
        ("tan", math.tan, [0.25, 1.0, -0.5]),
        ("exp", math.exp, [0.0, 1.0, -2.0]),
        ("log", math.log, [0.5, 1.0, 10.0]),
        ("sqrt", math.sqrt, [0.25, 2.0, 9.0]),
        ("abs", abs, [-2.5, 0.0, 3.0]),
        ("tanh", math.tanh, [0.25, -1.5, 3.0]),
        ("sinh", math.sinh, [0.25, -1.5, 3.0]),
        ("cosh", math.cosh, [0.25, -1.5, 3.0]),
    ],
)
def test_every_allowed_function(name: str, reference, points: list[float]) -> None:
    out = Expression(f"{name}(x)")(torch.tensor(points, dtype=torch.float64))
    assert out.tolist() == pytest.approx([reference(p) for p in points])


def test_function_of_expression_and_nested_calls() -> None:
    assert Expression("sqrt(abs(x - 10))")(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(3.0)
    assert Expression("log(exp(2*x))")(torch.tensor(1.5, dtype=torch.float64)).item() == pytest.approx(3.0)
    out, grad = value_and_grad(Expression("sin(x)**2 + cos(x)**2"), [0.3, 1.7])
    assert out.tolist() == pytest.approx([1.0, 1.0])
    assert grad.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)


@pytest.mark.parametrize(
    ("text", "x", "expected"),
    [
        ("-x**2", 3.0, -9.0),
        ("(-x)**2", 3.0, 9.0),
        ("2 + 3*x", 2.0, 8.0),
        ("(2 + 3)*x", 2.0, 10.0),
        ("2**3**x", 2.0, 512.0),  # ** is right-associative: 2**(3**2)
        ("x**-1", 4.0, 0.25),
        ("1/2/x", 2.0, 0.25),  # left-associative: (1/2)/2
        ("10 - x - 3", 2.0, 5.0),
        ("x - -x", 2.5, 5.0),
        ("+x", 2.5, 2.5),
        ("2*-x", 2.5, -5.0),
        ("--x", 1.5, 1.5),
        ("-2**2", 0.0, -4.0),
        ("1e-3 * x", 2.0, 0.002),
        ("7", 123.0, 7.0),
    ],
)
def test_operator_precedence_and_unary_minus(text: str, x: float, expected: float) -> None:
    assert Expression(text)(torch.tensor(x, dtype=torch.float64)).item() == pytest.approx(expected)


def test_constants_pi_and_e() -> None:
    at = torch.tensor(1.0, dtype=torch.float64)
    assert Expression("pi")(at).item() == pytest.approx(math.pi)
    assert Expression("e**x")(at).item() == pytest.approx(math.e)
    assert Expression("sin(pi/2)")(at).item() == pytest.approx(1.0)
    assert Expression("log(e)")(at).item() == pytest.approx(1.0)


def test_arithmetic_stays_in_torch() -> None:
    """Pure-constant subexpressions must not be computed with Python floats (which raise or go complex)."""
    at = torch.tensor(0.0, dtype=torch.float64)
    assert Expression("1/0")(at).item() == math.inf
    assert Expression("10.0**400")(at).item() == math.inf
    assert math.isnan(Expression("(-8)**(1/3)")(at).item())
    assert Expression("exp(x)")(torch.tensor(1000.0, dtype=torch.float64)).item() == math.inf


# ---------------------------------------------------------------- constants, shapes, dtypes


def test_constant_expression_keeps_shape_and_autograd() -> None:
    v = torch.tensor(2.0, requires_grad=True)
    out = Expression("3")(v)
    assert isinstance(out, torch.Tensor) and out.shape == () and out.item() == 3.0
    assert out.requires_grad
    out.backward()
    assert v.grad is not None and v.grad.item() == 0.0

    batch = Expression("pi*e")(torch.zeros(4))
    assert batch.shape == (4,)
    assert batch.tolist() == pytest.approx([math.pi * math.e] * 4)
    assert Expression("3")(torch.tensor([math.inf, -math.inf])).tolist() == [3.0, 3.0]


@pytest.mark.parametrize(
    ("text", "variables", "dimension"),
    [
        ("x", ("x",), 1),
        ("y", ("y",), 2),
        ("x*y", ("x", "y"), 2),
        ("y + x", ("x", "y"), 2),
        ("3 + pi", (), 1),
        ("sin(e)", (), 1),
    ],
)
def test_variables_and_dimension(text: str, variables: tuple[str, ...], dimension: int) -> None:
    expr = Expression(text)
    assert expr.text == text
    assert expr.variables == variables
    assert expr.dimension == dimension


def test_batched_two_dimensional_evaluation() -> None:
    expr = Expression(ROSENBROCK)
    points = torch.tensor([[-1.5, 1.0, 0.0, 2.0], [2.0, 1.0, 0.0, 3.0]], dtype=torch.float64)  # shape (2, K)
    out = expr(points)
    assert out.shape == (4,)
    expected = [expr(points[:, k]).item() for k in range(4)]
    assert out.tolist() == pytest.approx(expected)
    assert out.tolist() == pytest.approx([12.5, 0.0, 1.0, 101.0])

    grid = torch.stack(torch.meshgrid(torch.linspace(-2, 2, 5), torch.linspace(-1, 3, 5), indexing="ij"))
    assert expr(grid).shape == (5, 5)  # (2, N, N) -> (N, N)


def test_y_only_expression_is_two_dimensional() -> None:
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)  # x = [1, 2], y = [3, 4]
    out = Expression("y**2")(v)
    assert out.tolist() == [9.0, 16.0]
    out.sum().backward()
    assert v.grad.tolist() == [[0.0, 0.0], [6.0, 8.0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_preserved(dtype: torch.dtype) -> None:
    assert Expression("pi*x + 1")(torch.ones(3, dtype=dtype)).dtype == dtype
    assert Expression("x*y")(torch.ones(2, 3, dtype=dtype)).dtype == dtype
    assert Expression("2")(torch.ones((), dtype=dtype)).dtype == dtype


def test_integer_input_is_converted_to_default_float() -> None:
    out = Expression("x/2")(torch.tensor([1, 3]))
    assert out.dtype == torch.get_default_dtype()
    assert out.tolist() == [0.5, 1.5]


@pytest.mark.parametrize("shape", [(), (3,), (1, 4)])
def test_two_dimensional_expression_rejects_wrong_first_axis(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"shape \(2, \.\.\.\)"):
        Expression("x + y")(torch.zeros(shape))


def test_repr_and_parse_expression() -> None:
    expr = parse_expression(CUBIC)
    assert isinstance(expr, Expression)
    assert repr(expr) == f"Expression({CUBIC!r})"
    assert expr(torch.tensor(3.0)).item() == pytest.approx(11.0)
    assert issubclass(ExpressionError, ValueError)


def test_surrounding_whitespace_is_accepted() -> None:
    assert Expression("  x + 1\n")(torch.tensor(1.0)).item() == 2.0
    assert Expression("(x\n + 1)")(torch.tensor(1.0)).item() == 2.0


# ---------------------------------------------------------------- rejection


MALICIOUS_OR_INVALID = [
    "__import__('os').system('ls')",
    "__import__('os')",
    "x.__class__",
    "x.__class__.__mro__[1].__subclasses__()",
    "open('f')",
    "eval('1')",
    "lambda: 1",
    "(lambda: 1)()",
    "[x for x in y]",
    "(x for x in y)",
    "{x for x in y}",
    "x[0]",
    "foo",
    "sin",
    "x(2)",
    "sin(x, y)",
    "sin()",
    "sin(x=1)",
    "sin(*x)",
    "'a'",
    "b'a'",
    "f'{x}'",
    "1j",
    "x if y else 1",
    "x < y",
    "x and y",
    "not x",
    "~x",
    "x // 2",
    "x % 2",
    "x @ y",
    "x ^ 2",
    "x | y",
    "x << 1",
    "True",
    "None",
    "...",
    "[x, y]",
    "(x, y)",
    "{1: 2}",
    "(x := 1)",
    "9e999",
    "1e999",
    "1" * 400,
    "(" * 5000,
    "x + " * 500 + "x",  # 2000+ characters
    "+".join(["x"] * 150),  # more than 400 nodes in fewer than 1000 characters
    "-" * 300 + "x",  # deep unary chain: many nodes
    "",
    "   ",
    "x +",
    "x + * 2",
    "sin(x",
    "x y",
    "x\x00",
    "import os",
    "x = 1",
    "x; y",
]


@pytest.mark.parametrize("text", MALICIOUS_OR_INVALID)
def test_rejected_with_one_line_message(text: str) -> None:
    with pytest.raises(ExpressionError) as info:
        Expression(text)
    message = str(info.value)
    assert message.startswith("expression: ")
    assert "\n" not in message and "\r" not in message
    assert len(message) < 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "expression: name 'foo' is not allowed (allowed: x, y, pi, e)"),
        ("__builtins__", "expression: name '__builtins__' is not allowed (allowed: x, y, pi, e)"),
        ("open('f')", "expression: function 'open' is not allowed (allowed: sin, cos, tan, exp, log, sqrt, abs"),
        ("__import__('os').system('ls')", "expression: attribute access is not allowed"),
        ("x.__class__", "expression: attribute access is not allowed"),
        ("x[0]", "expression: subscripts are not allowed"),
        ("lambda: 1", "expression: lambda expressions are not allowed"),
        ("[x for x in y]", "expression: comprehensions are not allowed"),
        ("sin(x, y)", "expression: function 'sin' takes exactly one positional argument"),
        ("sin(x=1)", "expression: function 'sin' takes exactly one positional argument"),
        ("x // 2", "expression: operator '//' is not allowed"),
        ("x % 2", "expression: operator '%' is not allowed"),
        ("True", "expression: bool literals are not allowed"),
        ("'a'", "expression: str literals are not allowed"),
        ("1j", "expression: complex literals are not allowed"),
        ("9e999", "expression: number at column 1 is not a finite float"),
        ("x + 1e999", "expression: number at column 5 is not a finite float"),
        ("x if y else 1", "expression: conditional expressions are not allowed"),
        ("(" * 5000, f"expression: longer than {MAX_LENGTH} characters"),
        ("+".join(["x"] * 150), f"expression: more than {MAX_NODES} syntax nodes"),
        ("", "expression: empty expression"),
        ("x + * 2", "expression: invalid syntax at column 5"),
        ("x +", "expression: invalid syntax at column 4"),
        ("  x +", "expression: invalid syntax at column 6"),
    ],
)
def test_rejection_messages(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        Expression(text)
    assert str(info.value).startswith(message)


def test_length_limit_boundary() -> None:
    assert MAX_LENGTH == 1000
    Expression("x" + " " * (MAX_LENGTH - 1))  # exactly MAX_LENGTH characters is fine
    with pytest.raises(ExpressionError, match="longer than"):
        Expression("x" + " " * MAX_LENGTH)


def test_node_limit_boundary() -> None:
    # n summands make 4n - 1 nodes under ast.walk (Expression, n Name+Load, n-1 BinOp+Add)
    assert MAX_NODES == 400
    expr = Expression("+".join(["x"] * 100))  # 399 nodes
    assert expr(torch.tensor(1.0)).item() == 100.0
    with pytest.raises(ExpressionError, match="syntax nodes"):
        Expression("+".join(["x"] * 101))  # 403 nodes


def test_rejected_input_is_not_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExpressionError):
        Expression("open('created.txt', 'w')")
    with pytest.raises(ExpressionError):
        Expression("__import__('pathlib').Path('created.txt').touch()")
    assert not (tmp_path / "created.txt").exists()


def test_module_never_evaluates_code() -> None:
    source = Path(expression_module.__file__).read_text()
    for forbidden in ("eval(", "exec(", "compile(", "__import__", "__builtins__"):
        assert forbidden not in source
    called = {
        node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "setattr"}
