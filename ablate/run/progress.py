"""Progress of a suite run: a live rich bar on a terminal, one plain line per finished run elsewhere.

In a CI log, under ``nohup`` or through a pipe a bar would print nothing until the
end, so there each finished run is a line on stderr: what it was, its status, its
key metric, how long it took, how many runs are left and when they should be done.
Anything that is not ``ok`` is printed with its reason in both modes.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ablate.results.store import Record
from ablate.suite import RunSpec

STATUS_STYLE = {"ok": "green", "unsupported": "yellow", "diverged": "magenta", "oom": "red", "failed": "bold red"}
#: The metric a progress line shows when the suite names no ``[report] main_metric`` (first one present).
KEY_METRICS = ("accuracy", "exact_match", "token_accuracy", "bits_per_char", "loss", "tokens_per_s", "time_median_s")


def key_metric(record: Record, preferred: str | None = None) -> str:
    """``"name@length=value"`` of the run's headline number at its shortest evaluation length, or ``""``."""
    rows = [m for m in record.metrics if m.status == "ok"]
    names = [m.metric for m in rows]
    order = ([preferred] if preferred else []) + [n for n in KEY_METRICS if n != preferred]
    name = next((n for n in order if n in names), names[0] if names else None)
    if name is None:
        return ""
    row = min((m for m in rows if m.metric == name), key=lambda m: m.eval_length)
    return f"{name}@{row.eval_length}={row.value:.4g}"


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1m15s"``; ``3700`` -> ``"1h01m"``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LineProgress:
    """One line per finished run on ``stream``: ``[done/total] status id what metric elapsed, left, eta``."""

    def __init__(self, total: int, *, stream: TextIO | None = None, metric: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self.metric = total, 0, metric
        self.stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._start = clock()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stream.flush()

    def start_batch(self, specs: list[RunSpec]) -> None:
        """Nothing to show until a run finishes."""

    def advance(self, record: Record) -> None:
        """Print the finished run's line (with the first line of its reason unless ``ok``)."""
        self.done += 1
        elapsed = self._clock() - self._start
        left = self.total - self.done
        eta = format_duration(elapsed / self.done * left) if left else "0s"
        axes = " ".join(f"{k}={v}" for k, v in record.axes.items())
        seed = record.config.get("seed")
        parts = [f"[{self.done}/{self.total}]", f"{record.status:<11}", record.run_id, record.kind, axes,
                 f"seed={seed}" if seed is not None else "", key_metric(record, self.metric),
                 f"{record.wall_s:.1f}s" if record.wall_s is not None else "",
                 f"| {left} left, elapsed {format_duration(elapsed)}, eta {eta}"]
        line = " ".join(p for p in parts if p)
        if record.status != "ok" and record.reason:
            line += f"\n    reason: {record.reason.splitlines()[0]}"
        print(line, file=self.stream, flush=True)


class RunProgress:
    """Runs done / total, the current run, elapsed and estimated remaining time (rich, on a terminal)."""

    def __init__(self, total: int, *, enabled: bool = True, metric: str | None = None) -> None:
        self.enabled, self.metric = enabled, metric
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
            self._progress.update(self._task, description=escape(specs[0].describe()))

    def advance(self, record: Record) -> None:
        """One run finished; print a line for anything that is not ``ok``."""
        self._progress.advance(self._task)
        axes = " ".join(f"{k}={v}" for k, v in record.axes.items())
        self._progress.update(self._task, description=escape(f"last: {record.status} {axes} {key_metric(record, self.metric)}"))
        if self.enabled and record.status != "ok":
            style = STATUS_STYLE.get(record.status, "")
            first_line = (record.reason or "").splitlines()[0] if record.reason else ""
            self._progress.console.print(f"[{style}]{record.status}[/] {escape(axes)}: {escape(first_line)}")


def create_progress(total: int, mode: bool | None = None, *, metric: str | None = None) -> RunProgress | LineProgress:
    """The progress display for ``total`` runs.

    ``mode``: ``None`` picks by stderr (a terminal: the rich bar; otherwise plain
    lines), ``True`` forces the bar, ``False`` shows nothing (library use, tests).
    """
    if mode is None:
        mode = sys.stderr.isatty()
        if not mode:
            return LineProgress(total, metric=metric)
    return RunProgress(total, enabled=mode, metric=metric)
