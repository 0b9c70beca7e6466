"""The ``process`` executor: a spawn-context process pool whose workers divide the cores' threads."""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Iterator

import torch

from ablate.run.executors.base import Executor, crashed
from ablate.run.executors.worker import execute_spec
from ablate.run.executors.registry import EXECUTORS
from ablate.results.store import Record
from ablate.suite import RunSpec


def _init_worker(threads: int) -> None:
    # Before any torch work in this fresh (spawned) process: the OpenMP/MKL pools
    # are sized on first use, and interop threads can only be set before it.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes sharing ``cores`` (at least 1)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


@EXECUTORS.register("process")
class ProcessExecutor(Executor):
    """A spawn-context process pool; threads per worker divide the cores.

    Args:
        workers: processes (``--workers``), at least 1.
        threads: torch threads per worker (default: the cores divided among the workers).
    """

    def __init__(self, *, workers: int = 2, threads: int | None = None) -> None:
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
                    yield crashed(futures[future], error)
        self._pool.shutdown()

    def close(self) -> None:
        if self._pool is not None:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)
