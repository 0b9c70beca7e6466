"""The results database's schema version, upgrades of older stores, and reading many results folders."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from ablate.results import schema as store_schema
from ablate.cli import main
from ablate.run.criterion import CurvePoint
from ablate.core.errors import SchemaError
from ablate.results.export import export_results, read_export
from ablate.results.store import MetricRow, Record, Store, load_curves, load_results, load_runs
from ablate.results.schema import SCHEMA_VERSION


def _record(run_id: str, seed: int, fingerprint: str | None = "0.1.0+abc") -> Record:
    config = {"task": {"name": "parity"}, "seed": seed, "model": {"encoding": {"name": "rope"}},
              "train": {"length": 8}}
    env = {"torch": "2.13.0"} | ({"fingerprint": fingerprint} if fingerprint else {})
    metrics = [MetricRow("accuracy", 8, 0.5 + seed / 10), MetricRow("accuracy", 16, 0.5)]
    return Record(run_id=run_id, suite="s", kind="train", status="ok", config=config, metrics=metrics, env=env,
                  curve=[CurvePoint(1, 0.7, "accuracy", 0.5)])


def _store(folder: Path, runs: list[Record]) -> Path:
    with Store(folder) as store:
        store.set_meta("suite_name", folder.name)
        store.set_meta("axes", ["encoding"])
        for record in runs:
            store.write(record)
    return folder / "results.sqlite"


def _as_version_0(database: Path) -> None:
    """Make a store look as every store did before schema versions: no runs.fingerprint, user_version 0."""
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE runs DROP COLUMN fingerprint")
        db.execute("PRAGMA user_version = 0")


def _version(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return store_schema.version_of(db)


def _columns(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {row[1] for row in db.execute("PRAGMA table_info(runs)")}


def test_a_new_store_has_the_current_version_and_the_fingerprint_column(tmp_path: Path) -> None:
    database = _store(tmp_path / "new", [_record("a", 0), _record("b", 1, fingerprint=None)])
    assert _version(database) == SCHEMA_VERSION == 1
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT run_id, fingerprint FROM runs ORDER BY run_id").fetchall() == [
            ("a", "0.1.0+abc"), ("b", None)]


def test_an_older_store_is_read_as_it_is_and_upgraded_in_place_by_a_writer(tmp_path: Path) -> None:
    database = _store(tmp_path / "old", [_record("a", 0), _record("b", 1)])
    _as_version_0(database)
    before = database.read_bytes()
    frame = load_results(database.parent)  # reading never writes
    assert database.read_bytes() == before and _version(database) == 0
    assert set(frame["env.fingerprint"]) == {"0.1.0+abc"} and len(frame) == 4

    with Store(database.parent) as store:  # a writer upgrades it
        assert store.fingerprints() == {"a": "0.1.0+abc", "b": "0.1.0+abc"}  # copied from each run's env
    assert _version(database) == SCHEMA_VERSION and "fingerprint" in _columns(database)
    after = load_results(database.parent)
    pd.testing.assert_frame_equal(frame, after)


def test_a_failed_upgrade_leaves_the_store_unchanged(tmp_path: Path, monkeypatch) -> None:
    database = _store(tmp_path / "old", [_record("a", 0)])
    _as_version_0(database)

    real = store_schema.UPGRADES[0]

    def half_then_fail(db: sqlite3.Connection) -> None:
        real(db)  # the real step's changes, then a failure before the commit
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(store_schema.UPGRADES, 0, half_then_fail)
    with pytest.raises(SchemaError, match="from version 0 to 1 .*disk I/O error.*unchanged"):
        Store(database.parent)
    assert _version(database) == 0 and "fingerprint" not in _columns(database)
    assert len(load_results(database.parent)) == 2


def test_a_store_from_a_newer_ablate_is_refused_with_what_to_do(tmp_path: Path, capsys) -> None:
    database = _store(tmp_path / "future", [_record("a", 0)])
    with sqlite3.connect(database) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for read in (load_results, load_runs, load_curves, Store):
        with pytest.raises(SchemaError, match="schema version 2, newer than this ablate reads .1.; upgrade ablate"):
            read(database.parent)
    assert main(["export", str(database.parent)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "upgrade ablate" in lines[0]


def test_many_results_folders_read_as_one_frame_tagged_by_folder(tmp_path: Path) -> None:
    first = _store(tmp_path / "one", [_record("a", 0), _record("b", 1)]).parent
    second = _store(tmp_path / "two", [_record("a", 0, fingerprint="0.1.0+new")]).parent
    _as_version_0(second / "results.sqlite")  # folders of different schema versions read together
    frame = load_results([first, second])
    assert len(frame) == 6 and list(frame.groupby("results_dir").size().items()) == [(str(first), 4),
                                                                                   (str(second), 2)]
    assert frame.groupby("results_dir")["env.fingerprint"].first().tolist() == ["0.1.0+abc", "0.1.0+new"]
    assert frame.attrs["suite"] == "one, two" and frame.attrs["axes"] == ["encoding"]
    assert load_results(first)["results_dir"].eq(str(first)).all()  # one folder is tagged too
    assert set(load_runs([first, second])["results_dir"]) == set(load_curves([first, second])["results_dir"]) \
        == {str(first), str(second)}
    with pytest.raises(ValueError, match="no results folder given"):
        load_results([])


def test_export_writes_many_folders_as_one_table(tmp_path: Path, capsys) -> None:
    first = _store(tmp_path / "one", [_record("a", 0)]).parent
    second = _store(tmp_path / "two", [_record("a", 0), _record("b", 1)]).parent
    target = tmp_path / "all.csv"
    assert main(["export", str(first), str(second), "-o", str(target)]) == 0
    table = read_export(target)
    assert len(table) == 6 and table["results_dir"].value_counts().to_dict() == {str(second): 4, str(first): 2}
    assert len(read_export(tmp_path / "all.curves.csv")) == 3
    with pytest.raises(Exception, match="give its file with -o"):
        export_results([first, second], "csv")
