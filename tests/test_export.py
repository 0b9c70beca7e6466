"""``ablate export``: the tidy frame and the curves table as files that read back to what ``load_results`` gives."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tiny_suite import tiny_suite

from ablate.core.errors import UserError
from ablate.results.export import FORMATS, export_results, read_export
from ablate.run.runner import run_plan
from ablate.results.store import load_curves, load_results
from ablate.suite import load_plan

@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    (root / "exp.toml").write_text(tiny_suite("exp", encodings='"rope", { name = "learned", max_positions = 12 }'))
    return run_plan(load_plan(str(root / "exp.toml")), root / "results", progress=False).results_dir


def missing_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV cannot tell None from NaN; a missing value is a missing value."""
    return frame.astype(object).where(frame.notna(), None)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_round_trips_to_load_results(results, tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="parquet export needs pyarrow (the 'parquet' extra)")
    written = export_results(results, fmt, tmp_path / f"out{FORMATS[fmt][0]}")
    assert set(written) == {"results", "curves"}  # every training run stores its learning curve
    back, original = read_export(written["results"]), load_results(results)
    pd.testing.assert_frame_equal(missing_as_none(back), missing_as_none(original))
    # the numbers keep their types, so a reader can compute with them straight away
    for column, kind in (("value", "f"), ("eval_length", "i"), ("seed", "i"), ("train.steps", "i")):
        assert back[column].dtype.kind == kind, column
    assert set(back["status"]) == {"ok", "unsupported"}  # learned at 16 > 12 positions
    assert {"env.torch", "env.git_commit", "model.d_model", "encoding"} <= set(back.columns)


def test_default_location_and_stdout(results, capsys):
    written = export_results(results, "json")
    assert written["results"] == results / "export" / "results.json"
    assert export_results(results, "csv", "-") == {}
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("run_id,suite,kind") and len(out.splitlines()) == len(load_results(results)) + 1


def test_curves_are_a_second_table(results, tmp_path):
    written = export_results(results, "csv", tmp_path / "all.csv")
    assert written["curves"] == tmp_path / "all.curves.csv"
    back, original = read_export(written["curves"]), load_curves(results)
    assert len(back) == len(original) > 0
    pd.testing.assert_frame_equal(missing_as_none(back[["run_id", "step", "metric", "value"]]),
                                  missing_as_none(original[["run_id", "step", "metric", "value"]]))


def test_no_curves_no_second_table(results, tmp_path):
    copy = tmp_path / "exp"
    copy.mkdir()
    (copy / "results.sqlite").write_bytes((results / "results.sqlite").read_bytes())
    with sqlite3.connect(copy / "results.sqlite") as db:
        db.execute("DELETE FROM curves")
    assert set(export_results(copy, "csv", tmp_path / "bare.csv")) == {"results"}


def test_export_mistakes(results, tmp_path):
    with pytest.raises(UserError, match="expected one of csv, json, parquet"):
        export_results(results, "xlsx")
    with pytest.raises(UserError, match="no results.sqlite here"):
        export_results(tmp_path / "nothing", "csv")
    with pytest.raises(UserError, match="cannot go to stdout"):
        export_results(results, "parquet", "-")
