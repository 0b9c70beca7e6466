"""Harness overhead and process-pool speed-up, measured in one run.

    python scripts/bench_runner.py [--runs 8] [--steps 150]

1. Overhead: a suite of ``--runs`` runs on the local executor; its wall time
   divided by the sum of the runs' pure training + evaluation time (1.00 = none).
2. Speed-up: the same suite (fresh results folder) with ``--executor process
   --workers 2`` against ``--workers 1``; the ratio of wall times.
Run it on an otherwise idle machine: the numbers are ratios within this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ablate.runner import run_plan
from ablate.suite import load_plan

SUITE = """
name = "bench-runner"
seeds = {seeds}
task = {{ name = "order" }}
[model]
d_model = 64
num_heads = 4
num_layers = 2
[train]
steps = {steps}
batch_size = 32
length = 32
[eval]
multiples = [1, 2]
[grid]
encoding = ["sinusoidal", "alibi"]
pooling = ["mean", "cls"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="a multiple of 4")
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-runner.toml"
        path.write_text(SUITE.format(seeds=list(range(max(1, args.runs // 4))), steps=args.steps))
        plan = load_plan(str(path))
        print(f"{len(plan.runs)} runs, {args.steps} steps each")
        results = {}
        for label, executor, workers in (("local", "local", 1), ("process x1", "process", 1), ("process x2", "process", 2)):
            started = time.perf_counter()
            summary = run_plan(plan, Path(tmp) / label.replace(" ", "-"), executor=executor, workers=workers,
                               progress=False)
            wall = time.perf_counter() - started
            results[label] = (wall, summary.work_s)
            print(f"{label:<12} wall {wall:7.1f}s  sum of run work {summary.work_s:7.1f}s  "
                  f"wall / work {wall / summary.work_s:5.3f}")
        speedup = results["process x1"][0] / results["process x2"][0]
        print(f"\nharness overhead (local): {results['local'][0] / results['local'][1]:.3f}x")
        print(f"--workers 2 vs --workers 1: {speedup:.2f}x faster")


if __name__ == "__main__":
    main()
