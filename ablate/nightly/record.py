"""The new commit's numbers of a same-job comparison, saved as an asv result file (asv's own writer).

The dashboard and the next night's "previous benchmarked commit" read asv's
results folder; :func:`save_head_results` writes the new commit's side of
:func:`ablate.nightly.continuous.compare_commits` there with
:class:`asv.results.Results`, every round a sample (asv computes its own
statistics from them). The old commit's side is not saved: its history holds the
numbers its own night measured.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ablate.nightly.continuous import Outcome


def env_name(python: str) -> str:
    """asv's name of the existing-Python environment of ``python`` (as ``asv run --python=PATH`` names it)."""
    from asv.environment import get_env_name

    return get_env_name("existing", os.path.abspath(python).replace(os.path.sep, "_"), {}, {})


def save_head_results(results_dir: Path, machine: str, commit: str, date_ms: int, python: str,
                      benchmarks: Sequence[dict[str, Any]], outcomes: Sequence[Outcome]) -> Path:
    """Write ``commit``'s measured values (``outcome.head_values``) as an asv result file of ``machine``.

    Args:
        benchmarks: the new commit's benchmark list (worker ``list``: name, params, version, type).
        outcomes: the comparison's outcomes; a combination without one is recorded as skipped (NaN).

    Returns:
        The file written.
    """
    from asv.results import Results, get_filename
    from asv.runner import BenchmarkResult

    by_case = {(o.case.benchmark, o.case.params): o for o in outcomes}
    results = Results({"machine": machine, "python": python}, {}, commit, date_ms, python, env_name(python), {})
    for bench in benchmarks:
        combos = list(itertools.product(*bench["params"])) if bench["params"] else [()]
        values, samples, numbers = [], [], []
        for combo in combos:
            outcome = by_case.get((bench["name"], tuple(combo)))
            measured = outcome is not None and outcome.status == "compared" and outcome.head_values
            if not measured:
                values.append(None if outcome is not None and outcome.status == "failed" else math.nan)
                samples.append(None)
                numbers.append(None)
                continue
            head = [v for v in outcome.head_values if math.isfinite(v)]
            values.append(sorted(head)[len(head) // 2])
            samples.append(head)
            numbers.append(1)
        if all(outcome is None for outcome in (by_case.get((bench["name"], tuple(c))) for c in combos)):
            continue  # not compared at all tonight: keep whatever history has
        entry = {"name": bench["name"], "params": bench["params"], "version": bench["version"]}
        results.add_result(entry, BenchmarkResult(values, samples, numbers, 0, "", None), record_samples=True)
    results.save(str(results_dir))
    return Path(results_dir) / get_filename(machine, commit, env_name(python))
