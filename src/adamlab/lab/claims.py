"""The article's claims about Adam, measured: optimizer memory, robustness to gradient noise, speed.

Three measurements, written up by :func:`write_claims_report` as ``claims.md`` plus plots and ``claims.json``:

1. **Memory.** Optimizer state in bytes per parameter, measured from the real state: each optimizer of
   ``adamlab.torch`` (and the torch.optim class of the same name, when there is one) takes one step on float32
   parameters, then the bytes of every tensor in ``optimizer.state`` are summed. Nothing is typed in.
2. **Robustness to gradient noise.** Gaussian noise σ·ξ (ξ ~ N(0, I)) is added to every gradient the optimizer
   sees, σ a growing multiple of the RMS gradient at the initialisation; for each σ every optimizer's learning
   rate is re-tuned (the protocol of :func:`~adamlab.lab.compare.compare`) and its final loss reported.
3. **Speed of convergence.** Steps to a target loss with tuned learning rates (noise-free).

Problems: the paper's §6.1 logistic regression (on scikit-learn's digits) and 2-D test functions.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from adamlab.lab import plots
from adamlab.lab.compare import DEEPOBS_GRID, compare, display_name
from adamlab.lab.executor import open_executor
from adamlab.lab.problems import get_problem
from adamlab.lab.results import Comparison
from adamlab.rules import ALIASES, OPTIMIZER_NAMES, make_rule

__all__ = ["ClaimsSettings", "measure_state_bytes", "noise_robustness", "run_claims", "write_claims_report"]

SPEED_OPTIMIZERS = ("adam", "nesterov", "adagrad", "rmsprop", "sgd")


@dataclasses.dataclass(frozen=True)
class ClaimsSettings:
    """Budgets of the claims study (:meth:`quick` is a small version for tests and smoke runs)."""

    optimizers: tuple[str, ...] = SPEED_OPTIMIZERS
    problems: tuple[str, ...] = ("digits", "rosenbrock", "ill_conditioned")
    epochs: int = 30  #: digits budget for the speed comparison
    noise_epochs: int = 10  #: digits budget per noise level
    steps: int = 500  #: test-function budget
    noise_levels: tuple[float, ...] = (0.0, 0.1, 1.0, 10.0)  #: σ in units of the initial RMS gradient
    grid: tuple[float, ...] = tuple(DEEPOBS_GRID)
    seeds: int = 5
    tune_seeds: int = 3  #: noisy problems are tuned on the mean of this many seeds (less luck)

    @classmethod
    def quick(cls) -> ClaimsSettings:
        return cls(epochs=2, noise_epochs=1, steps=60, noise_levels=(0.0, 1.0), grid=tuple(np.logspace(-4, 1, 6)),
                   seeds=2, tune_seeds=1, problems=("digits", "rosenbrock"),
                   optimizers=("adam", "adagrad", "sgd"))  # fmt: skip


# --- 1. memory --------------------------------------------------------------------------------------------


def _state_bytes(optimizer: Any) -> tuple[int, int, list[str]]:
    """Bytes of the tensors in ``optimizer.state``: the state proper, the step counters, and the state's names."""
    total, counts, names = 0, 0, set()
    for state in optimizer.state.values():
        for key, value in state.items():
            if hasattr(value, "element_size"):
                size = value.numel() * value.element_size()
                if key == "step":  # torch.optim's count (a float32 scalar tensor per parameter), not the algorithm's
                    counts += size
                else:
                    total += size
                    names.add(key)
    return total, counts, sorted(names)


def measure_state_bytes(
    names: Sequence[str] = OPTIMIZER_NAMES, shapes: Sequence[tuple[int, ...]] = ((256, 64), (64,), (10, 64), (10,))
) -> list[dict[str, Any]]:
    """Bytes of optimizer state per float32 parameter, after one step, for each optimizer name.

    Returns one row per name: ``{"optimizer", "state", "bytes_per_param", "count_bytes_per_param", "torch_optim",
    "torch_bytes_per_param", "torch_count_bytes_per_param"}`` where ``state`` lists the state entries that hold
    tensors and the torch.optim columns measure the class of the same name in torch.optim (None when it has none).
    The step counter, which torch.optim and ``adamlab.torch`` keep as one float32 scalar tensor per parameter
    tensor, is counted apart (``count_bytes_per_param``: 4 bytes per tensor, negligible per parameter).
    """
    import torch

    import adamlab.torch as faces

    rows = []
    for name in names:
        rule_name, options = ALIASES.get(name, (name, {}))
        face = faces.OPTIMIZERS.get(rule_name)
        reference = getattr(torch.optim, type(make_rule(name)).__name__, None)
        measured = [] if face is not None else [_rule_state_bytes(name, shapes)]
        for cls in (face, reference) if face is not None else (reference,):
            if cls is None:
                measured.append((None, [], None))
                continue
            params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
            opt = cls(params, **options)
            for p in params:
                p.grad = torch.randn_like(p)
            opt.step()
            total, counts, entries = _state_bytes(opt)
            size = sum(p.numel() for p in params)
            measured.append((total / size, entries, counts / size))
        rows.append({
            "optimizer": name, "state": measured[0][1], "bytes_per_param": measured[0][0],
            "count_bytes_per_param": measured[0][2],
            "torch_optim": None if reference is None else f"torch.optim.{reference.__name__}",
            "torch_bytes_per_param": measured[1][0], "torch_count_bytes_per_param": measured[1][2],
        })  # fmt: skip
    return rows


def _rule_state_bytes(name: str, shapes: Sequence[tuple[int, ...]]) -> tuple[float, list[str], float]:
    """State bytes per parameter of the rule itself on float32 NumPy arrays (for rules without a torch face)."""
    rule = make_rule(name)
    total, entries, count = 0, set(), 0
    for shape in shapes:
        param = np.zeros(shape, dtype=np.float32)
        _, state = rule.step(param, np.ones(shape, dtype=np.float32), rule.init(param), 1)
        total += sum(np.asarray(v).nbytes for v in state.values())
        entries.update(state)
        count += param.size
    return total / count, sorted(entries), 0.0


# --- 2. noise ---------------------------------------------------------------------------------------------


def noise_robustness(
    problem: str, settings: ClaimsSettings, on_progress: Callable[[str], None] | None = None, executor: Any = None
) -> dict[str, Any]:
    """Final loss per optimizer (learning rate re-tuned) for each noise level of ``settings``."""
    base = get_problem(problem)
    scale = base.gradient_scale()
    budget = {"epochs": settings.noise_epochs} if base.unit == "epoch" else {"steps": settings.steps}
    table: dict[str, dict[str, Any]] = {
        name: {"final_loss": [], "lr": [], "diverged": []} for name in settings.optimizers
    }
    for level in settings.noise_levels:
        cmp = compare(base.with_noise(level * scale), list(settings.optimizers), grid=settings.grid,
                      seeds=settings.seeds, tune_seeds=settings.tune_seeds, on_progress=on_progress,
                      executor=executor, **budget)  # fmt: skip
        for name, r in cmp.optimizers.items():
            table[name]["final_loss"].append(r.final_loss)
            table[name]["lr"].append(r.lr)
            table[name]["diverged"].append(r.diverged)
    return {"problem": base.name, "title": base.title, "gradient_rms": scale, "levels": list(settings.noise_levels),
            "sigma": [level * scale for level in settings.noise_levels], "min_value": base.min_value,
            "optimizers": table, "budget": budget}  # fmt: skip


# --- the whole study --------------------------------------------------------------------------------------


def run_claims(settings: ClaimsSettings = ClaimsSettings(), on_progress: Callable[[str], None] | None = None,
               executor: Any = None) -> dict:  # fmt: skip
    """Run all three measurements; returns ``{"memory", "speed", "noise"}`` (speed holds Comparison objects).

    ``executor``: where compare's batches run (see :func:`adamlab.lab.compare.compare`).
    """
    memory = measure_state_bytes()
    speed: dict[str, Comparison] = {}
    with open_executor(executor) as pool:  # one pool for every comparison (processes start only if used)

        def where(name: str) -> Any:
            auto = executor is None and get_problem(name).kind == "function"  # compare's own default
            return "serial" if auto or pool is None else pool

        for name in settings.problems:
            budget = {"epochs": settings.epochs} if name == "digits" else {"steps": settings.steps}
            speed[name] = compare(name, list(settings.optimizers), grid=settings.grid, seeds=settings.seeds,
                                  tune_seeds=settings.tune_seeds, on_progress=on_progress, executor=where(name),
                                  **budget)  # fmt: skip
        noise = [noise_robustness(name, settings, on_progress, where(name)) for name in settings.problems]
    return {"memory": memory, "speed": speed, "noise": noise, "settings": dataclasses.asdict(settings)}


def work_units(settings: ClaimsSettings) -> int:
    """How many ``on_progress`` calls :func:`run_claims` makes (for a progress bar)."""
    per_compare = 2 * len(settings.optimizers)
    return len(settings.problems) * per_compare * (1 + len(settings.noise_levels))


def memory_verdict(memory: list[dict[str, Any]]) -> str:
    """What the measurement says about "AdaGrad and RMSProp need more memory than Adam"."""
    b = {row["optimizer"]: row["bytes_per_param"] for row in memory}
    adam, adagrad, rmsprop = b.get("adam"), b.get("adagrad"), b.get("rmsprop")
    if None in (adam, adagrad, rmsprop):
        return "Adam, AdaGrad or RMSProp was not measured."
    more = [n for n, v in (("AdaGrad", adagrad), ("RMSProp", rmsprop)) if v > adam]
    text = (f"Measured: Adam keeps {adam:g} bytes of state per parameter (m and v), AdaGrad {adagrad:g} (the sum "
            f"of squared gradients), RMSProp {rmsprop:g} (the running mean of squared gradients; "
            "momentum or centering add 4 each). ")  # fmt: skip
    if not more:
        return text + ("The claim that AdaGrad and RMSProp need more memory than Adam is not supported: in their "
                       "standard form they need less, half of Adam's state.")  # fmt: skip
    return text + f"The claim holds for {' and '.join(more)} in this measurement."


# --- report -----------------------------------------------------------------------------------------------


def write_claims_report(claims: dict, out_dir: str | Path, fmt: str = "png") -> dict[str, Path]:
    """Write ``claims.md``, ``claims.json``, ``memory.<fmt>``, ``noise.<fmt>`` and ``loss_<problem>.<fmt>``."""
    from adamlab.lab.comparison_plots import plot_comparison_losses

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"memory": _plot_memory(claims["memory"], out / f"memory.{fmt}"),
               "noise": _plot_noise(claims["noise"], out / f"noise.{fmt}")}  # fmt: skip
    for name, cmp in claims["speed"].items():
        written[f"loss_{name}"] = plot_comparison_losses(cmp, out / f"loss_{name}.{fmt}")
    data = {**claims, "speed": {k: c.to_dict(curves=False) for k, c in claims["speed"].items()},
            "memory_verdict": memory_verdict(claims["memory"])}  # fmt: skip
    written["json"] = out / "claims.json"
    written["json"].write_text(json.dumps(_clean(data), indent=1, allow_nan=False) + "\n")
    written["report"] = out / "claims.md"
    written["report"].write_text(_markdown(claims, fmt), encoding="utf-8")
    return written


def _markdown(claims: dict, fmt: str) -> str:
    lines = [
        "# The article's claims about Adam, measured",
        "",
        "Made by `adamlab claims`. Every number below was measured by running the optimizers; none is typed in.",
        "",
        "## 1. Memory: optimizer state per parameter",
        "",
        "One step on float32 parameters, then the bytes of every tensor in the optimizer's state are summed; the",
        "step counter (one float32 scalar tensor per parameter tensor, in both) is left out.",
        "",
        "| optimizer | state entries | bytes / param (adamlab) | bytes / param (torch.optim) |",
        "|---|---|---|---|",
    ]
    for row in claims["memory"]:
        torch_b = "–" if row["torch_bytes_per_param"] is None else f"{row['torch_bytes_per_param']:.4g}"
        state = ", ".join(row["state"]) or "(none)"
        lines.append(f"| {row['optimizer']} | {state} | {row['bytes_per_param']:.4g} | {torch_b} |")
    lines += [
        "",
        memory_verdict(claims["memory"]),
        "",
        f"![memory](memory.{fmt})",
        "",
        "## 2. Robustness to gradient noise",
        "",
        "Gaussian noise σ·ξ is added to every gradient, σ = level × the RMS gradient at the initialisation. "
        "At each level every optimizer's learning rate is re-tuned on the grid (mean final training loss over the "
        "tuning seeds), then "
        "the mean final loss over the seeds is reported (noise-free loss; † = diverged on some seed).",
        "",
        _noise_budget(claims["settings"]),
        "",
    ]
    for study in claims["noise"]:
        lines += [f"### {study['title']} — RMS gradient at the start {study['gradient_rms']:.3g}", "",
                  "| optimizer | " + " | ".join(f"σ = {lv:g}×" for lv in study["levels"]) + " |",
                  "|---|" + "---|" * len(study["levels"])]  # fmt: skip
        for name, row in study["optimizers"].items():
            cells = [f"{v:.4g}{' †' if d else ''}" for v, d in zip(row["final_loss"], row["diverged"], strict=True)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"![noise](noise.{fmt})", "", "## 3. Speed of convergence: steps to a target", ""]
    for name, cmp in claims["speed"].items():
        lines += [f"### {cmp.problem.title}", "", cmp.protocol(), "", f"Target: {cmp.target_rule}.", ""]
        lines += ["| optimizer | tuned lr | final loss | steps to target | diverged |", "|---|---|---|---|---|"]
        for key, r in cmp.optimizers.items():
            reached = "not reached" if r.steps_to_target is None else str(r.steps_to_target)
            lines.append(f"| {key} | {r.lr:.3g} | {r.final_loss:.5g} | {reached} | {'yes' if r.diverged else 'no'} |")
        lines += ["", f"![loss](loss_{name}.{fmt})", "", f"*{cmp.disclaimer}*", ""]
    return "\n".join(lines)


def _noise_budget(settings: dict[str, Any]) -> str:
    """Say the noise study's budget, and that it is shorter than the speed study's when it is."""
    noise, speed = settings["noise_epochs"], settings["epochs"]
    shorter = (f"shorter than the {speed} epochs of the speed section below, since every level re-tunes every "
               "optimizer" if noise < speed else f"the speed section below uses {speed}")  # fmt: skip
    return (f"Budget: {noise} epoch{'s' if noise != 1 else ''} per noise level on learning problems ({shorter}); "
            f"{settings['steps']} steps on test functions, as in the speed section.")  # fmt: skip


def _plot_memory(memory: list[dict[str, Any]], out: Path) -> Path:
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    names = [row["optimizer"] for row in memory]
    values = [row["bytes_per_param"] for row in memory]
    bars = ax.bar(names, values, color=["C0" if "adam" in n else "C7" for n in names])
    ax.bar_label(bars, fmt="%.3g")
    ax.tick_params(axis="x", labelrotation=30)
    ax.set(ylabel="state bytes per parameter (float32)", title="Optimizer state per parameter, measured after one step")
    ax.grid(alpha=0.3, axis="y")
    return plots.save_figure(fig, out)


def _plot_noise(studies: list[dict[str, Any]], out: Path) -> Path:
    fig = Figure(figsize=(5.0 * len(studies), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(studies)))
    for ax, study in zip(axes, studies, strict=True):
        offset = study["min_value"] or 0.0
        levels = np.asarray(study["levels"], dtype=float)
        x = np.where(levels > 0, levels, levels[levels > 0].min() / 10 if (levels > 0).any() else 1.0)
        floor = 1e-12 if study["min_value"] is not None else None  # f − f* below it: converged
        for i, (name, row) in enumerate(study["optimizers"].items()):
            y = np.asarray(row["final_loss"], dtype=float) - offset
            ax.plot(x, y if floor is None else np.maximum(y, floor), "o-", color=f"C{i}",
                    label=display_name(name, _rule(name)))  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [f"{v:g}" for v in levels]
        ax.set_xticks(x, ticks)
        what = "final loss" if study["min_value"] is None else "final f − f* (≤ 1e-12 drawn at 1e-12)"
        ax.set(xlabel="noise σ / RMS gradient at start", ylabel=what,
               title=study["title"])  # fmt: skip
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.suptitle("Robustness to gradient noise (learning rate re-tuned at each level)")
    return plots.save_figure(fig, out)


def _rule(name: str) -> Any:
    return make_rule(name)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value
