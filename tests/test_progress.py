"""Progress off a terminal (one line per finished run) and tables that are never cut in a pipe or file."""

from __future__ import annotations

import io
import itertools

from rich.table import Table

from ablate.core.console import make_console
from ablate.run.progress import LineProgress, RunProgress, create_progress, format_duration, key_metric
from ablate.results.store import MetricRow, Record


def record(run_id: str, status: str = "ok", reason: str | None = None, wall: float = 2.0) -> Record:
    metrics = [MetricRow("loss", 8, 0.5), MetricRow("accuracy", 16, 0.61), MetricRow("accuracy", 8, 0.875)]
    return Record(run_id=run_id, suite="s", kind="train", status=status, config={"seed": 1}, reason=reason,
                  axes={"encoding": "rope"}, metrics=metrics if status == "ok" else [], wall_s=wall)


def test_one_line_per_finished_run_with_eta():
    stream = io.StringIO()
    ticks = itertools.count(0.0, 10.0)  # every clock reading is 10 s after the previous one
    with LineProgress(4, stream=stream, clock=lambda: next(ticks)) as progress:
        progress.start_batch([])
        progress.advance(record("aaa"))
        progress.advance(record("bbb", "failed", "RuntimeError: boom\n  traceback line"))
    first, second, reason = stream.getvalue().splitlines()
    assert first == "[1/4] ok          aaa train encoding=rope seed=1 accuracy@8=0.875 2.0s | 3 left, elapsed 10s, eta 30s"
    assert second.startswith("[2/4] failed      bbb train encoding=rope seed=1 2.0s | 2 left, elapsed 20s, eta 20s")
    assert reason == "    reason: RuntimeError: boom"


def test_key_metric_prefers_the_suite_main_metric():
    assert key_metric(record("a")) == "accuracy@8=0.875"
    assert key_metric(record("a"), "loss") == "loss@8=0.5"
    assert key_metric(record("a", "failed")) == ""


def test_mode_follows_the_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    assert isinstance(create_progress(3), LineProgress)
    assert isinstance(create_progress(3, True), RunProgress) and create_progress(3, True).enabled
    assert not create_progress(3, False).enabled


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 75, 3700)] == ["0s", "59s", "1m15s", "1h01m"]


def test_tables_in_a_pipe_are_never_truncated():
    stream = io.StringIO()  # not a terminal
    table = Table(title="ablate bench")
    columns = [f"column_{i}" for i in range(14)]
    for column in columns:
        table.add_column(column)
    cells = [f"{1_234_567.891 * (i + 1):,.2f}" for i in range(14)]
    table.add_row(*cells)
    make_console(stream).print(table)
    text = stream.getvalue()
    assert "…" not in text and all(cell in text for cell in cells + columns)
    assert max(len(line) for line in text.splitlines()) > 200
