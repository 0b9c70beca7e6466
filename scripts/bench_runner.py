"""Harness overhead and process-pool speed-up, measured in one run.

    python scripts/bench_runner.py [--runs 8] [--steps 150]

1. Overhead: a suite of ``--runs`` runs on the local executor; its wall time
   divided by the sum of the runs' pure training + evaluation time (1.00 = none).
2. Speed-up: the same suite (fresh results folder) with ``--executor process
   --workers 2`` against ``--workers 1``; the ratio of wall times. ``--workers 1``
   gives its worker all the cores as torch threads, so this ratio is what the pool
   adds over intra-op threading; ``--workers 1 --threads 1`` (one core, the per-worker
   share of ``--workers 2``) shows how the pool scales with workers.
Each setup runs in a fresh process; run it on an otherwise idle machine: the
numbers are ratios within this run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ablate.run.runner import run_plan
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


SETUPS = {  # label: (executor, workers, threads)
    "local": ("local", 1, None),
    "process x1": ("process", 1, None),
    "process x1 t1": ("process", 1, 1),
    "process x2": ("process", 2, None),
}


def run_setup(suite_path: Path, results: Path, label: str) -> tuple[float, float]:
    """Wall time and summed run work of one setup, run in this (fresh) process."""
    executor, workers, threads = SETUPS[label]
    plan = load_plan(str(suite_path))
    started = time.perf_counter()
    summary = run_plan(plan, results, executor=executor, workers=workers, progress=False,
                       executor_options={"threads": threads})
    return time.perf_counter() - started, summary.work_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="a multiple of 4")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--setup", choices=SETUPS, help=argparse.SUPPRESS)  # child mode: one setup
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        wall, work = run_setup(args.dir / "bench-runner.toml", args.dir / args.setup.replace(" ", "-"), args.setup)
        print(json.dumps({"wall": wall, "work": work}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-runner.toml"
        path.write_text(SUITE.format(seeds=list(range(max(1, args.runs // 4))), steps=args.steps))
        print(f"{len(load_plan(str(path)).runs)} runs, {args.steps} steps each; each setup in a fresh process")
        results = {}
        for label in SETUPS:
            # A fresh process per setup: in some measurements a parent whose torch threads
            # had already run work went with 10-20% slower worker runs (cause not pinned down).
            child = subprocess.run([sys.executable, __file__, "--setup", label, "--dir", tmp],
                                   check=True, capture_output=True, text=True)
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            wall, work = results[label] = measured["wall"], measured["work"]
            print(f"{label:<14} wall {wall:7.1f}s  sum of run work {work:7.1f}s  wall / work {wall / work:5.3f}")
        print(f"\nharness overhead (local): {results['local'][0] / results['local'][1]:.3f}x")
        print(f"--workers 2 vs --workers 1: {results['process x1'][0] / results['process x2'][0]:.2f}x faster")
        print(f"--workers 2 vs --workers 1 --threads 1: "
              f"{results['process x1 t1'][0] / results['process x2'][0]:.2f}x faster")


if __name__ == "__main__":
    main()
