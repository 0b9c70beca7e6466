"""What an executor is, and the one function every executor runs for a spec."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from ablate.store import Record
from ablate.suite import RunSpec
from ablate.train import execute


class Executor(ABC):
    """Base of every executor: runs specs and yields their records as they finish (in any order)."""

    @abstractmethod
    def run(self, specs: list[RunSpec]) -> Iterator[Record]:
        """Run ``specs``, yielding each one's record when it finishes."""

    def close(self) -> None:  # noqa: B027 - nothing outstanding by default
        """Cancel outstanding work (Ctrl-C); finished records were already yielded."""


def execute_spec(spec: RunSpec) -> Record:
    """Run one spec in this process and return its record (never raises for a problem of the run)."""
    return execute(spec.run_id, spec.suite, spec.kind, spec.config, spec.axes)


def crashed(spec: RunSpec, error: BaseException) -> Record:
    """The record of a run whose worker process died before it could return one."""
    reason = f"worker process died: {type(error).__name__}: {error}"
    status = "oom" if "memory" in str(error).lower() else "failed"
    return Record(run_id=spec.run_id, suite=spec.suite, kind=spec.kind, status=status, config=spec.config,
                  axes=spec.axes, reason=reason)
