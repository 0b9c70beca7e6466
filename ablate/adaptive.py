"""Adaptive seeds: run every cell at ``seeds.min``, then add seeds only where a comparison is undecided.

A suite with ``seeds = { min = 3, max = 12, step = 3 }`` is run in rounds. After
each round the comparisons of :mod:`ablate.stats.decisions` (the sequential
design of :mod:`ablate.stats.sequential`, whose boundaries were fixed for exactly
these looks) are evaluated on everything stored; every cell that takes part in
an undecided comparison gets the next ``step`` seeds, the others stop. The rounds
end when nothing is undecided or the cap is reached. Each cell's seeds and why it
stopped are stored (``meta`` key ``adaptive``) for the report.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any, Callable

from ablate.report.context import choose_main_metric
from ablate.stats.decisions import NOT_JUDGED, looks_of, sequential_comparisons
from ablate.stats.sequential import UNDECIDED
from ablate.suite import Plan, RunSpec
from ablate.store import axis_column
from ablate.suite.expand import run_id

STOP_DECIDED, STOP_CAP = "decided: no open comparison or predicate needs it", "max seeds reached, still undecided"


def cell_of(spec: RunSpec) -> str:
    """A run's cell: the hash of its config without the seed."""
    return run_id({k: v for k, v in spec.config.items() if k != "seed"})


#: ``undecided(frame) -> run ids`` whose cells still need seeds (default: the suite's comparisons).
Undecided = Callable[[Any], set[str]]


def run_adaptive(plan: Plan, run_round: Callable[[Plan], Any], load: Callable[[], Any],
                 save: Callable[[dict[str, Any]], None], undecided: Undecided | None = None) -> Any:
    """Run ``plan`` (whose suite has a seed range) in rounds; returns the last round's result.

    Args:
        run_round: runs a sub-plan (resuming: stored runs are skipped) and returns its summary.
        load: the stored results frame (:func:`ablate.store.load_results`).
        save: stores the per-cell account ``{cell label: {"seeds": n, "stop": why}}``.
        undecided: the run ids whose cells take part in an undecided question (a claim's
            inconclusive predicates); default :func:`undecided_comparisons`.
    """
    seeds = plan.suite.seeds
    looks = looks_of(seeds.model_dump())
    report = plan.suite.report
    by_cell: dict[str, list[RunSpec]] = defaultdict(list)
    for spec in plan.train_runs():
        by_cell[cell_of(spec)].append(spec)
    for specs in by_cell.values():
        specs.sort(key=lambda s: s.config["seed"])
    taken = {cell: looks[0] for cell in by_cell}
    active = set(by_cell)
    stops: dict[str, str] = {}
    summary: Any = None
    for index, look in enumerate(looks):
        runs = [s for cell, specs in by_cell.items() for s in specs[: taken[cell]]]
        runs += plan.measure_runs() if index == 0 else []
        summary = run_round(dataclasses.replace(plan, runs=runs))
        frame = load()
        cell_of_run = {spec.run_id: cell for cell, specs in by_cell.items() for spec in specs}
        runs_open = (undecided or (lambda f: undecided_comparisons(f, report, looks)))(frame)
        still_open = {cell_of_run[run] for run in runs_open if run in cell_of_run}
        for cell in list(active):
            if cell not in still_open:
                stops[cell] = STOP_DECIDED
                active.discard(cell)
        if not active or index + 1 == len(looks):
            break
        for cell in active:
            taken[cell] = looks[index + 1]
    for cell in active:
        stops[cell] = STOP_CAP
    save({_label(by_cell[cell][0]): {"seeds": taken[cell], "stop": stops.get(cell, STOP_CAP)} for cell in by_cell})
    return summary


def _main_metric(frame: Any, requested: str | None) -> str | None:
    return choose_main_metric(frame, requested) if len(frame) else None


def _label(spec: RunSpec) -> str:
    return ", ".join(f"{axis_column(k)}={v}" for k, v in spec.axes.items() if k != "seed") or "all runs"


def undecided_comparisons(frame: Any, report: Any, looks: tuple[int, ...]) -> set[str]:
    """Run ids of the cells in at least one undecided comparison of the main metric."""
    metric = _main_metric(frame, report.main_metric)
    if metric is None:
        return set()
    comparisons = sequential_comparisons(frame, metric, baseline=None, alpha=report.alpha, margin=report.margin,
                                         threshold=report.learned_threshold, looks=looks, spending=report.spending)
    open_rows = comparisons[comparisons["verdict"].eq(UNDECIDED)]
    if open_rows.empty:
        return set()
    train = frame[frame["kind"].eq("train") & frame["metric"].eq(metric)]
    keys = [c for c in open_rows.columns if c in train.columns and c not in ("eval_length", "metric", "seed")
            and c not in ("axis", "baseline", "context", "n", "mean_diff", "low", "high", "verdict", "why",
                          "more_needed")]
    wanted: set[tuple[str, ...]] = set()
    for row in open_rows.to_dict("records"):
        wanted.add(tuple(str(row[k]) for k in keys))
        wanted.add(tuple(str(row["baseline"] if k == row["axis"] else row[k]) for k in keys))
    runs = train.drop_duplicates("run_id")
    return {row["run_id"] for row in runs.to_dict("records") if tuple(str(row[k]) for k in keys) in wanted}


__all__ = ["NOT_JUDGED", "cell_of", "run_adaptive", "undecided_comparisons"]
