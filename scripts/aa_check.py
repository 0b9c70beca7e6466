"""A/A check of the cost protocol: benchmark the same suite twice and compare every cost ratio between the runs.

    python scripts/aa_check.py [SUITE] [--protocol rounds|instructions] [--runs 2] [--set KEY=VALUE ...]
                               [--pin CPUS] [--max-wall-s 60] [--metrics time_median_s ...] [--keep DIR]

Each run is a separate ``ablate bench SUITE`` process writing to a fresh results
folder (nothing is reused between runs). From each run, every model's cost
relative to its baseline is taken exactly as the report computes it
(:func:`ablate.analysis.report.cost.cost_verdicts`: the median paired ratio over
interleaved rounds). Two runs agree on a ratio when they differ by at most the
tolerance of its length: 5 % at L >= 256 and 10 % below (``--tolerance``). The
check passes when every ratio of the chosen metrics agrees and no run took longer
than ``--max-wall-s`` seconds.

It prints one line per ratio and, per length, the noise floor of the protocol:
the median and the largest disagreement between the runs. Run it on a quiet
machine; ``docs/measurement.md`` lists the settings worth comparing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ablate.results.rounds_table import load_rounds  # noqa: E402
from ablate.analysis.report.context import report_settings  # noqa: E402
from ablate.analysis.report.cost import JUDGED, cost_verdicts  # noqa: E402
from ablate.analysis.stats import baseline_of, grid_axes  # noqa: E402
from ablate.results.store import load_results  # noqa: E402

#: The metric each protocol measures in interleaved rounds (what the check judges by default).
PROTOCOL_METRIC = {"rounds": "time_median_s", "instructions": "instructions"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", nargs="?", default=str(ROOT / "suites" / "quickstart.toml"),
                        help="suite file with a [measure] section (default: the quick start)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOL_METRIC), default=None,
                        help="sets measure.protocol (default: the suite's)")
    parser.add_argument("--runs", type=int, default=2, help="independent runs; every pair is compared (default 2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a suite override for every run, e.g. measure.sample_s=0.05")
    parser.add_argument("--pin", default=None, metavar="CPUS",
                        help="run each benchmark on these CPUs only (e.g. 1 or 0,1): thread pinning")
    parser.add_argument("--max-wall-s", type=float, default=60.0, help="longest a run may take (default 60)")
    parser.add_argument("--metrics", nargs="+", default=None, choices=list(JUDGED),
                        help="ratios that must agree (default: the protocol's own figure)")
    parser.add_argument("--tolerance", action="append", default=[], metavar="LENGTH:FRACTION",
                        help="largest disagreement at lengths >= LENGTH (default 256:0.05 and 0:0.10)")
    parser.add_argument("--keep", default=None, metavar="DIR", help="keep the runs' results folders under DIR")
    parser.add_argument("--from", dest="reuse", default=None, metavar="DIR",
                        help="benchmark nothing: compare the runs kept under DIR by an earlier --keep")
    return parser.parse_args(argv)


def tolerances(items: list[str]) -> list[tuple[int, float]]:
    """``[(length, fraction), ...]`` longest length first: a length takes the first bound it reaches."""
    pairs = [(int(a), float(b)) for a, b in (item.split(":") for item in items)] or [(256, 0.05), (0, 0.10)]
    return sorted(pairs, reverse=True)


def tolerance_at(length: int, bounds: list[tuple[int, float]]) -> float:
    return next(fraction for minimum, fraction in bounds if length >= minimum)


def bench(args: argparse.Namespace, folder: Path, overrides: list[str]) -> tuple[int, float]:
    """One ``ablate bench`` run into ``folder``; ``(exit status, wall seconds)``."""
    command = [sys.executable, "-m", "ablate", "bench", args.suite, "--results", str(folder)]
    for override in overrides:
        command += ["--set", override]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p)}
    pin = {int(c) for c in args.pin.split(",")} if args.pin else None
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(folder / "bench.log", "w") as log:
        done = subprocess.run(command, env=env, preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None,
                              stdout=log, stderr=subprocess.STDOUT)
    return done.returncode, time.perf_counter() - started


def ratios(folder: Path) -> pd.DataFrame:
    """Every cost ratio of one run, as the report computes it."""
    results = next(p.parent for p in folder.rglob("results.sqlite"))
    frame = load_results(results)
    frame = frame[frame["kind"].eq("measure")]
    axes = grid_axes(frame)
    return cost_verdicts(frame, load_rounds(results), axis=axes[0], baseline=baseline_of(frame, axes),
                         alpha=report_settings(frame)["alpha"])


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    overrides = list(args.set) + ([f"measure.protocol={args.protocol}"] if args.protocol else [])
    protocol = args.protocol or next((o.split("=", 1)[1] for o in args.set if o.startswith("measure.protocol=")),
                                     "rounds")
    metrics = args.metrics or [PROTOCOL_METRIC[protocol]]
    bounds = tolerances(args.tolerance)
    root = Path(args.reuse or args.keep or tempfile.mkdtemp(prefix="ablate-aa-"))
    runs, walls, ok = [], [], True
    folders = sorted(root.glob("run*")) if args.reuse else [root / f"run{i + 1}" for i in range(args.runs)]
    for index, folder in enumerate(folders):
        if not args.reuse:
            code, wall = bench(args, folder, overrides)
            print(f"run {index + 1}: ablate bench exited {code} after {wall:.1f} s (limit {args.max_wall_s:g} s); "
                  f"its output: {folder / 'bench.log'}", flush=True)
            ok &= code == 0 and wall <= args.max_wall_s
            walls.append(wall)
        runs.append(ratios(folder))
    keys = [c for c in runs[0].columns if c not in ("baseline", "n", "estimate", "low", "high", "verdict", "margin",
                                                     "paired_by", "family")]
    settings = ", ".join(overrides) or "as in the suite"
    print(f"\nsuite {args.suite}, protocol {protocol}, settings: {settings}, pinned to CPUs {args.pin or 'any'}")
    floors: dict[tuple[str, int], list[float]] = {}
    for first in range(len(runs)):
        for second in range(first + 1, len(runs)):
            both = runs[first].merge(runs[second], on=keys, suffixes=("_1", "_2"))
            for row in both.to_dict("records"):
                gap = abs(row["estimate_1"] / row["estimate_2"] - 1)
                bound = tolerance_at(int(row["eval_length"]), bounds)
                judged = row["metric"] in metrics
                if judged:
                    floors.setdefault((row["metric"], int(row["eval_length"])), []).append(gap)
                    ok &= bool(gap <= bound)
                where = ", ".join(f"{k}={row[k]}" for k in keys if k not in ("metric", "eval_length", "kind"))
                mark = ("ok " if gap <= bound else "BAD") if judged else "   "
                print(f"{mark} runs {first + 1}/{second + 1} {row['metric']:<17} L={int(row['eval_length']):<5} "
                      f"{where}: {row['estimate_1']:.3f}x [{row['low_1']:.3f}, {row['high_1']:.3f}] vs "
                      f"{row['estimate_2']:.3f}x [{row['low_2']:.3f}, {row['high_2']:.3f}]: {100 * gap:.3g}% apart "
                      f"(tolerance {100 * bound:g}%)")
    print("\nnoise floor (disagreement between the runs' ratios):")
    for (metric, length), gaps in sorted(floors.items()):
        print(f"  {metric} L={length}: median {100 * float(np.median(gaps)):.3g}%, largest {100 * max(gaps):.3g}% "
              f"over {len(gaps)} ratios (tolerance {100 * tolerance_at(length, bounds):g}%)")
    if walls:
        print(f"wall time per run: {', '.join(f'{w:.1f} s' for w in walls)}; results in {root}")
    print("A/A check " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
