"""The ``adamlab`` command, in process (``main([...])``) and as a real subprocess (``python -m adamlab``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import adamlab
from adamlab.cli.expression import Expression
from adamlab.cli.main import main

CUBIC = "x**3 - 2*x**2 + 2"
ROSENBROCK = "(1-x)**2 + 100*(y-x**2)**2"


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_subprocess(args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "adamlab", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    return proc.returncode, proc.stdout, proc.stderr


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def check_demo_output(out, path):
    res = adamlab.minimize(
        lambda x: x**3 - 2 * x**2 + 2,
        x0=0.001,
        optimizer=adamlab.Adam(lr=0.05, eps=1e-7, preset="keras"),
        steps=100,
        dtype="float32",
    )
    assert f"optimized:  x = {res.x:.6f}" in out
    assert "x = 1.3325" in out  # the article's result
    assert "analytic:   x = 4/3 = 1.333333   f = 22/27 = 0.814815" in out
    assert f"plot written to {path.resolve()}" in out
    assert path.exists() and is_png(path)


# --- demo -------------------------------------------------------------------------------------------------


def test_demo_in_process(tmp_path, capsys):
    path = tmp_path / "x.png"
    code, out, err = run_cli(["demo", "--out", str(path)], capsys)
    assert code == 0 and err == ""
    check_demo_output(out, path)


def test_demo_subprocess(tmp_path):
    code, out, err = run_subprocess(["demo", "--out", "tmp/x.png"], cwd=tmp_path)
    assert code == 2 and err.strip() == "adamlab: error: tmp/x.png: the folder tmp does not exist"
    (tmp_path / "tmp").mkdir()
    code, out, err = run_subprocess(["demo", "--out", "tmp/x.png"], cwd=tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    check_demo_output(out, tmp_path / "tmp" / "x.png")


# --- minimize ---------------------------------------------------------------------------------------------


def direct(text, x0, rule, steps, dtype="float64"):
    return adamlab.minimize(Expression(text), x0, rule, steps, dtype=dtype)


def check_json(out, expected):
    assert out.count("\n") == 1 and out.endswith("\n")  # exactly one line: one JSON object
    data = json.loads(out)
    assert set(data) == {"x", "fun", "nit", "status", "message", "history"}
    assert set(data["history"]) == {"x", "fun"}
    assert len(data["history"]["x"]) == len(data["history"]["fun"]) == data["nit"]
    assert data["nit"] == expected.nit and data["status"] == expected.status and data["message"] == expected.message
    assert data["x"] == np.asarray(expected.x).tolist() and data["fun"] == expected.fun
    assert data["history"]["x"] == expected.history.x.tolist()  # history.x[i]: x after step i + 1
    assert data["history"]["fun"] == expected.history.fun.tolist()
    if data["nit"]:
        assert data["history"]["x"][-1] == data["x"]
    return data


def test_minimize_json_1d(capsys):
    args = ["minimize", CUBIC, "--x0", "0.001", "--preset", "keras", "--lr", "0.05", "--eps", "1e-7", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and err == ""
    rule = adamlab.Adam(lr=0.05, eps=1e-7, preset="keras")
    data = check_json(out, direct(CUBIC, 0.001, rule, 100))
    assert data["nit"] == 100 and abs(data["x"] - 4 / 3) < 1e-3
    # the same as adamlab.minimize on a Python function (up to how the expression rounds its constants)
    plain = adamlab.minimize(lambda x: x**3 - 2 * x**2 + 2, x0=0.001, optimizer=rule, steps=100)
    np.testing.assert_allclose(data["history"]["x"], plain.history.x, rtol=1e-12)
    np.testing.assert_allclose(data["history"]["x"][0], plain.history.x[0], rtol=1e-15)


@pytest.mark.parametrize("x0_args", [["--x0", "-1.2,1"], ["--x0=-1.2,1"]])
def test_minimize_json_2d(x0_args, capsys):
    args = ["minimize", ROSENBROCK, *x0_args, "--lr", "0.02", "--steps", "500", "--betas", "0.9,0.99", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and err == ""
    data = check_json(out, direct(ROSENBROCK, [-1.2, 1.0], adamlab.Adam(lr=0.02, betas=(0.9, 0.99)), 500))
    assert len(data["x"]) == 2 and np.shape(data["history"]["x"]) == (500, 2)


@pytest.mark.parametrize(
    ("optimizer", "rule"),
    [("sgd", adamlab.SGD(lr=0.01)), ("nesterov", adamlab.SGD(lr=0.01, momentum=0.9, nesterov=True))],
)
def test_minimize_other_optimizers_and_float32(optimizer, rule, capsys):
    args = ["minimize", "x**2 + sin(x)", "--x0", "2", "--optimizer", optimizer, "--lr", "0.01", "--dtype", "float32"]
    code, out, err = run_cli([*args, "--steps", "30", "--json"], capsys)
    assert code == 0
    check_json(out, direct("x**2 + sin(x)", 2.0, rule, 30, dtype="float32"))


def test_minimize_text_output_and_plot(tmp_path, capsys):
    path = tmp_path / "rosen.png"
    code, out, err = run_cli(["minimize", ROSENBROCK, "--x0", "-1.2,1", "--steps", "50", "--plot", str(path)], capsys)
    assert code == 0 and err == ""
    res = direct(ROSENBROCK, [-1.2, 1.0], adamlab.Adam(), 50)
    lines = out.splitlines()
    assert lines[0] == f"x, y = {res.x[0]:.8g}, {res.x[1]:.8g}"
    assert lines[1] == f"f = {res.fun:.8g}"
    assert lines[2] == "steps = 50, status = max_steps: completed 50 steps"
    assert lines[3].startswith("plot written to") and is_png(path)
    path1 = tmp_path / "cubic.svg"
    code, out, _ = run_cli(["minimize", CUBIC, "--x0", "0.5", "--steps", "10", "--plot", str(path1)], capsys)
    assert code == 0 and out.startswith("x = ") and path1.read_text().lstrip().startswith("<?xml")


def test_minimize_nonfinite_json_has_null(capsys):
    code, out, err = run_cli(["minimize", "1/x", "--x0", "0", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "nonfinite" and data["fun"] is None and data["nit"] == 0
    assert data["history"] == {"x": [], "fun": []}


def test_minimize_subprocess_json_2d_and_plot(tmp_path):
    args = ["minimize", ROSENBROCK, "--x0", "-1.2,1", "--lr", "0.02", "--steps", "300", "--json", "--plot", "p.png"]
    code, out, err = run_subprocess(args, cwd=tmp_path)
    assert code == 0 and err == ""
    check_json(out, direct(ROSENBROCK, [-1.2, 1.0], adamlab.Adam(lr=0.02), 300))
    assert is_png(tmp_path / "p.png")


# --- errors: exit code 2, exactly one line on stderr, no traceback, nothing on stdout -----------------------

ERRORS = [
    (["minimize", CUBIC, "--x0", "1", "--optimizer", "adamm"], "optimizer must be one of"),
    (["minimize", CUBIC, "--x0", "1", "--preset", "pytorch"], "preset must be one of paper, torch, keras, optax"),
    (["minimize", CUBIC, "--x0", "1", "--lr", "-1"], "lr must be a finite number in [0, inf)"),
    (["minimize", CUBIC, "--x0", "1", "--lr", "-1e-3"], "lr must be a finite number in [0, inf); got -0.001"),
    (["minimize", CUBIC, "--x0", "1", "--lr", "fast"], "--lr must be a number; got 'fast'"),
    (["minimize", CUBIC, "--x0", "1", "--lr", "nan"], "lr must be a finite number"),
    (["minimize", CUBIC, "--x0", "1", "--betas", "1.5,0.9"], "betas[0] must be a finite number in [0, 1)"),
    (["minimize", CUBIC, "--x0", "1", "--betas", "0.9"], "betas must be a pair"),
    (["minimize", CUBIC, "--x0", "1", "--betas", "a,b"], "--betas must be numbers separated by commas"),
    (["minimize", CUBIC, "--x0", "1", "--eps", "-1e-8"], "eps must be a finite number in [0, inf)"),
    (["minimize", CUBIC, "--x0", "1", "--steps", "0"], "--steps must be between 1 and 1,000,000; got 0"),
    (["minimize", CUBIC, "--x0", "1", "--steps", "1000001"], "--steps must be between 1 and 1,000,000"),
    (["minimize", CUBIC, "--x0", "1", "--steps", "ten"], "--steps must be an integer"),
    (["minimize", CUBIC, "--x0", "1", "--dtype", "float16"], "dtype must be one of float32, float64"),
    (["minimize", CUBIC, "--x0", "1,2"], "--x0 has 2 value(s); the expression uses x, so give 1"),
    (["minimize", ROSENBROCK, "--x0", "1"], "--x0 has 1 value(s); the expression uses x and y, so give 2"),
    (["minimize", CUBIC, "--x0", "one"], "--x0 must be numbers separated by commas"),
    (["minimize", CUBIC, "--x0", "nan"], "x0 must be finite"),
    (["minimize", CUBIC, "--x0", "1", "--optimizer", "sgd", "--betas", "0.9,0.99"], "sgd has no option 'betas'"),
    (["minimize", "__import__('os')", "--x0", "1"], "function '__import__' is not allowed"),
    (["minimize", "__import__('os').system('echo hi')", "--x0", "1"], "expression: "),
    (["minimize", "x.__class__", "--x0", "1"], "attribute access is not allowed"),
    (["minimize", "(lambda: 1)()", "--x0", "1"], "not allowed"),
    (["minimize", "lambda x: x", "--x0", "1"], "lambda expressions are not allowed"),
    (["minimize", "x +\n 1; import os", "--x0", "1"], "expression: "),
    (["minimize", "x+" * 600 + "x", "--x0", "1"], "longer than 1000 characters"),
    (["minimize", "x+" * 300 + "x", "--x0", "1"], "more than 400 syntax nodes"),
    (["minimize", CUBIC], "--x0 is required for an expression"),
    (["minimize", "--x0", "1"], "the following arguments are required: EXPR"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["compare"], "the following arguments are required: PROBLEM"),
    (["demo", "--out", "plot.txt"], "unsupported file extension '.txt'"),
    (["minimize", CUBIC, "--x0", "1", "--steps", "2", "--plot", "/dev/null/x.png"], "/dev/null"),
]


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=[" ".join(a)[:60] for a, _ in ERRORS])
def test_errors_exit_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert err.startswith("adamlab")
    assert message in err
    assert not list(tmp_path.iterdir())  # nothing was written


def test_malicious_expression_is_not_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    code, out, err = run_cli(["minimize", f"__import__('os').system('touch {marker}')", "--x0", "1"], capsys)
    assert code == 2 and not marker.exists()


def test_error_subprocess(tmp_path):
    code, out, err = run_subprocess(["minimize", "x.__class__", "--x0", "1"], cwd=tmp_path)
    assert code == 2 and out == ""
    assert err == "adamlab: error: expression: attribute access is not allowed\n"


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"adamlab {adamlab.__version__}"


# --- an EXPR that starts with '-' ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expr", "x0"),
    [
        (["minimize", "-cos(x)", "--x0", "1", "--json"], "-cos(x)", 1.0),
        (["minimize", "-x**2+x**4", "--x0", "1", "--json"], "-x**2+x**4", 1.0),
        (["minimize", "--x0", "-1", "-x**2+x**4", "--steps", "50", "--json"], "-x**2+x**4", -1.0),
        (["minimize", "--json", "-x**2+x**4", "--x0=-0.5"], "-x**2+x**4", -0.5),
    ],
)
def test_minimize_expression_starting_with_minus(args, expr, x0, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 0 and err == "", err
    check_json(out, direct(expr, x0, adamlab.Adam(), 50 if "--steps" in args else 100))


def test_minimize_empty_plot_name_is_an_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["minimize", CUBIC, "--x0", "1", "--plot", ""], capsys)
    assert code == 2 and out == "" and err == "adamlab: error: --plot needs a file name such as path.png; got ''\n"


def test_minimize_overflowing_x_is_reported_as_such(capsys):
    # Adam's first step has size lr (x1 = −1.7e308); the second, about 0.67·lr, overflows
    code, out, err = run_cli(["minimize", "tanh(x)", "--x0", "0", "--lr", "1.7e308", "--steps", "5"], capsys)
    assert code == 0 and "status = nonfinite: stopped: x is not finite (the step overflowed) after step 2" in out
    assert "gradient" not in out
