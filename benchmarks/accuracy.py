"""Accuracy per encoding after a short deterministic training run, tracked like speed.

``setup_cache`` trains the nightly suite's run once per encoding (its first
pooling, its first seed, on the CPU with the suite's thread count) through
:func:`ablate.train.train_and_evaluate`, the same function ``ablate run`` uses,
and asv then reads one number per encoding x evaluation length from the cache.
The suite's ``[model]``, ``[train]`` and ``[eval]`` sections are the whole
recipe (a tiny model, a few hundred steps: a few seconds per encoding), so a
change in accuracy is a change in the library, not in the benchmark.

Higher is better here, unlike every other asv number: ``ablate nightly`` flags a
*drop* beyond the threshold as the regression (see ``docs/nightly.md``).
"""

from __future__ import annotations

import math
from typing import Any

from .common import accuracy_params, accuracy_runs, apply_threads

PARAMS, PARAM_NAMES = accuracy_params()


class Accuracy:
    """``track_accuracy(encoding, eval_length)``: test accuracy on the suite's task."""

    params = PARAMS
    param_names = PARAM_NAMES
    unit = "accuracy"
    timeout = 60

    def setup_cache(self) -> dict[str, dict[str, Any]]:
        from ablate.train import train_and_evaluate

        apply_threads()
        results: dict[str, dict[str, Any]] = {}
        for encoding, run in accuracy_runs().items():
            status, reason, rows = train_and_evaluate(run.config)
            results[encoding] = {
                "status": status,
                "reason": reason,
                "accuracy": {row.eval_length: row.value for row in rows if row.metric == "accuracy"},
                "why": {row.eval_length: row.reason for row in rows if row.metric == "accuracy" and row.status != "ok"},
            }
        return results

    setup_cache.timeout = 900  # type: ignore[attr-defined]  # all encodings, trained one after the other

    def setup(self, results: dict[str, dict[str, Any]], encoding: str, eval_length: int) -> None:
        entry = results.get(encoding)
        if entry is None:
            raise NotImplementedError(f"the nightly suite has no training run for encoding {encoding}")
        if entry["status"] == "unsupported":
            raise NotImplementedError(f"{encoding}: {entry['reason']}")
        value = entry["accuracy"].get(eval_length)
        if entry["status"] == "ok" and (value is None or math.isnan(value)):
            raise NotImplementedError(f"{encoding} at length {eval_length}: {entry['why'].get(eval_length)}")

    def track_accuracy(self, results: dict[str, dict[str, Any]], encoding: str, eval_length: int) -> float:
        entry = results[encoding]
        if entry["status"] != "ok":  # diverged or failed: a visible failure on the dashboard, not a skip
            raise RuntimeError(f"{encoding}: training {entry['status']}: {entry['reason']}")
        return float(entry["accuracy"][eval_length])
