"""The report of ``adamlab paper``: each figure beside the paper's claim and the verdict our runs give.

Two files with the same content: ``report.md`` (pictures linked) and ``report.html``, self-contained (each
picture embedded as base64, no script, no network), to open or send as one file. Verdicts come from the
results (:class:`~adamlab.lab.paper.figure.Claim`); nothing in the report is typed in by hand.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path

from adamlab.lab.paper.figure import FigureResult

__all__ = ["write_report"]

INTRO = (
    "The experiments of Kingma & Ba, \"Adam: A Method for Stochastic Optimization\" (ICLR 2015, §6), run again "
    "with adamlab's PyTorch optimizers. The article adamlab starts from (\"Adam optimizer: A Quick "
    "Introduction\", askpython, 2023) shows the paper's Figure 2. The paper plots training cost; so do we. "
    "Where the paper leaves a choice open (grids, seeds, dropout rates, L2) the protocol under each figure says "
    "what we chose. A verdict says whether the paper's qualitative claim held in these runs, under the stated "
    "budget and data: a quick budget or a 5,000-image MNIST is not the paper's setting."
)
_MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def _fmt(value: float) -> str:
    return "diverged" if not math.isfinite(value) else f"{value:.4g}"


def _rows(result: FigureResult) -> list[list[str]]:
    rows = []
    for panel in result.panels.values():
        for s in panel.series.values():
            rows.append([panel.name, s.label.split(" (")[0], f"{s.lr:g}", _fmt(s.final_loss),
                         f"{min(s.grid):g} … {max(s.grid):g} ({len(s.grid)})"])  # fmt: skip
    return rows


_HEAD = ["panel", "optimizer", "tuned lr", "final training cost", "grid"]
_CLAIM_HEAD = ["panel", "the paper says", "our test", "verdict", "numbers"]


def _claim_rows(result: FigureResult) -> list[list[str]]:
    return [[c.panel, c.paper, c.test, c.verdict.upper(), c.detail] for c in result.claims]


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in esc)]


def _markdown(results: Sequence[FigureResult], fmt: str, not_run: Sequence[str]) -> str:
    lines = ["# The Adam paper's experiments, reproduced", "", "Made by `adamlab paper`.", "", INTRO, ""]
    lines += _md_table(["figure", "claim", "verdict"],
                       [[r.figure, c.paper, c.verdict] for r in results for c in r.claims])  # fmt: skip
    for r in results:
        lines += ["", f"## {r.title}", ""]
        if r.panels or r.table:
            lines += [f"![{r.figure}]({r.figure}.{fmt})", ""]
        lines += _md_table(_CLAIM_HEAD, _claim_rows(r)) + [""]
        if r.panels:
            lines += _md_table(_HEAD, _rows(r)) + [""]
        lines += [*r.protocol, ""]
        lines += [f"- Runs: {r.counts.computed} computed now, {r.counts.reused} reused from the store.", ""]
        lines += [f"- Note: {n}" for n in r.notes]
        lines += [f"- Not run: {m}" for m in r.missing]
    if not_run:
        lines += ["", "## Not run", "", *(f"- {m}" for m in not_run)]
    return "\n".join(lines).rstrip() + "\n"


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path, fmt: str, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    if fmt == "pdf":
        return f'<p><a download="{path.name}" href="data:{_MIME[fmt]};base64,{data}">{html.escape(path.name)}</a></p>'
    return f'<img alt="{html.escape(alt)}" src="data:{_MIME[fmt]};base64,{data}">'


def _html(results: Sequence[FigureResult], out: Path, fmt: str, not_run: Sequence[str]) -> str:
    parts = ["<h1>The Adam paper's experiments, reproduced</h1>", "<p>Made by <code>adamlab paper</code>.</p>",
             f"<p>{html.escape(INTRO)}</p>",
             _html_table(["figure", "claim", "verdict"], [[r.figure, c.paper, c.verdict] for r in results
                                                          for c in r.claims])]  # fmt: skip
    for r in results:
        parts.append(f"<h2>{html.escape(r.title)}</h2>")
        picture = out / f"{r.figure}.{fmt}"
        if picture.is_file():
            parts.append(_image(picture, fmt, r.title))
        parts.append(_html_table(_CLAIM_HEAD, _claim_rows(r)))
        if r.panels:
            parts.append(_html_table(_HEAD, _rows(r)))
        parts += [f"<p>{html.escape(p)}</p>" for p in r.protocol]
        items = [f"Runs: {r.counts.computed} computed now, {r.counts.reused} reused from the store."]
        items += [f"Note: {n}" for n in r.notes] + [f"Not run: {m}" for m in r.missing]
        parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
    if not_run:
        parts += ["<h2>Not run</h2>", "<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in not_run) + "</ul>"]
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
             "img{max-width:100%}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;"
             "padding:.3rem .5rem;vertical-align:top;font-size:.9rem}th{background:#f3f3f3}")  # fmt: skip
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>adamlab paper report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")  # fmt: skip


def write_report(results: Sequence[FigureResult], out: Path, fmt: str = "png",
                 not_run: Sequence[str] = ()) -> dict[str, Path]:  # fmt: skip
    """Write ``report.md`` and ``report.html`` into ``out``; the figures' pictures must already be there.

    ``not_run``: one line per figure that could not run (e.g. its data is missing), listed at the end.
    """
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "report.md", out / "report.html"
    md.write_text(_markdown(results, fmt, not_run), encoding="utf-8")
    page.write_text(_html(results, out, fmt, not_run), encoding="utf-8")
    return {"markdown": md, "html": page}
