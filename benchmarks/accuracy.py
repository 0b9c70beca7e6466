"""Accuracy after a short deterministic training run, per encoding x pooling, tracked like speed.

``setup_cache`` trains every train run of the nightly suite once (its first
seed, on the CPU with the suite's thread count) through
:func:`ablate.run.train.train_and_evaluate`, the same function ``ablate run`` uses,
and asv then reads one number per encoding x pooling x evaluation length from
the cache. The suite's ``[task]``, ``[model]``, ``[train]`` and ``[eval]``
sections are the whole recipe (a tiny model, a few hundred steps: a few seconds
per run), so a change in accuracy is a change in the library, not in the benchmark.

Higher is better here, unlike every other asv number, and what matters is points,
not a ratio: ``ablate nightly`` flags an absolute *drop* of ``--accuracy-drop`` or
more (:mod:`ablate.nightly.results`, ``docs/nightly.md``).
"""

from __future__ import annotations

import math
from typing import Any

from .common import accuracy_params, accuracy_runs, apply_threads, recipe_version

PARAMS, PARAM_NAMES = accuracy_params()

Results = dict[tuple[str, str], dict[str, Any]]


class Accuracy:
    """``track_accuracy(encoding, pooling, eval_length)``: test accuracy on the suite's task."""

    params = PARAMS
    param_names = PARAM_NAMES
    unit = "accuracy"
    timeout = 60

    def setup_cache(self) -> Results:
        from ablate.run.train import train_and_evaluate

        apply_threads()
        results: Results = {}
        for key, run in accuracy_runs().items():
            status, reason, rows = train_and_evaluate(run.config)
            scored = [row for row in rows if row.metric == "accuracy"]
            results[key] = {
                "status": status,
                "reason": reason,
                "accuracy": {row.eval_length: row.value for row in scored},
                "why": {row.eval_length: row.reason for row in scored if row.status != "ok"},
            }
        return results

    setup_cache.timeout = 900  # type: ignore[attr-defined]  # every run, one after the other

    def setup(self, results: Results, encoding: str, pooling: str, eval_length: int) -> None:
        entry = results.get((encoding, pooling))
        if entry is None:
            raise NotImplementedError(f"the nightly suite has no training run for {encoding} x {pooling}")
        if entry["status"] == "unsupported":
            raise NotImplementedError(f"{encoding} x {pooling}: {entry['reason']}")
        value = entry["accuracy"].get(eval_length)
        if entry["status"] == "ok" and (value is None or math.isnan(value)):
            raise NotImplementedError(f"{encoding} x {pooling} at length {eval_length}: {entry['why'].get(eval_length)}")

    def track_accuracy(self, results: Results, encoding: str, pooling: str, eval_length: int) -> float:
        entry = results[(encoding, pooling)]
        if entry["status"] != "ok":  # diverged: a visible failure on the dashboard, not a skip
            raise RuntimeError(f"{encoding} x {pooling}: training {entry['status']}: {entry['reason']}")
        return float(entry["accuracy"][eval_length])


# asv's version: the training recipe in the suite and this code (a change starts a new series).
Accuracy.version = recipe_version("accuracy", Accuracy, accuracy_runs)
