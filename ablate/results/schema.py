"""The results database's tables, its schema version, and the upgrades from older versions.

The version lives in SQLite's ``PRAGMA user_version`` (0 in a database that never
set it: every store written before versions existed). A writer (:class:`ablate.results.store.Store`)
upgrades an older database in place, in one ``BEGIN IMMEDIATE`` transaction, so a
crash leaves it as it was and two writers never both upgrade it; readers read
every version up to :data:`SCHEMA_VERSION` as it is and never write. A database
from a newer ablate is refused with the command that upgrades ablate. The tables
and columns are described in ``docs/results.md``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

import ablate.results.rounds_table as rounds_table
import ablate.results.positions.table as position_table
import ablate.results.variant_table as variant_table
from ablate.core.errors import SchemaError

#: The version this ablate writes (``PRAGMA user_version``).
SCHEMA_VERSION = 1

SCHEMA = """
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
    attempts INTEGER NOT NULL DEFAULT 1,
    fingerprint TEXT
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
""" + variant_table.SCHEMA + position_table.SCHEMA + rounds_table.SCHEMA


def _statements(script: str) -> list[str]:
    """The statements of a DDL script (no semicolons inside them), to run inside one transaction."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _to_1(db: sqlite3.Connection) -> None:
    """Version 0 -> 1: every table present; ``runs.fingerprint``, copied from each run's ``env``."""
    for statement in _statements(SCHEMA):
        db.execute(statement)
    if "fingerprint" not in _columns(db, "runs"):
        db.execute("ALTER TABLE runs ADD COLUMN fingerprint TEXT")
    db.execute("UPDATE runs SET fingerprint = json_extract(env, '$.fingerprint') WHERE fingerprint IS NULL")


#: ``version -> the step that brings a database at that version to the next one``.
UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {0: _to_1}


def version_of(db: sqlite3.Connection) -> int:
    """The schema version of an open database (``PRAGMA user_version``)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def check_readable(db: sqlite3.Connection, path: Path) -> int:
    """The version of ``db`` when this ablate can read it; a newer one raises :class:`SchemaError`."""
    version = version_of(db)
    if version > SCHEMA_VERSION:
        raise SchemaError(f"{path} has results schema version {version}, newer than this ablate reads "
                         f"({SCHEMA_VERSION}); upgrade ablate (pip install -U ablate) to read it")
    return version


def create(db: sqlite3.Connection) -> None:
    """Lay out a new, empty database at :data:`SCHEMA_VERSION`."""
    db.executescript(SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.commit()


def upgrade(db: sqlite3.Connection, path: Path) -> int:
    """Bring ``db`` to :data:`SCHEMA_VERSION` in place, in one transaction; returns the version it had.

    Raises:
        SchemaError: the database is newer than this ablate, or cannot be upgraded
            (the message names the file and says nothing was changed).
    """
    found = check_readable(db, path)
    if found == SCHEMA_VERSION:
        return found
    db.execute("BEGIN IMMEDIATE")  # the write lock first: a second writer waits, then finds it upgraded
    try:
        version = version_of(db)
        while version < SCHEMA_VERSION:
            UPGRADES[version](db)
            version += 1
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except sqlite3.Error as error:
        db.rollback()
        raise SchemaError(f"{path}: cannot upgrade the results schema from version {found} to "
                         f"{SCHEMA_VERSION} ({error}); the file is unchanged") from None
    return found
