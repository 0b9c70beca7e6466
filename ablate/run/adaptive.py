"""Adaptive seeds: run every cell at ``seeds.min``, then add seeds only where they can still decide something.

A suite with ``seeds = { min = 4, max = 12, step = 4 }`` is run in rounds. After
each round the comparisons of :mod:`ablate.analysis.stats.decisions` are evaluated on
everything stored; a cell gets the next ``step`` seeds when it takes part in an
undecided comparison or its learn rate is still open, and stops otherwise. The
rounds end when nothing is open or the cap is reached. The verdicts' confidence
sequences are valid at every number of seeds, so stopping when decided costs no
error rate. What each cell took is read back from the store by the report.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any, Callable

import pandas as pd

from ablate.analysis.feasibility import learned_threshold
from ablate.analysis.report.context import choose_main_metric
from ablate.analysis.stats.decisions import cells_needing_seeds, comparisons, learn_status
from ablate.suite import Plan, RunSpec
from ablate.suite.expand import run_id
from ablate.suite.schema import ReportSection, SeedRange


def cell_of(spec: RunSpec) -> str:
    """A run's cell: the hash of its config without the seed."""
    return run_id({k: v for k, v in spec.config.items() if k != "seed"})


def seed_steps(seeds: SeedRange) -> tuple[int, ...]:
    """Seeds per cell after each round: ``min``, ``min + step``, ..., ``max``."""
    step = seeds.step or seeds.min
    steps = list(range(seeds.min, seeds.max + 1, step))
    return tuple(steps if steps[-1] == seeds.max else [*steps, seeds.max])


#: ``undecided(frame) -> run ids`` whose cells still need seeds (default: the suite's comparisons).
Undecided = Callable[[Any], set[str]]


def run_adaptive(plan: Plan, run_round: Callable[[Plan], Any], load: Callable[[], Any],
                 undecided: Undecided | None = None) -> Any:
    """Run ``plan`` (whose suite has a seed range) in rounds; returns the last round's result.

    Args:
        run_round: runs a sub-plan (resuming: stored runs are skipped) and returns its summary.
        load: the stored results frame (:func:`ablate.results.store.load_results`).
        undecided: the run ids whose cells take part in an undecided question (a claim's
            inconclusive predicates); default :func:`undecided_comparisons`.
    """
    steps = seed_steps(plan.suite.seeds)
    by_cell: dict[str, list[RunSpec]] = defaultdict(list)
    for spec in plan.train_runs():
        by_cell[cell_of(spec)].append(spec)
    for specs in by_cell.values():
        specs.sort(key=lambda s: s.config["seed"])
    taken = {cell: steps[0] for cell in by_cell}
    active = set(by_cell)
    question = undecided or (lambda frame: undecided_comparisons(frame, plan.suite.report))
    cell_of_run = {spec.run_id: cell for cell, specs in by_cell.items() for spec in specs}
    summary: Any = None
    for index in range(len(steps)):
        runs = [s for cell, specs in by_cell.items() for s in specs[: taken[cell]]]
        runs += plan.measure_runs() if index == 0 else []
        summary = run_round(dataclasses.replace(plan, runs=runs))
        still_open = {cell_of_run[run] for run in question(load()) if run in cell_of_run}
        active &= still_open
        if not active or index + 1 == len(steps):
            break
        for cell in active:
            taken[cell] = steps[index + 1]
    return summary


def undecided_comparisons(frame: pd.DataFrame, report: ReportSection) -> set[str]:
    """Run ids of the cells more seeds could decide something for
    (:func:`ablate.analysis.stats.decisions.cells_needing_seeds`)."""
    if not len(frame):
        return set()
    metric = choose_main_metric(frame, report.main_metric)
    if metric is None:
        return set()
    threshold = learned_threshold(metric, report.learned_threshold)
    status = learn_status(frame, metric, threshold, report.alpha)
    table = comparisons(frame, metric, alpha=report.alpha, margins=report.margins, threshold=threshold,
                        status=status)
    needing = cells_needing_seeds(table, status)
    if needing.empty:
        return set()
    keys = [c for c in needing.columns if c not in ("open_comparisons", "learn_open")]
    wanted = set(map(tuple, needing[keys].astype(str).to_numpy()))
    train = frame[frame["kind"].eq("train")].drop_duplicates("run_id")
    return {run for run, key in zip(train["run_id"], map(tuple, train[keys].astype(str).to_numpy())) if key in wanted}


__all__ = ["cell_of", "run_adaptive", "seed_steps", "undecided_comparisons"]
