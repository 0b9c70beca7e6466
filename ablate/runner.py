"""Executing a plan: skip stored runs, run the rest on an executor, store each record as it arrives.

Executors (a registry; ``--executor``):
    * ``local`` - sequentially in this process.
    * ``process`` - a spawn-based process pool of ``--workers N``; each worker
      gets ``cores // N`` torch threads so workers never oversubscribe the cores.
    * ``ray`` - Ray tasks on a cluster (:mod:`ablate.executors.ray_executor`).

Measurement runs never overlap with anything: they run after the training runs,
one at a time, in the driver process.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from ablate.registry import Registry
from ablate.store import Record, Store, axis_column
from ablate.suite import Plan, RunSpec

#: Statuses that are final: a resumed suite skips them (``--rerun-failed`` retries the others).
FINAL_STATUSES = {"ok", "unsupported", "diverged"}


class Executor(Protocol):
    """Runs specs and yields their records as they finish (in any order)."""

    def run(self, specs: list[RunSpec]) -> Iterator[Record]: ...

    def close(self) -> None:
        """Cancel outstanding work (Ctrl-C); finished records were already yielded."""


EXECUTORS: Registry[Executor] = Registry("executor")


def execute_spec(spec: RunSpec) -> Record:
    """Run one spec in this process (imports torch lazily so pool start-up stays cheap)."""
    from ablate.train import execute

    return execute(spec.run_id, spec.suite, spec.kind, spec.config, spec.axes)


@EXECUTORS.register("local")
class LocalExecutor:
    """Sequential, in-process."""

    def __init__(self, *, workers: int = 1, threads: int | None = None, **_: Any) -> None:
        self.threads = threads

    def run(self, specs: list[RunSpec]) -> Iterator[Record]:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        for spec in specs:
            yield execute_spec(spec)

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    # Set before torch creates its thread pools in this fresh (spawned) process.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes sharing ``cores`` (at least 1)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


@EXECUTORS.register("process")
class ProcessExecutor:
    """A spawn-context process pool; threads per worker divide the cores."""

    def __init__(self, *, workers: int = 2, threads: int | None = None, **_: Any) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.threads = threads or threads_per_worker(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._pending: set[Future[Record]] = set()

    def run(self, specs: list[RunSpec]) -> Iterator[Record]:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(self.threads,)
        )
        futures = {self._pool.submit(execute_spec, spec): spec for spec in specs}
        self._pending = set(futures)
        while self._pending:
            done, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if error is None:
                    yield future.result()
                else:  # the worker process died (e.g. killed by the OOM killer)
                    yield _crashed(futures[future], error)
        self._pool.shutdown()

    def close(self) -> None:
        if self._pool is not None:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)


def _crashed(spec: RunSpec, error: BaseException) -> Record:
    from ablate.store import Record

    reason = f"worker process died: {type(error).__name__}: {error}"
    status = "oom" if "memory" in str(error).lower() else "failed"
    return Record(run_id=spec.run_id, suite=spec.suite, kind=spec.kind, status=status, config=spec.config,
                  axes=spec.axes, reason=reason)


def create_executor(name: str, **options: Any) -> Executor:
    """An executor by name; ``ray`` is imported only when asked for."""
    if name == "ray" and "ray" not in EXECUTORS:
        from ablate.executors import ray_executor  # noqa: F401 - registers "ray"
    return EXECUTORS.build(name, **options)


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

    @property
    def any_failed(self) -> bool:
        return any(self.counts.get(s, 0) for s in ("failed", "oom"))

    @property
    def overhead(self) -> float:
        """Suite wall time / sum of the runs' pure work time (1.0 = no overhead)."""
        return self.wall_s / self.work_s if self.work_s else float("nan")


def pending_runs(plan: Plan, store: Store, *, rerun_failed: bool = False) -> list[RunSpec]:
    """Runs of ``plan`` not yet stored with a final status."""
    stored = store.statuses()
    keep = []
    for run in plan.runs:
        status = stored.get(run.run_id)
        if status is None or (rerun_failed and status not in FINAL_STATUSES):
            keep.append(run)
    return keep


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
) -> RunSummary:
    """Run every pending spec of ``plan`` and store the records under ``results_root/<suite>``.

    Ctrl-C stops the executor, keeps every finished run, and re-raises
    ``KeyboardInterrupt`` after marking the summary interrupted. ``progress``:
    ``None`` a rich bar on a terminal, else a line per finished run on stderr;
    ``True`` the bar; ``False`` nothing.
    """
    results_dir = Path(results_root) / plan.name
    clock = time.perf_counter()
    with Store(results_dir) as store:
        record_meta(plan, store)
        selected = [r for r in plan.runs if r.kind in kinds]
        pending = [r for r in pending_runs(plan, store, rerun_failed=rerun_failed) if r.kind in kinds]
        summary = RunSummary(results_dir, total=len(selected), skipped=len(selected) - len(pending))
        train = [r for r in pending if r.kind == "train"]
        measure = [r for r in pending if r.kind == "measure"]
        from ablate.progress import create_progress

        with create_progress(len(pending), progress, metric=plan.suite.report.main_metric) as bar:
            def consume(records: Iterator[Record]) -> None:
                for record in records:
                    store.write(record)
                    summary.counts[record.status] = summary.counts.get(record.status, 0) + 1
                    summary.work_s += record.work_s or 0.0
                    bar.advance(record)
                    if on_record is not None:
                        on_record(record)

            options = dict(executor_options or {})
            runner = create_executor(executor, workers=workers, **options) if train else None
            try:
                if runner is not None:
                    bar.start_batch(train)
                    consume(runner.run(train))
                if measure:  # timing never overlaps with other work
                    bar.start_batch(measure)
                    consume(LocalExecutor().run(measure))
            except KeyboardInterrupt:
                summary.interrupted = True
                if runner is not None:
                    runner.close()
                raise
            finally:
                summary.wall_s = time.perf_counter() - clock
    return summary

