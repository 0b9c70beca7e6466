"""A live progress bar for suite runs (rich), silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ablate.store import Record
from ablate.suite import RunSpec

STATUS_STYLE = {"ok": "green", "unsupported": "yellow", "diverged": "magenta", "oom": "red", "failed": "bold red"}


class RunProgress:
    """Runs done / total, the current run, elapsed and estimated remaining time."""

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.description}"),
            console=self.console, disable=not self.enabled, transient=False,
        )
        self._task = self._progress.add_task("", total=total)

    def __enter__(self) -> "RunProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def start_batch(self, specs: list[RunSpec]) -> None:
        """Show what is running now (the next spec of a batch)."""
        if specs:
            self._progress.update(self._task, description=specs[0].describe())

    def advance(self, record: Record) -> None:
        """One run finished; print a line for anything that is not ``ok``."""
        self._progress.advance(self._task)
        axes = " ".join(f"{k}={v}" for k, v in record.axes.items())
        self._progress.update(self._task, description=f"last: {record.status} {axes}")
        if self.enabled and record.status != "ok":
            style = STATUS_STYLE.get(record.status, "")
            first_line = (record.reason or "").splitlines()[0] if record.reason else ""
            self._progress.console.print(f"[{style}]{record.status}[/] {axes}: {first_line}")
