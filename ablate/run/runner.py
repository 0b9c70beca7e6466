"""Executing a plan: skip stored runs, run the rest on an executor, store each record as it arrives.

Executors (:mod:`ablate.run.executors`, a registry; ``--executor``):
    * ``local`` - sequentially in this process.
    * ``process`` - a spawn-based process pool of ``--workers N``; each worker
      gets ``cores // N`` torch threads so workers never oversubscribe the cores.
    * ``ray`` - Ray tasks on a cluster (:mod:`ablate.run.executors.ray_executor`).

Measurement runs never overlap with anything: they run after the training runs,
in the driver process, a group of them at a time in interleaved rounds (:mod:`ablate.measure.run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ablate.core import fingerprint
from ablate.run.adaptive import run_adaptive
from ablate.run.checkpoints import write as write_checkpoint
from ablate.run.executors import EXECUTORS, Executor, create_executor, execute_spec
from ablate.run.executors.local import LocalExecutor
from ablate.run.executors.process import ProcessExecutor, threads_per_worker
from ablate.measure.run import measure_records, with_partners
from ablate.run.progress import create_progress
from ablate.results.store import Record, Store, axis_column, load_results
from ablate.suite import Plan, RunSpec
from ablate.suite.schema import SeedRange
from ablate.run.variants.run import check_checkpoints, run_variants

#: Statuses that are final: a resumed suite skips them (``--rerun-failed`` retries the others,
#: ``--rerun-stale`` the runs of other code, :mod:`ablate.core.fingerprint`).
FINAL_STATUSES = {"ok", "unsupported", "diverged"}

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ProcessExecutor", "RunOptions", "RunSummary", "create_executor",
           "execute_spec", "pending_runs", "record_meta", "run_plan", "stale_line", "stale_run_ids",
           "threads_per_worker"]


@dataclass
class RunSummary:
    """What a ``run_plan`` call did."""

    results_dir: Path
    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    work_s: float = 0.0
    interrupted: bool = False
    #: (run, variant) evaluations done from stored checkpoints (:mod:`ablate.run.variants`).
    variants: int = 0

    @property
    def any_failed(self) -> bool:
        return any(self.counts.get(s, 0) for s in ("failed", "oom"))

    @property
    def overhead(self) -> float:
        """Suite wall time / sum of the runs' pure work time (1.0 = no overhead)."""
        return self.wall_s / self.work_s if self.work_s else float("nan")


@dataclass(frozen=True)
class RunOptions:
    """How :func:`run_plan` runs a plan (its keyword arguments), passed as one value to every round."""

    executor: str = "local"
    workers: int = 1
    rerun_failed: bool = False
    kinds: tuple[str, ...] = ("train", "measure")
    progress: bool | None = None
    on_record: Callable[[Record], None] | None = None
    executor_options: dict[str, Any] | None = None
    rerun_stale: bool = False


def pending_runs(plan: Plan, store: Store, *, rerun_failed: bool = False, rerun_stale: bool = False) -> list[RunSpec]:
    """Runs of ``plan`` not yet stored with a final status (or, with ``rerun_stale``, stored by other code)."""
    stored = store.statuses()
    stale = stale_run_ids(store) if rerun_stale else set()
    keep = []
    for run in plan.runs:
        status = stored.get(run.run_id)
        if status is None or (rerun_failed and status not in FINAL_STATUSES) or run.run_id in stale:
            keep.append(run)
    return keep


def stale_line(plan: Plan, results_root: str | Path, *, kinds: tuple[str, ...] = ("train", "measure"),
               rerun_stale: bool = False) -> str | None:
    """One line on the stored runs of ``plan`` that other code produced, or ``None`` when none is stored."""
    directory = Path(results_root) / plan.name
    if not (directory / "results.sqlite").is_file():
        return None
    with Store(directory) as store:
        recorded, stale_ids = store.fingerprints(), stale_run_ids(store)
    stored = [r.run_id for r in plan.runs if r.kind in kinds and r.run_id in recorded]
    if not stored:
        return None
    now = fingerprint.current()
    stale = sum(run_id in stale_ids for run_id in stored)
    if not stale:
        return f"{len(stored)} stored runs, none stale (code {now})"
    action = "re-running them (--rerun-stale)" if rerun_stale else "they are kept; --rerun-stale re-runs them"
    return f"{stale} of {len(stored)} stored runs are stale (other code than {now}): {action}"


def stale_run_ids(store: Store) -> set[str]:
    """The stored runs whose code fingerprint is not the code installed now."""
    now = fingerprint.current()
    return {run_id for run_id, code in store.fingerprints().items() if code != now}


def record_meta(plan: Plan, store: Store) -> None:
    """Suite facts a report needs, stored beside the results."""
    store.set_meta("suite_name", plan.name)
    store.set_meta("axes", [axis_column(a) for a in plan.axes])
    store.set_meta("baseline", {axis_column(k): v for k, v in plan.baseline.items()})
    store.set_meta("suite_config", plan.suite.model_dump(mode="json"))
    store.set_meta("suite_path", str(plan.path))


def run_plan(
    plan: Plan,
    results_root: str | Path = "results",
    *,
    executor: str = "local",
    workers: int = 1,
    rerun_failed: bool = False,
    kinds: tuple[str, ...] = ("train", "measure"),
    progress: bool | None = None,
    on_record: Callable[[Record], None] | None = None,
    executor_options: dict[str, Any] | None = None,
    undecided: Callable[[Any], set[str]] | None = None,
    rerun_stale: bool = False,
) -> RunSummary:
    """Run every pending spec of ``plan`` and store the records under ``results_root/<suite>``.

    A suite with a seed range (``seeds = {min, max}``) runs in rounds that add seeds
    only to undecided cells (:mod:`ablate.run.adaptive`). Ctrl-C stops the executor, keeps
    every finished run, and re-raises ``KeyboardInterrupt`` after marking the summary interrupted.
    ``undecided`` replaces the adaptive rounds' question (e.g. a claim's inconclusive predicates).
    ``progress``: ``None`` a rich bar on a terminal, else a line per finished run on stderr;
    ``True`` the bar; ``False`` nothing. ``rerun_stale`` runs again the stored runs that other
    code produced (:mod:`ablate.core.fingerprint`), replacing their records.
    """
    options = RunOptions(executor=executor, workers=workers, rerun_failed=rerun_failed, kinds=kinds,
                         progress=progress, on_record=on_record, executor_options=executor_options,
                         rerun_stale=rerun_stale)
    if isinstance(plan.suite.seeds, SeedRange) and "train" in kinds:
        return _run_adaptive(plan, Path(results_root), options, undecided)
    return _run_once(plan, Path(results_root), options)


def _run_adaptive(plan: Plan, results_root: Path, options: RunOptions,
                  undecided: Callable[[Any], set[str]] | None) -> RunSummary:
    results_dir = results_root / plan.name
    total = RunSummary(results_dir, total=0, skipped=0)
    selected: set[str] = set()

    def run_round(sub: Plan) -> RunSummary:
        summary = _run_once(sub, results_root, options)
        selected.update(r.run_id for r in sub.runs if r.kind in options.kinds)
        for status, count in summary.counts.items():
            total.counts[status] = total.counts.get(status, 0) + count
        total.wall_s, total.work_s = total.wall_s + summary.wall_s, total.work_s + summary.work_s
        return summary

    run_adaptive(plan, run_round, lambda: load_results(results_dir), undecided)
    total.total = len(selected)  # the runs the rounds asked for, not the plan's maximum
    total.skipped = total.total - sum(total.counts.values())
    return total


def _run_once(plan: Plan, results_root: Path, options: RunOptions) -> RunSummary:
    results_dir = results_root / plan.name
    kinds, on_record = options.kinds, options.on_record
    clock = time.perf_counter()
    with Store(results_dir) as store:
        record_meta(plan, store)
        if "train" in kinds:
            check_checkpoints(plan, store, results_dir)  # a missing one is an error before anything runs
        selected = [r for r in plan.runs if r.kind in kinds]
        pending = [r for r in pending_runs(plan, store, rerun_failed=options.rerun_failed,
                                           rerun_stale=options.rerun_stale) if r.kind in kinds]
        summary = RunSummary(results_dir, total=len(selected), skipped=len(selected) - len(pending))
        train = [r for r in pending if r.kind == "train"]
        measure = [r for r in pending if r.kind == "measure"]
        if measure:  # a group with a pending run is measured whole: rounds of two sessions do not pair
            measure = with_partners(plan.measure_runs(), measure)
            summary.skipped -= len(measure) - len([r for r in pending if r.kind == "measure"])
        with create_progress(len(pending), options.progress, metric=plan.suite.report.main_metric) as bar:
            def consume(records: Iterator[Record]) -> None:
                for record in records:
                    if record.checkpoint is not None:  # first: a stored ok run always has its weights
                        write_checkpoint(results_dir, record.run_id, record.checkpoint)
                    store.write(record)
                    summary.counts[record.status] = summary.counts.get(record.status, 0) + 1
                    summary.work_s += record.work_s or 0.0
                    bar.advance(record)
                    if on_record is not None:
                        on_record(record)

            extra = dict(options.executor_options or {})
            runner = create_executor(options.executor, workers=options.workers, **extra) if train else None
            try:
                if runner is not None:
                    bar.start_batch(train)
                    consume(runner.run(train))
                if "train" in kinds:  # evaluation-only variants, from the stored checkpoints
                    summary.variants = run_variants(plan, store, results_dir)
                if measure:  # timing never overlaps with other work: in this process, after everything else
                    bar.start_batch(measure)
                    consume(measure_records(measure, axes=plan.axes, baseline=plan.baseline,
                                            alpha=plan.suite.report.alpha))
            except KeyboardInterrupt:
                summary.interrupted = True
                if runner is not None:
                    runner.close()
                raise
            finally:
                summary.wall_s = time.perf_counter() - clock
    return summary

