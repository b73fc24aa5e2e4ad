"""What a reproduced figure is: its panels of tuned series, its protocol, and the paper's claims checked.

A :class:`Claim` pairs the paper's qualitative statement with the test we apply to our numbers and the
verdict that test gave (``held`` is True, False, or None when the figure was not run far enough to say).
Verdicts are computed from the results by each figure's module, never written in.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from adamlab.lab.executor import RunCounts
from adamlab.lab.paper.protocol import Series
from adamlab.lab.results import finite_or_none

__all__ = ["Claim", "FigureResult", "Panel"]


@dataclasses.dataclass
class Panel:
    """One plot of a figure: tuned series on one data set."""

    name: str
    title: str
    data_source: str
    series: dict[str, Series]
    epochs: int

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "data": self.data_source, "epochs": self.epochs,
                "optimizers": {k: s.to_dict() for k, s in self.series.items()}}  # fmt: skip


@dataclasses.dataclass
class Claim:
    """The paper's statement, how we test it, and whether it held here."""

    panel: str
    paper: str
    test: str
    held: bool | None
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "held", False: "did not hold", None: "not tested"}[self.held]

    def to_dict(self) -> dict[str, Any]:
        return {"panel": self.panel, "paper": self.paper, "test": self.test, "verdict": self.verdict,
                "held": self.held, "detail": self.detail}  # fmt: skip


@dataclasses.dataclass
class FigureResult:
    """A reproduced figure: panels (or, for Fig. 4, a table of runs), protocol, claims, run counts."""

    figure: str
    title: str
    budget: str
    protocol: list[str]
    panels: dict[str, Panel] = dataclasses.field(default_factory=dict)
    claims: list[Claim] = dataclasses.field(default_factory=list)
    counts: RunCounts = dataclasses.field(default_factory=RunCounts)
    notes: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    table: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        verdicts = ", ".join(f"{c.panel}: {c.verdict}" for c in self.claims) or "no claims tested"
        return (f"FigureResult({self.figure!r}, budget={self.budget!r}, panels={list(self.panels)}, {verdicts}, "
                f"runs computed={self.counts.computed} reused={self.counts.reused})")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON data: ``{"figure", "optimizers", "runs", ...}``; ``optimizers`` holds the first panel's series."""
        first = next(iter(self.panels.values()), None)
        out: dict[str, Any] = {"figure": self.figure, "title": self.title, "budget": self.budget}
        if first is not None:
            out["optimizers"] = {k: {"lr": s.lr, "final_loss": s.final_loss, "curve": s.curve().tolist(),
                                     "label": s.label} for k, s in first.series.items()}  # fmt: skip
        out.update(
            runs=self.counts.to_dict(),
            panels={name: p.to_dict() for name, p in self.panels.items()},
            claims=[c.to_dict() for c in self.claims],
            protocol=self.protocol,
            notes=self.notes,
            missing=self.missing,
        )
        if self.table is not None:
            out["results"] = self.table
        out.update(self.extra)
        return finite_or_none(_plain(out))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return None
    return value
