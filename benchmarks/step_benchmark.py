"""One optimizer step, timed in one process: adamlab against torch.optim and the streaming ceiling.

The measurement lives in :mod:`adamlab.lab.step_benchmark` (also ``adamlab bench step``); this script runs it
and can keep the raw results::

    python benchmarks/step_benchmark.py                                  # every layout and rule (~10 min, ~8 GB)
    python benchmarks/step_benchmark.py --layouts 1x50M,10000x1k --rules adam --repeat 7
    python benchmarks/step_benchmark.py --json benchmarks/step_benchmark_results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from adamlab.lab.step_benchmark import DEFAULT_LAYOUTS, RULES, format_table, run_benchmark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layouts", default=",".join(DEFAULT_LAYOUTS))
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    layouts = [s.strip() for s in args.layouts.split(",") if s.strip()]
    rules = [s.strip() for s in args.rules.split(",") if s.strip()]
    t0 = time.perf_counter()

    def report(phase: str, result: dict) -> None:
        if phase != "time":
            return
        ours = [r for r in result["rows"] if r["case"].startswith("adamlab")]
        best = max(ours, key=lambda r: r["Mparam/s"])
        print(
            f"[{time.perf_counter() - t0:6.0f} s] {result['layout']:>10s} {result['rule']:9s} "
            f"adamlab {ours[0]['% ceiling']:3.0f}% of the ceiling (best variant {best['% ceiling']:3.0f}%)",
            file=sys.stderr,
            flush=True,
        )

    results = run_benchmark(layouts, rules, args.repeat, on_pair=report)
    results["meta"]["command"] = "python benchmarks/step_benchmark.py " + " ".join(argv or sys.argv[1:])
    results["meta"]["total s"] = time.perf_counter() - t0
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
