"""``adamlab bench step``: time one optimizer step against torch.optim and the machine's streaming ceiling."""

from __future__ import annotations

import argparse
import json

from adamlab.cli.arguments import integer
from adamlab.cli.progress import progress

ORDER = 70


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from adamlab.lab.step_benchmark import DEFAULT_LAYOUTS, MAX_PARAMS, MAX_REPEAT, RULES

    parser = subparsers.add_parser(
        "bench",
        help="benchmarks (bench step: one optimizer step against torch.optim and the streaming ceiling)",
        description="Benchmarks of adamlab's kernels.",
    )
    inner = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    step = inner.add_parser(
        "step",
        help="time one optimizer step per layout and rule, in one process",
        description="For each layout and rule, time torch.optim's for-loop, foreach and fused steps, adamlab's "
        "(gradients fresh from autograd; gradients in the flat buffer; the same with nonfinite='ignore', "
        "i.e. torch.optim's semantics) and an in-place streaming pass over the same bytes (the ceiling), "
        "round-robin with the cache flushed before every sample; print Mparam/s, GB/s, percent of the "
        "ceiling, the ratio to torch fused (foreach where torch has no fused kernel) and the peak extra "
        "memory of one step. The default run needs ~8 GB of memory and a few minutes.",
    )
    step.add_argument(
        "--layouts",
        default=",".join(DEFAULT_LAYOUTS),
        metavar="A,B",
        help=f"comma-separated: resnet50, gpt2-small or NxM such as 10000x1k, at most {MAX_PARAMS:,} parameters "
        f"each (default {','.join(DEFAULT_LAYOUTS)})",
    )
    step.add_argument(
        "--rules",
        default=",".join(RULES),
        metavar="A,B",
        help=f"comma-separated, from {', '.join(RULES)} (default all)",
    )
    step.add_argument(
        "--repeat",
        type=integer("--repeat", 1, MAX_REPEAT),
        default=5,
        help=f"timed samples per case, 1 to {MAX_REPEAT:,}; best is reported (default 5)",
    )
    step.add_argument("--no-flush", action="store_true", help="do not flush the cache before each sample")
    step.add_argument("--no-memory", action="store_true", help="skip the second pass that measures peak memory")
    step.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adamlab.lab.step_benchmark import format_table, run_benchmark

    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    rules = [name.strip().lower() for name in args.rules.split(",") if name.strip()]
    if not layouts or not rules:
        raise ValueError("give at least one layout and one rule")
    passes = 1 if args.no_memory else 2
    with progress(passes * len(layouts) * len(rules), "bench step") as bar:
        report = run_benchmark(
            layouts,
            rules,
            args.repeat,
            flush=not args.no_flush,
            memory=not args.no_memory,
            on_pair=lambda phase, result: bar.update(),
        )
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0
