"""Results on disk: one SQLite database per suite, and its tidy DataFrame view.

``results/<suite>/results.sqlite`` holds a ``runs`` table (one row per run:
status, reason, resolved config, environment, timings, code fingerprint), a ``metrics`` table
(one row per run x metric x evaluation length) and a ``curves`` table (one row
per run x validation check: step, training loss, validation metric), a
``position_metrics`` table for token-level tasks (:mod:`ablate.results.positions`), and a measurement run's every
round (:mod:`ablate.results.rounds_table`). Each run is written in a single
transaction, so a crash, Ctrl-C or SIGKILL at any moment leaves every finished
run intact and no half-written one; the next ``ablate run`` skips stored ids.
Only the driver process writes (executors send records back to it). The schema
has a version (:mod:`ablate.results.schema`, ``docs/results.md``); the readers take
one results folder or several, each row tagged with its folder (``results_dir``).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ablate.results import schema as store_schema
from ablate.core.metrics import METRICS
from ablate.suite.components import label
import ablate.results.rounds_table as rounds_table
import ablate.results.positions.table as position_table
import ablate.results.variant_table as variant_table

STATUSES = ("ok", "failed", "diverged", "oom", "unsupported")

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
    #: The learning curve (:class:`ablate.run.criterion.CurvePoint`: step, train_loss, metric, value).
    curve: list[Any] = field(default_factory=list)
    #: Loss and accuracy by token position (:class:`ablate.results.positions.PositionRow`), token-level tasks only.
    positions: list[Any] = field(default_factory=list)
    #: The trained model (:func:`ablate.run.checkpoints.serialize`); the driver writes it before the record.
    checkpoint: bytes | None = field(default=None, repr=False)
    #: A measurement run's every round (:class:`ablate.results.rounds_table.RoundValue`), paired by round.
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
        store_schema.create(db)
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
        try:
            store_schema.upgrade(self._db, self.path)  # an older database, in place; a newer one is refused
        except Exception:
            self._db.close()
            raise

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The open database, for modules that own a table of it (:mod:`ablate.results.variant_table`)."""
        return self._db

    # ------------------------------------------------------------------ writes
    def write(self, record: Record) -> None:
        """Store ``record``, replacing an earlier attempt of the same run, atomically."""
        attempts = self._db.execute("SELECT attempts FROM runs WHERE run_id = ?", (record.run_id,)).fetchone()
        with self._db:  # one transaction: the run and all its metrics, or nothing
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))
            self._db.execute(
                "INSERT INTO runs (run_id, suite, kind, status, reason, config, axes, env, started_at, wall_s, "
                "attempts, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id, record.suite, record.kind, record.status, record.reason,
                    json.dumps(record.config, sort_keys=True), json.dumps(record.axes, default=str),
                    json.dumps(record.env, sort_keys=True, default=str), record.started_at, record.wall_s,
                    (attempts[0] + 1) if attempts else 1, record.env.get("fingerprint"),
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
            self._db.executemany(position_table.INSERT, position_table.values(record.run_id, record.positions))
            rounds_table.write(self._db, record.run_id, record.rounds)

    def set_meta(self, key: str, value: Any) -> None:
        """Suite-level facts (grid axes, baseline, resolved suite) for reports."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, default=str)))

    # ------------------------------------------------------------------- reads
    def statuses(self) -> dict[str, str]:
        """``run_id -> status`` of every stored run."""
        return dict(self._db.execute("SELECT run_id, status FROM runs"))

    def fingerprints(self) -> dict[str, str | None]:
        """``run_id -> code fingerprint`` of every stored run (``None``: stored before fingerprints)."""
        return dict(self._db.execute("SELECT run_id, fingerprint FROM runs"))

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


#: One results folder (or its ``results.sqlite``), or several.
ResultsPaths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def database_of(path: str | os.PathLike[str]) -> Path:
    """The ``results.sqlite`` of a results folder (or the file itself), checked readable by this ablate."""
    path = Path(path)
    candidate = path / "results.sqlite" if path.is_dir() else path
    if not candidate.is_file():
        raise ValueError(f"no results at {path} (expected a results directory containing results.sqlite)")
    with sqlite3.connect(candidate) as db:
        store_schema.check_readable(db, candidate)
    return candidate


def _read(paths: ResultsPaths, read_one: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    """``read_one`` of every results folder in ``paths``, one after the other, each row tagged ``results_dir``."""
    listed = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not listed:
        raise ValueError("no results folder given")
    frames = []
    for path in listed:
        database = database_of(path)
        frame = read_one(database)
        frames.append(frame.assign(results_dir=str(database.parent)))
    if len(frames) == 1:
        return frames[0]
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs = _merged_attrs([f.attrs for f in frames])
    return combined


def _merged_attrs(all_attrs: list[dict[str, Any]]) -> dict[str, Any]:
    """Suite facts of several results folders: names and axes joined, the rest where they agree."""
    if not any(all_attrs):
        return {}
    first = all_attrs[0]
    same = lambda key: all(a.get(key) == first.get(key) for a in all_attrs)  # noqa: E731
    return {"suite": ", ".join(dict.fromkeys(str(a.get("suite")) for a in all_attrs)),
            "axes": list(dict.fromkeys(axis for a in all_attrs for axis in a.get("axes", []))),
            "baseline": first.get("baseline", {}) if same("baseline") else {},
            "suite_config": first.get("suite_config", {}) if same("suite_config") else {},
            "results_path": [a.get("results_path") for a in all_attrs], "adaptive": {}}


def load_runs(path: ResultsPaths) -> pd.DataFrame:
    """One row per run: ``run_id, kind, status, reason, wall_s, attempts``, the flattened config and ``env.*``;
    ``results_dir`` names the folder (``path`` may list several)."""
    return _read(path, _runs_of)


def _runs_of(database: Path) -> pd.DataFrame:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT run_id, suite, kind, status, reason, config, env, wall_s, attempts FROM runs").fetchall()
    records = []
    for run_id, suite, kind, status, reason, config, env, wall_s, attempts in rows:
        row = {"run_id": run_id, "suite": suite, "kind": kind, "status": status, "reason": reason,
               "wall_s": wall_s, "attempts": attempts}
        row.update(config_columns(json.loads(config)))
        row.update({f"env.{k}": v for k, v in json.loads(env).items()})
        records.append(row)
    return pd.DataFrame.from_records(records)


def load_results(path: ResultsPaths) -> pd.DataFrame:
    """The tidy results frame: one row per run x metric x evaluation length.

    Columns: ``run_id, suite, kind, status, reason, note, metric, value,
    eval_length, higher_is_better``, the flattened config (``task, encoding,
    pooling, train_length, seed, model.*, train.*, eval.*, measure.*``), the
    environment (``env.*``, with the code fingerprint) and ``results_dir``, the
    folder the row was read from. A run that produced no metric (e.g. it failed while
    building) still appears, once, with ``metric`` None. ``df.attrs`` carries the
    suite's ``axes``, ``baseline``, resolved ``suite_config`` and ``results_path``
    (where :func:`load_curves` finds the learning curves). When evaluation-only
    variants were stored (:mod:`ablate.run.variants`), their rows follow their run's, and a
    ``variant`` column tells them apart (``base``: the trained model's own evaluation).

    Args:
        path: a results folder (``results/<suite>``) or its ``results.sqlite``, or a list of
            them: their rows follow one another, a run being ``(results_dir, run_id)``.
    """
    return _read(path, _results_of)


def _results_of(database: Path) -> pd.DataFrame:
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
                        "results_path": str(database), "claim_digests": meta.get("claim_digests", {})})
    return frame


def load_curves(path: ResultsPaths) -> pd.DataFrame:
    """Every run's learning curve: one row per run x validation check.

    Columns: ``run_id, step, train_loss, metric, value, higher_is_better``, the
    flattened config (``task, encoding, pooling, seed, ...``) and ``results_dir``;
    empty (with those columns) for results stored before curves existed. ``path``
    as in :func:`load_results`.
    """
    return _read(path, _curves_of)


def _curves_of(database: Path) -> pd.DataFrame:
    with sqlite3.connect(database) as db:
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
