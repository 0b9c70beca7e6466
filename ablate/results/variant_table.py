"""The ``variant_metrics`` table: a variant's rows belong to the run they evaluate.

One row per (run, variant, metric, evaluation length), with the variant's id (a
hash of its settings) so an edited variant is evaluated again. Rows go away with
their run (``ON DELETE CASCADE``): a retrained run's old variant rows describe
other weights. Plain ``sqlite3``, no torch: the store imports this module.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from typing import Any

from ablate.suite.variant_schema import BASE

#: Added to the store's schema (``CREATE ... IF NOT EXISTS``: older databases gain it on open).
SCHEMA = """
CREATE TABLE IF NOT EXISTS variant_metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    variant_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    eval_length INTEGER NOT NULL,
    value REAL,
    status TEXT NOT NULL,
    reason TEXT,
    note TEXT,
    PRIMARY KEY (run_id, variant, metric, eval_length)
);
"""


def _has_table(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'variant_metrics'").fetchone() is not None


def write(db: sqlite3.Connection, run_id: str, variant: str, variant_id: str, rows: Iterable[Any]) -> None:
    """Replace ``variant``'s rows of ``run_id`` in one transaction (rows: :class:`~ablate.results.store.MetricRow`)."""
    values = []
    for row in rows:
        value = None if row.value is None or not math.isfinite(float(row.value)) else float(row.value)
        values.append((run_id, variant, variant_id, row.metric, int(row.eval_length), value, row.status, row.reason,
                       row.note))
    with db:
        db.execute("DELETE FROM variant_metrics WHERE run_id = ? AND variant = ?", (run_id, variant))
        db.executemany("INSERT INTO variant_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)


def stored_ids(db: sqlite3.Connection) -> dict[tuple[str, str], str]:
    """``(run_id, variant) -> variant_id`` of every stored variant evaluation."""
    if not _has_table(db):
        return {}
    return {(r, v): i for r, v, i in db.execute("SELECT DISTINCT run_id, variant, variant_id FROM variant_metrics")}


def read(db: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """``run_id -> [(variant, metric, eval_length, value, status, reason, note), ...]`` in storage order."""
    if not _has_table(db):
        return {}
    by_run: dict[str, list[tuple[Any, ...]]] = {}
    query = "SELECT run_id, variant, metric, eval_length, value, status, reason, note FROM variant_metrics ORDER BY rowid"
    for run_id, *rest in db.execute(query):
        by_run.setdefault(run_id, []).append(tuple(rest))
    return by_run


def frame_records(base: dict[str, Any], rows: list[tuple[Any, ...]], higher: dict[str, bool | None]) -> list[dict[str, Any]]:
    """Tidy-frame records of one run's variant rows; ``base`` holds the run's config columns."""
    return [{**base, "status": status, "reason": reason, "note": note, "metric": metric,
             "value": math.nan if value is None else value, "eval_length": eval_length,
             "higher_is_better": higher.get(metric), "variant": variant}
            for variant, metric, eval_length, value, status, reason, note in rows]


def label_base_rows(frame: Any) -> Any:
    """Give the trained model's own rows ``variant = "base"`` once a frame has variant rows."""
    if "variant" in frame.columns:
        frame["variant"] = frame["variant"].fillna(BASE)
    return frame
