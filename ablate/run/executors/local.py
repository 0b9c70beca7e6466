"""The ``local`` executor: every run in this process, one after another."""

from __future__ import annotations

from typing import Iterator

import torch

from ablate.run.executors.base import Executor
from ablate.run.executors.worker import execute_spec
from ablate.run.executors.registry import EXECUTORS
from ablate.results.store import Record
from ablate.suite import RunSpec


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Sequential, in-process.

    Args:
        workers: ignored (one run at a time); accepted so every executor takes it.
        threads: torch intra-op threads while running (default: as set now).
    """

    def __init__(self, *, workers: int = 1, threads: int | None = None) -> None:
        self.threads = threads

    def run(self, specs: list[RunSpec]) -> Iterator[Record]:
        if self.threads:
            torch.set_num_threads(self.threads)
        for spec in specs:
            yield execute_spec(spec)

    def close(self) -> None:
        pass
