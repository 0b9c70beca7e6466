"""The verdicts' error rates and power on the data small models produce: the table in docs/statistics.md.

Simulates paired per-seed accuracies (tests/families.py: normal, learn-or-fail exact and
noisy, skewed, ties, zero spread), looks at the verdict of :func:`ablate.analysis.stats.verdict.judge`
after every round of seeds, and counts a path as wrong if it is ever wrong (as adaptive
seeds would stop there).

    python scripts/soundness_table.py --paths 4000          # markdown table on stdout
"""

from __future__ import annotations

import argparse
import math
import zlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from families import EFFECTS, FIVE_MARGINS, NULLS, Scenario  # noqa: E402

from ablate.analysis.stats.verdict import BETTER, EQUIVALENT, WORSE, judge  # noqa: E402


def rates(scenario: Scenario, looks: tuple[int, ...], paths: int, alpha: float, seed: int) -> dict[str, float]:
    """Share of paths ever called better, worse, equivalent; and decided correctly at the last look."""
    rng = np.random.default_rng(seed)
    counts = {BETTER: 0, WORSE: 0, EQUIVALENT: 0, "last": 0}
    right = BETTER if scenario.difference > 0 else WORSE
    for _ in range(paths):
        t, b = scenario.treatment(rng, looks[-1]), scenario.baseline(rng, looks[-1])
        verdicts = [judge(t[:n], b[:n], metric="accuracy", alpha=alpha).verdict for n in looks]
        for verdict in (BETTER, WORSE, EQUIVALENT):
            counts[verdict] += verdict in verdicts
        counts["last"] += verdicts[-1] == right
    return {k: v / paths for k, v in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=2000, help="simulated paths per row")
    parser.add_argument("--alpha", type=float, default=0.05, help="error rate of one comparison")
    args = parser.parse_args()
    short, long = (4, 8, 12), (3, 6, 9, 12, 15, 20, 25, 30)
    se = math.sqrt(args.alpha * (1 - args.alpha) / args.paths)
    print(f"alpha = {args.alpha}, {args.paths} paths per row (Monte-Carlo standard error at alpha: {se:.4f})\n")
    print("| data (true mean difference) | seeds looked at | called better or worse | called equivalent "
          "| decided the right way at the last look |")
    print("|---|---|---:|---:|---:|")
    for group, looks in ((NULLS, short), (NULLS[1:4], long), (FIVE_MARGINS, short), (FIVE_MARGINS, long),
                         (EFFECTS, short), (EFFECTS, long)):
        for scenario in group:
            r = rates(scenario, looks, args.paths, args.alpha, seed=zlib.crc32(scenario.name.encode()))
            decided = "—" if scenario.difference == 0 else f"{r['last']:.3f}"
            print(f"| {scenario.name} ({scenario.difference:+.2f}) | {', '.join(map(str, looks))} | "
                  f"{r[BETTER] + r[WORSE]:.3f} | {r[EQUIVALENT]:.3f} | {decided} |")


if __name__ == "__main__":
    main()
