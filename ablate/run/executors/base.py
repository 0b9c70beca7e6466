"""What an executor is; the one function every executor runs for a spec is
:func:`ablate.run.executors.worker.execute_spec`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from ablate.results.store import Record
from ablate.suite import RunSpec


class Executor(ABC):
    """Base of every executor: runs specs and yields their records as they finish (in any order)."""

    @abstractmethod
    def run(self, specs: list[RunSpec]) -> Iterator[Record]:
        """Run ``specs``, yielding each one's record when it finishes."""

    def close(self) -> None:  # noqa: B027 - nothing outstanding by default
        """Cancel outstanding work (Ctrl-C); finished records were already yielded."""


def crashed(spec: RunSpec, error: BaseException) -> Record:
    """The record of a run whose worker process died before it could return one."""
    reason = f"worker process died: {type(error).__name__}: {error}"
    status = "oom" if "memory" in str(error).lower() else "failed"
    return Record(run_id=spec.run_id, suite=spec.suite, kind=spec.kind, status=status, config=spec.config,
                  axes=spec.axes, reason=reason)
