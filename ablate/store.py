"""Results on disk: one SQLite database per suite, and its tidy DataFrame view.

``results/<suite>/results.sqlite`` holds a ``runs`` table (one row per run:
status, reason, resolved config, environment, timings), a ``metrics`` table
(one row per run x metric x evaluation length) and a ``curves`` table (one row
per run x validation check: step, training loss, validation metric), and a measurement run's every
round (:mod:`ablate.measure.rounds_table`). Each run is written in a single
transaction, so a crash, Ctrl-C or SIGKILL at any moment leaves every finished
run intact and no half-written one; the next ``ablate run`` skips stored ids.
Only the driver process writes (executors send records back to it).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ablate.metrics import METRICS
from ablate.suite.components import label
import ablate.measure.rounds_table as rounds_table
import ablate.variants.table as variant_table

STATUSES = ("ok", "failed", "diverged", "oom", "unsupported")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    config TEXT NOT NULL,
    axes TEXT NOT NULL,
    env TEXT NOT NULL,
    started_at REAL,
    wall_s REAL,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    eval_length INTEGER NOT NULL,
    value REAL,
    status TEXT NOT NULL,
    reason TEXT,
    note TEXT,
    PRIMARY KEY (run_id, metric, eval_length)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    train_loss REAL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, step)
);
""" + variant_table.SCHEMA + rounds_table.SCHEMA


@dataclass
class MetricRow:
    """One number: ``metric`` at ``eval_length`` (``value`` NaN unless ``status == "ok"``)."""

    metric: str
    eval_length: int
    value: float
    status: str = "ok"
    reason: str | None = None
    note: str | None = None


@dataclass
class Record:
    """The outcome of one run, as executors return it to the driver."""

    run_id: str
    suite: str
    kind: str
    status: str
    config: dict[str, Any]
    axes: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    metrics: list[MetricRow] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    wall_s: float | None = None
    #: Seconds of pure training + evaluation (or measurement) work, for overhead accounting.
    work_s: float | None = None
    #: The learning curve (:class:`ablate.criterion.CurvePoint`: step, train_loss, metric, value).
    curve: list[Any] = field(default_factory=list)
    #: The trained model (:func:`ablate.checkpoints.serialize`); the driver writes it before the record.
    checkpoint: bytes | None = field(default=None, repr=False)
    #: A measurement run's every round (:class:`ablate.measure.rounds_table.RoundValue`), paired by round.
    rounds: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def _create_with_schema(path: Path) -> None:
    """Create the database at ``path`` with its tables, atomically, unless it exists.

    A reader (a report, a second ``ablate run``) must never find a database file
    without its tables, so the file is built under a temporary name and linked into
    place; ``os.link`` fails if another process got there first, and then theirs is kept.
    """
    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    db = sqlite3.connect(temporary)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
        db.executescript(_SCHEMA)
        db.commit()
    finally:
        db.close()
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError:  # a filesystem without hard links: a rename, unless someone was first
        if not path.exists():
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class Store:
    """A suite's results database. Use as a context manager or call :meth:`close`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "results.sqlite"
        _create_with_schema(self.path)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA synchronous=FULL")  # a committed run survives power loss
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)  # adds tables an older database lacks (IF NOT EXISTS)
        self._db.commit()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The open database, for modules that own a table of it (:mod:`ablate.variants.table`)."""
        return self._db

    # ------------------------------------------------------------------ writes
    def write(self, record: Record) -> None:
        """Store ``record``, replacing an earlier attempt of the same run, atomically."""
        attempts = self._db.execute("SELECT attempts FROM runs WHERE run_id = ?", (record.run_id,)).fetchone()
        with self._db:  # one transaction: the run and all its metrics, or nothing
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id, record.suite, record.kind, record.status, record.reason,
                    json.dumps(record.config, sort_keys=True), json.dumps(record.axes, default=str),
                    json.dumps(record.env, sort_keys=True, default=str), record.started_at, record.wall_s,
                    (attempts[0] + 1) if attempts else 1,
                ),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (record.run_id, m.metric, int(m.eval_length), _finite_or_none(m.value), m.status, m.reason, m.note)
                    for m in record.metrics
                ],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO curves VALUES (?, ?, ?, ?, ?)",
                [(record.run_id, int(p.step), _finite_or_none(p.train_loss), p.metric, _finite_or_none(p.value))
                 for p in record.curve],
            )
            rounds_table.write(self._db, record.run_id, record.rounds)

    def set_meta(self, key: str, value: Any) -> None:
        """Suite-level facts (grid axes, baseline, resolved suite) for reports."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, default=str)))

    # ------------------------------------------------------------------- reads
    def statuses(self) -> dict[str, str]:
        """``run_id -> status`` of every stored run."""
        return dict(self._db.execute("SELECT run_id, status FROM runs"))

    def meta(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self._db.execute("SELECT key, value FROM meta")}


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and "name" not in value:
        for key, child in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, child, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value)
    elif isinstance(value, dict):  # a component: its label
        out[prefix] = label(value)
    else:
        out[prefix] = value


def config_columns(config: dict[str, Any]) -> dict[str, Any]:
    """Flatten a resolved config into tidy columns (``task``, ``encoding``, ``pooling``, ...)."""
    flat: dict[str, Any] = {}
    _flatten("", config, flat)
    flat["encoding"] = flat.pop("model.encoding", None)
    flat["pooling"] = flat.pop("model.pooling", None)
    flat["train_length"] = flat.get("train.length")
    return flat


def _database(path: str | Path) -> Path:
    path = Path(path)
    candidate = path / "results.sqlite" if path.is_dir() else path
    if not candidate.is_file():
        raise ValueError(f"no results at {path} (expected a results directory containing results.sqlite)")
    return candidate


def load_runs(path: str | Path) -> pd.DataFrame:
    """One row per run: ``run_id, kind, status, reason, wall_s, attempts`` and the flattened config."""
    with sqlite3.connect(_database(path)) as db:
        rows = db.execute("SELECT run_id, suite, kind, status, reason, config, env, wall_s, attempts FROM runs").fetchall()
    records = []
    for run_id, suite, kind, status, reason, config, env, wall_s, attempts in rows:
        row = {"run_id": run_id, "suite": suite, "kind": kind, "status": status, "reason": reason,
               "wall_s": wall_s, "attempts": attempts}
        row.update(config_columns(json.loads(config)))
        row.update({f"env.{k}": v for k, v in json.loads(env).items()})
        records.append(row)
    return pd.DataFrame.from_records(records)


def load_results(path: str | Path) -> pd.DataFrame:
    """The tidy results frame: one row per run x metric x evaluation length.

    Columns: ``run_id, suite, kind, status, reason, note, metric, value,
    eval_length, higher_is_better``, the flattened config (``task, encoding,
    pooling, train_length, seed, model.*, train.*, eval.*, measure.*``) and the
    environment (``env.*``). A run that produced no metric (e.g. it failed while
    building) still appears, once, with ``metric`` None. ``df.attrs`` carries the
    suite's ``axes``, ``baseline``, resolved ``suite_config`` and ``results_path``
    (where :func:`load_curves` finds the learning curves). When evaluation-only
    variants were stored (:mod:`ablate.variants`), their rows follow their run's, and a
    ``variant`` column tells them apart (``base``: the trained model's own evaluation).
    """
    database = _database(path)
    with sqlite3.connect(database) as db:
        runs = db.execute("SELECT run_id, suite, kind, status, reason, config, env FROM runs ORDER BY rowid").fetchall()
        metrics = db.execute(
            "SELECT run_id, metric, eval_length, value, status, reason, note FROM metrics ORDER BY rowid"
        ).fetchall()
        meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
        variant_rows = variant_table.read(db)
    higher = {name: METRICS[name].higher_is_better for name in METRICS}
    by_run: dict[str, list[tuple[Any, ...]]] = {}
    for row in metrics:
        by_run.setdefault(row[0], []).append(row)
    records: list[dict[str, Any]] = []
    for run_id, suite, kind, run_status, run_reason, config_text, env_text in runs:
        config = json.loads(config_text)
        base = {"run_id": run_id, "suite": suite, "kind": kind}
        base.update(config_columns(config))
        base.update({f"env.{k}": v for k, v in json.loads(env_text).items()})
        base["run_status"] = run_status
        rows = by_run.get(run_id, [])
        if not rows:
            records.append({**base, "status": run_status, "reason": run_reason, "note": None, "metric": None,
                            "value": math.nan, "eval_length": config.get("train", {}).get("length"),
                            "higher_is_better": None})
        for _, name, eval_length, value, status, reason, note in rows:
            records.append({**base, "status": status, "reason": reason or (run_reason if status != "ok" else None),
                            "note": note, "metric": name, "value": math.nan if value is None else value,
                            "eval_length": eval_length,
                            "higher_is_better": METRICS[name].higher_is_better if name in METRICS else None})
        records += variant_table.frame_records(base, variant_rows.get(run_id, []), higher)
    frame = variant_table.label_base_rows(pd.DataFrame.from_records(records))
    frame.attrs.update({"suite": meta.get("suite_name", database.parent.name), "axes": meta.get("axes", []),
                        "baseline": meta.get("baseline", {}), "suite_config": meta.get("suite_config", {}),
                        "results_path": str(database), "adaptive": meta.get("adaptive", {})})
    return frame


def load_curves(path: str | Path) -> pd.DataFrame:
    """Every run's learning curve: one row per run x validation check.

    Columns: ``run_id, step, train_loss, metric, value, higher_is_better`` and the
    flattened config (``task, encoding, pooling, seed, ...``); empty (with those
    columns) for results stored before curves existed.
    """
    with sqlite3.connect(_database(path)) as db:
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='curves'").fetchone()
        points = db.execute("SELECT run_id, step, train_loss, metric, value FROM curves ORDER BY run_id, step"
                            ).fetchall() if has_table else []
        configs = dict(db.execute("SELECT run_id, config FROM runs"))
    columns = {run_id: config_columns(json.loads(text)) for run_id, text in configs.items()}
    records = []
    for run_id, step, train_loss, name, value in points:
        records.append({"run_id": run_id, "step": step, "train_loss": math.nan if train_loss is None else train_loss,
                        "metric": name, "value": math.nan if value is None else value,
                        "higher_is_better": METRICS[name].higher_is_better if name in METRICS else None,
                        **columns.get(run_id, {})})
    if not records:
        return pd.DataFrame(columns=["run_id", "step", "train_loss", "metric", "value", "higher_is_better"])
    return pd.DataFrame.from_records(records)


#: Config paths whose tidy column has a short name.
AXIS_COLUMNS = {"model.encoding": "encoding", "model.pooling": "pooling", "train.length": "train_length"}


def axis_column(path: str) -> str:
    """The tidy-frame column of a grid axis path (``model.encoding`` -> ``encoding``)."""
    return AXIS_COLUMNS.get(path, path)
