"""Accuracy regressions of the nightly job: an absolute drop in points, not asv's ratio.

asv judges every number by a ratio (``--factor 1.2``). For accuracy that is the
wrong rule twice over: higher is better, and a ratio cannot express "5 points
lost" (0.90 -> 0.85 is a ratio of 1.06; at 1/1.2 the rule waits for 0.75). So
``ablate nightly`` reads ``track_accuracy`` from the two commits' asv result
files itself and flags every combination whose accuracy fell by at least
``--accuracy-drop`` (default 0.03, i.e. 3 points). The accuracy runs are
deterministic (fixed seeds, frozen data), so a drop that size is a change in the
library, not noise.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

#: The asv benchmark whose numbers are accuracies (higher is better, judged in points).
ACCURACY_BENCHMARK = "accuracy.Accuracy.track_accuracy"
#: Default largest tolerated drop, in accuracy (0.03 = 3 points).
DEFAULT_MAX_DROP = 0.03


@dataclass(frozen=True)
class Drop:
    """One combination whose accuracy fell: ``name`` as asv prints it, before and after values."""

    name: str
    before: float
    after: float

    @property
    def points(self) -> float:
        """The drop in percentage points (``0.90 -> 0.85`` is 5.0)."""
        return 100.0 * (self.before - self.after)


def read_accuracies(result_file: Path, benchmark: str = ACCURACY_BENCHMARK) -> dict[str, float]:
    """``{"track_accuracy('rope', 'mean', 32)": 0.93, ...}`` from one asv result file (NaN where skipped/failed).

    asv stores a parametrized benchmark as a flat ``result`` list in the order of
    the Cartesian product of its ``params`` lists.
    """
    data = json.loads(Path(result_file).read_text())
    columns = data.get("result_columns", ["result", "params"])
    entry = data.get("results", {}).get(benchmark)
    if entry is None:
        return {}
    values, params = entry[columns.index("result")], entry[columns.index("params")]
    short = benchmark.rsplit(".", 1)[-1]
    combos = list(itertools.product(*params)) if params else [()]
    if not isinstance(values, list):
        values = [values]
    return {f"{short}({', '.join(combo)})": (math.nan if value is None else float(value))
            for combo, value in zip(combos, values)}


def accuracy_drops(before: dict[str, float], after: dict[str, float], max_drop: float = DEFAULT_MAX_DROP) -> list[Drop]:
    """Combinations measured in both whose accuracy fell by ``max_drop`` or more, worst first.

    A combination that stopped producing a number is asv's own ``failed`` mark;
    one that is new has nothing to compare with.
    """
    if not 0 < max_drop < 1:
        raise ValueError(f"the accuracy drop threshold is a fraction of 1 (0.03 = 3 points), got {max_drop}")
    drops = [Drop(name, before[name], after[name]) for name in before.keys() & after.keys()
             if not math.isnan(before[name]) and not math.isnan(after[name])
             and before[name] - after[name] >= max_drop - 1e-12]
    return sorted(drops, key=lambda drop: (-drop.points, drop.name))


def asv_results(results_dir: Path, machine: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every readable asv result file of ``machine`` with its parsed content (``machine.json`` aside)."""
    for path in sorted((Path(results_dir) / machine).glob("*.json")):
        if path.name == "machine.json":
            continue
        try:
            yield path, json.loads(path.read_text())
        except (OSError, ValueError):
            continue


def result_file(results_dir: Path, machine: str, commit: str, env_names: set[str] | None = None) -> Path | None:
    """The asv result file of ``commit`` on ``machine`` (in one of ``env_names`` if given), or ``None``."""
    for path, data in asv_results(results_dir, machine):
        if data.get("commit_hash") == commit and (env_names is None or str(data.get("env_name")) in env_names):
            return path
    return None


def compare_accuracy(results_dir: Path, machine: str, before: str, after: str, max_drop: float = DEFAULT_MAX_DROP,
                     env_names: set[str] | None = None) -> list[Drop]:
    """Accuracy drops of ``after`` against ``before`` (commit hashes) on ``machine``."""
    files = [result_file(results_dir, machine, commit, env_names) for commit in (before, after)]
    if None in files:
        return []
    return accuracy_drops(read_accuracies(files[0]), read_accuracies(files[1]), max_drop)
