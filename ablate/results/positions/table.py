"""The ``position_metrics`` table: one row per (run, evaluation length, token position).

Plain ``sqlite3``, no torch: the store imports this module. Rows go away with
their run (``ON DELETE CASCADE``); the store writes them in the run's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

#: Added to the store's schema (``CREATE ... IF NOT EXISTS``: older databases gain it on open).
SCHEMA = """
CREATE TABLE IF NOT EXISTS position_metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    eval_length INTEGER NOT NULL,
    position INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    loss REAL,
    accuracy REAL,
    PRIMARY KEY (run_id, eval_length, position)
);
"""

INSERT = "INSERT OR REPLACE INTO position_metrics VALUES (?, ?, ?, ?, ?, ?)"
COLUMNS = ["run_id", "eval_length", "position", "tokens", "loss", "accuracy"]


def values(run_id: str, rows: Iterable[Any]) -> list[tuple[Any, ...]]:
    """:data:`INSERT`'s parameters for ``rows`` (:class:`~ablate.results.positions.tally.PositionRow`) of ``run_id``."""
    return [(run_id, int(r.eval_length), int(r.position), int(r.tokens), float(r.loss), float(r.accuracy))
            for r in rows]


def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every stored row (:data:`COLUMNS`), in run, length and position order; none for an older database."""
    present = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'position_metrics'").fetchone()
    if present is None:
        return []
    return db.execute(f"SELECT {', '.join(COLUMNS)} FROM position_metrics ORDER BY run_id, eval_length, position"
                      ).fetchall()
