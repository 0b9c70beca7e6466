"""The ``measure_rounds`` table: every round's value of a measurement run, so ratios can be paired by round.

A measurement run's metrics (``time_median_s``, ``peak_memory_bytes``,
``instructions``) summarise its rounds; the rounds themselves are what a verdict
needs: round ``i`` of a model is paired with round ``i`` of its baseline measured
in the same *session* (the interleaved rounds of one group of models at one
length, :mod:`ablate.measure.run`). One row per (run, metric, length, round),
with the position the model took in that round's shuffled order. Rows go away
with their run (``ON DELETE CASCADE``): a re-measured run's rounds replace its old
ones. Plain ``sqlite3`` and pandas, nothing of ablate: the store and the reports import this module.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: Added to the store's schema (``CREATE ... IF NOT EXISTS``: older databases gain it on open).
SCHEMA = """
CREATE TABLE IF NOT EXISTS measure_rounds (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    eval_length INTEGER NOT NULL,
    round INTEGER NOT NULL,
    value REAL,
    position INTEGER NOT NULL,
    session TEXT NOT NULL,
    PRIMARY KEY (run_id, metric, eval_length, round)
);
"""

#: Columns of :func:`load_rounds` before the run's configuration columns.
COLUMNS = ["run_id", "metric", "eval_length", "round", "value", "position", "session"]


@dataclass(frozen=True)
class RoundValue:
    """One round's value of one metric of a measurement run at one length."""

    metric: str
    eval_length: int
    round: int
    value: float
    #: 0-based place in that round's order (-1: not measured in that round).
    position: int
    #: Identifies the interleaved rounds this value belongs to; only values of one session pair.
    session: str


def write(db: sqlite3.Connection, run_id: str, rounds: Iterable[RoundValue]) -> None:
    """Insert ``run_id``'s rounds (inside the caller's transaction: the store writes a run at once)."""
    db.executemany(
        "INSERT OR REPLACE INTO measure_rounds VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(run_id, r.metric, int(r.eval_length), int(r.round),
          float(r.value) if r.value is not None and math.isfinite(float(r.value)) else None, int(r.position),
          r.session) for r in rounds],
    )


def load_rounds(path: str | Path) -> pd.DataFrame:
    """Every stored round: one row per (run, metric, length, round) with :data:`COLUMNS`, in round order.

    Args:
        path: a results directory (``results/<suite>``) or its ``results.sqlite``.

    Returns:
        The rounds (empty, with :data:`COLUMNS`, for results stored before rounds were); join the
        tidy frame on ``run_id`` for a run's configuration.
    """
    database = Path(path) / "results.sqlite" if Path(path).is_dir() else Path(path)
    with sqlite3.connect(database) as db:
        present = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='measure_rounds'").fetchone()
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM measure_rounds ORDER BY run_id, metric, eval_length, "
                          "round").fetchall() if present else []
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    frame["value"] = frame["value"].astype(float)
    return frame


def paired(treatment: pd.DataFrame, baseline: pd.DataFrame, on: tuple[str, ...] = ("session", "round")
           ) -> tuple[list[float], list[float]]:
    """The values of two runs' rounds (rows of :func:`load_rounds`) paired on ``on``: ``(treatment, baseline)``.

    Within one results folder rounds pair on ``("session", "round")``: round ``i`` of a
    model with round ``i`` of its baseline measured in the same interleaved rounds. Two
    folders share no session; there rounds pair on ``("seed", "round")`` (the caller adds
    each run's ``seed``), two independent draws per pair, valid when both were measured alike.
    """
    keys = list(on)
    merged = treatment[[*keys, "value"]].merge(baseline[[*keys, "value"]], on=keys, suffixes=("_t", "_b"))
    merged = merged.sort_values(keys)
    return merged["value_t"].tolist(), merged["value_b"].tolist()
