"""Keras's own optimizer tests (``keras/src/optimizers/*_test.py``, shipped in the keras wheel) run on adamlab.keras.

Used two ways:

- as a pytest plugin (``-p keras_suite``) inside a pytest run of Keras's test modules: ``--adamlab-keras``
  puts adamlab's classes where those modules import Keras's (``keras.src.optimizers.adam.Adam``,
  ``keras.src.optimizers.Adam`` and the name table behind ``keras.optimizers.get("adam")``) before they are
  collected, and ``--keras-suite-report=FILE`` writes every test's outcome as JSON;
- from :func:`run_suite`, which runs that in a subprocess with ``KERAS_BACKEND`` set (Keras reads its backend
  once, at import) and returns the outcomes.

Keras's test code is run as shipped, never copied. The comparison and the exceptions are in test_keras_suite.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Keras's test modules that exercise the optimizer classes adamlab has (and Lion/Adafactor, for when it has them)
MODULES: tuple[str, ...] = (
    "adadelta_test",
    "adagrad_test",
    "adam_test",
    "adamax_test",
    "adamw_test",
    "nadam_test",
    "rmsprop_test",
    "sgd_test",
    "lion_test",
    "adafactor_test",
    "optimizer_test",
    "optimizer_sparse_test",
    "loss_scale_optimizer_test",
    "multi_optimizer_test",
)

SRC = Path(__file__).resolve().parents[2] / "src"


def keras_tests_dir() -> Path:
    """The folder of Keras's optimizer tests in the installed wheel, found without importing Keras."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("keras is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "src" / "optimizers"


def substitute() -> dict[str, str]:
    """Put adamlab's classes where Keras's test modules import Keras's; return {where: adamlab class}."""
    import keras
    from keras.src import optimizers

    import adamlab.keras

    if keras.backend.backend() == "torch":
        # Keras's torch backend subclasses keras.src.optimizers.Adam ... when it first builds an optimizer:
        # import those subclasses now, so they are made from Keras's classes, not from the substitutes.
        from keras.src.backend.torch import optimizers as torch_optimizers

        for info in pkgutil.iter_modules(torch_optimizers.__path__):
            importlib.import_module(f"{torch_optimizers.__name__}.{info.name}")
    placed = {}
    for name, cls in adamlab.keras.KERAS_CLASSES.items():
        original = getattr(optimizers, name, None)
        if original is None or original is cls:  # Keras has no such class (RAdam)
            continue
        module = sys.modules[original.__module__]
        setattr(module, name, cls)
        setattr(optimizers, name, cls)
        optimizers.ALL_OBJECTS_DICT[name.lower()] = cls
        placed[f"{module.__name__}.{name}"] = f"{cls.__module__}.{cls.__qualname__}"
        if not isinstance(getattr(module, name)(), adamlab.keras.RuleOptimizer):
            raise RuntimeError(f"{module.__name__}.{name}() does not build adamlab's class")
    return placed


# --- the pytest plugin --------------------------------------------------------------------------------------


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("keras_suite", "Keras's optimizer tests on adamlab.keras")
    group.addoption("--adamlab-keras", action="store_true", help="substitute adamlab.keras's classes for Keras's")
    group.addoption("--keras-suite-report", default=None, help="write each test's outcome to this JSON file")


#: outcomes of this process's run, by node id (the plugin is loaded once per pytest process)
_TESTS: dict[str, str] = {}
_SUBSTITUTED: dict[str, str] = {}


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "requires_trainable_backend: Keras's marker")
    if config.getoption("--adamlab-keras"):
        _SUBSTITUTED.update(substitute())


def pytest_runtest_logreport(report: Any) -> None:
    """One outcome per test: an error in setup or teardown counts as "error", a skip in setup as "skipped"."""
    if report.when == "call":
        outcome = report.outcome
    elif report.failed:
        outcome = "error"
    elif report.skipped:
        outcome = "skipped"
    else:
        return
    if _TESTS.get(report.nodeid) != "error":
        _TESTS[report.nodeid] = outcome


def pytest_collectreport(report: Any) -> None:
    if report.failed:  # a module that does not import: its tests are lost, so the module counts as an error
        _TESTS[report.nodeid] = "error"


def pytest_sessionfinish(session: Any) -> None:
    path = session.config.getoption("--keras-suite-report")
    if path:
        Path(path).write_text(json.dumps({"substituted": _SUBSTITUTED, "tests": _TESTS}, indent=1, sort_keys=True))


# --- running the suite -------------------------------------------------------------------------------------


def run_suite(backend: str, ours: bool, modules: tuple[str, ...] = MODULES, timeout: float = 900) -> dict[str, Any]:
    """Run Keras's ``modules`` on ``backend`` in a fresh process, with Keras's classes or adamlab's (``ours``).

    Returns ``{"substituted": {where: class}, "tests": {nodeid: "passed" | "failed" | "skipped" | "error"}}``
    (node ids relative to keras/src/optimizers, e.g. ``adam_test.py::AdamTest::test_config``).
    """
    here = keras_tests_dir()
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        report = Path(tmp) / "report.json"
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "PYTHONPATH": os.pathsep.join([str(SRC), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
            "PYTHONDONTWRITEBYTECODE": "1",  # nothing written into the installed keras package
            "KERAS_HOME": tmp,
        }
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "keras_suite", "-p", "no:cacheprovider",
            "-c", str(ini), "--rootdir", str(here), "-W", "ignore::DeprecationWarning",
            f"--keras-suite-report={report}", *(["--adamlab-keras"] if ours else []),
            *(str(here / f"{m}.py") for m in modules),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        if not report.exists():
            raise RuntimeError(f"Keras's suite did not run (exit {done.returncode}):\n{done.stdout[-3000:]}")
        return json.loads(report.read_text())


def regressions(baseline: dict[str, str], ours: dict[str, str]) -> dict[str, str]:
    """Tests that pass with Keras's classes but not with adamlab's: {nodeid: adamlab's outcome}."""
    return {k: ours.get(k, "missing") for k, v in baseline.items() if v == "passed" and ours.get(k) != "passed"}


def summary(tests: dict[str, str]) -> dict[str, int]:
    """Counts of passed/failed/skipped/error outcomes."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for outcome in tests.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


if __name__ == "__main__":  # python tests/peer/keras_suite.py [torch|jax ...]: print both runs and the regressions
    for name in sys.argv[1:] or ["torch", "jax"]:
        keras_run, adamlab_run = run_suite(name, ours=False), run_suite(name, ours=True)
        print(f"{name}: Keras {summary(keras_run['tests'])}  adamlab {summary(adamlab_run['tests'])}")
        for nodeid, outcome in sorted(regressions(keras_run["tests"], adamlab_run["tests"]).items()):
            print(f"  {outcome:8} {nodeid}")
