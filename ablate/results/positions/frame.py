"""The by-position table as a tidy frame, with each run's config columns."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd

from ablate.results.positions import table
from ablate.results.store import config_columns, database_of


def load_positions(path: str | Path) -> pd.DataFrame:
    """One row per run x evaluation length x token position.

    Columns: ``run_id, eval_length, position, tokens, loss, accuracy`` (``loss`` the
    mean negative log-likelihood in nats, ``accuracy`` the share of correct next
    tokens) and the run's flattened config (``task, encoding, pooling, seed, ...``);
    empty, with those first columns, for results stored before positions were.
    """
    with sqlite3.connect(database_of(path)) as db:
        rows = table.read(db)
        configs = dict(db.execute("SELECT run_id, config FROM runs"))
    if not rows:
        return pd.DataFrame(columns=table.COLUMNS)
    frame = pd.DataFrame.from_records(rows, columns=table.COLUMNS)
    columns = pd.DataFrame.from_records([{"run_id": r, **config_columns(json.loads(c))} for r, c in configs.items()])
    return frame.merge(columns, on="run_id", how="left")
