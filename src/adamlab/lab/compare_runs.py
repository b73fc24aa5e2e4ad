"""compare's runs as records: a batch of members is one task, each member one record of the store.

A problem runs K members (learning rates × seeds) as one array computation. Its result for a member can
depend on the batch in the last bits (vectorised loops treat the tail of an array with scalar code), so a
member's configuration names the batch it ran in: the problem, the rule with every hyperparameter, the
member's learning rate and seed, the budget, and the batch's learning rates and seeds. A comparison run
again with the same arguments finds every record and recomputes nothing; an interrupted one recomputes only
the batches that did not finish, with the same bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from adamlab.lab.executor import Task, timed
from adamlab.lab.problems import Problem, Runs
from adamlab.rules import Averaged, Rule

__all__ = ["COMPARE_PROTOCOL", "batch_task", "rule_identity", "run_batch", "runs_from"]

#: bump when a change to a problem's code changes what a configuration computes
COMPARE_PROTOCOL = "adamlab-compare/1"


def _plain(value: Any) -> Any:
    if isinstance(value, (Rule, Averaged)):
        return rule_identity(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def rule_identity(rule: Rule | Averaged) -> dict[str, Any]:
    """A rule as JSON data: its class and every field (an averaged rule holds its inner rule)."""
    return {"type": type(rule).__name__, **{f.name: _plain(getattr(rule, f.name)) for f in dataclasses.fields(rule)}}


def batch_task(problem: Problem, rule: Rule | Averaged, lrs: np.ndarray, seeds: np.ndarray, steps: int,
               base: dict[str, Any]) -> Task:  # fmt: skip
    """The task that runs ``rule`` on ``problem`` for members (lrs[k], seeds[k]), one record per member."""
    lrs, seeds = np.asarray(lrs, dtype=float), np.asarray(seeds, dtype=int)
    batch = {"lr": lrs.tolist(), "seeds": seeds.tolist()}
    identity = rule_identity(rule)
    configs = tuple({**base, "rule": identity, "lr": float(lr), "seed": int(s), "batch": batch}
                    for lr, s in zip(lrs, seeds, strict=True))  # fmt: skip
    return Task(run_batch, (problem, rule, lrs, seeds, steps), configs)


def run_batch(payload: tuple[Problem, Rule | Averaged, np.ndarray, np.ndarray, int]) -> list[dict[str, Any]]:
    """The executor's entry point: run the batch and split it into one result per member."""
    problem, rule, lrs, seeds, steps = payload
    out = timed(lambda: {"runs": problem.run(rule, lrs, seeds, steps)})
    runs: Runs = out["result"]["runs"]
    seconds = out["meta"]["seconds"] / max(len(lrs), 1)
    members = []
    for k in range(len(lrs)):
        result: dict[str, Any] = {
            "losses": np.ascontiguousarray(runs.losses[:, k], dtype=np.float64),
            "points": np.asarray(runs.points, dtype=np.int64),
            "diverged_at": runs.diverged_at[k],
        }
        if runs.paths is not None:
            result["path"] = np.ascontiguousarray(runs.paths[..., k], dtype=np.float64)
        members.append({"result": result, "meta": {"seconds": round(seconds, 4)}})
    return members


def runs_from(members: list[dict[str, Any]]) -> Runs:
    """The :class:`~adamlab.lab.problems.Runs` of a batch from its members' results."""
    paths = [m.get("path") for m in members]
    return Runs(
        losses=np.stack([m["losses"] for m in members], axis=1),
        points=np.asarray(members[0]["points"]),
        diverged_at=[None if m["diverged_at"] is None else int(m["diverged_at"]) for m in members],
        paths=None if paths[0] is None else np.stack(paths, axis=-1),
    )
