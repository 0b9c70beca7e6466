"""Code fingerprints: which sources they hash, stale runs, and re-running them."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tiny_suite import tiny_suite

from ablate.core import fingerprint
from ablate import load_results
from ablate.cli import main
from ablate.core.fingerprint import (NOT_RUN, UNRECORDED, compute, describe, fingerprints, package_root, source_files,
                                     stale_runs)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fingerprint") / "ablate"
    shutil.copytree(package_root(), root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _around_an_edit(root: Path, edited: str) -> tuple[str, str]:
    """The fingerprints of the package copy before and after appending a line to one file (then restored)."""
    before, path = compute(root, "0.1.0"), root / edited
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"# an edit\n")
        return before, compute(root, "0.1.0")
    finally:
        path.write_bytes(original)


@pytest.mark.parametrize("edited", ["model/transformer.py", "model/encodings/alibi.py", "tasks/heldout.py",
                                    "run/train.py", "run/criterion.py", "measure/timing.py",
                                    "analysis/stats/confidence.py", "data/shakespeare.csv"])
def test_an_edit_to_what_runs_changes_the_fingerprint(package_copy: Path, edited: str) -> None:
    before, after = _around_an_edit(package_copy, edited)
    assert after != before and compute(package_copy, "0.1.0") == before


@pytest.mark.parametrize("edited", ["analysis/report/sections.py", "analysis/report/findings.py",
                                    "analysis/plots/figures.py", "cli/__init__.py", "cli/args.py",
                                    "claims/__init__.py", "analysis/report/templates/report.md.j2"])
def test_an_edit_to_analysis_or_presentation_keeps_it(package_copy: Path, edited: str) -> None:
    before, after = _around_an_edit(package_copy, edited)
    assert after == before
    assert compute(package_copy, "0.2.0") != before  # the version is part of it
    assert before.startswith("0.1.0+") and len(before.split("+")[1]) == 12


_RUN_BOTH_KINDS = """
import copy, json, sys
from ablate.suite import load_plan
from ablate.run.executors.worker import execute
plan = load_plan(sys.argv[1], ['train.steps=2', 'eval.batches=1', 'measure.min_run_time=0.01', 'measure.lengths=[16]'])
for spec in (plan.train_runs()[0], plan.measure_runs()[0]):
    record = execute(spec.run_id, plan.name, spec.kind, copy.deepcopy(spec.config), spec.axes)
    assert record.status == "ok", record.reason
    assert record.env["fingerprint"]
print(json.dumps(sorted(m.__file__ for name, m in sys.modules.items()
                        if name.startswith("ablate") and getattr(m, "__file__", None))))
"""


def test_every_module_a_run_imports_is_hashed() -> None:
    """The exclusions are safe: a training run and a measurement run never import them."""
    quickstart = Path(__file__).resolve().parents[1] / "suites" / "quickstart.toml"
    done = subprocess.run([sys.executable, "-c", _RUN_BOTH_KINDS, str(quickstart)], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(package_root().parent)})
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [Path(f).resolve() for f in json.loads(done.stdout.strip().splitlines()[-1])]
    root = package_root()
    inside = {p for p in imported if root in p.parents}
    assert inside and inside <= set(source_files()), sorted(map(str, inside - set(source_files())))
    assert all((root / part).exists() for part in NOT_RUN)  # no stale entry in the exclusion list


def _frame(rows: list[tuple[str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame({"run_id": [r for r, _ in rows for _ in range(2)],
                         "env.fingerprint": [f for _, f in rows for _ in range(2)], "metric": "accuracy"})


def test_fingerprints_and_stale_runs_of_a_frame() -> None:
    frame = _frame([("a", "0.1.0+new"), ("b", "0.1.0+old"), ("c", "0.1.0+new"), ("d", None)])
    assert fingerprints(frame) == ["0.1.0+new", "0.1.0+old", UNRECORDED]
    assert stale_runs(frame, "0.1.0+new") == ["b", "d"]
    assert stale_runs(frame.drop(columns="env.fingerprint"), "0.1.0+new") == ["a", "b", "c", "d"]
    assert describe(frame, "0.1.0+new") == (
        "Code fingerprints: 0.1.0+new (2 runs), 0.1.0+old (1 run), unrecorded (1 run). These results mix 3 code "
        "versions. 2 of 4 runs are stale (the code now installed is 0.1.0+new); re-run them with --rerun-stale.")
    one = _frame([("a", "0.1.0+new")])
    assert describe(one, "0.1.0+new") == "Code fingerprint: 0.1.0+new (1 run)."
    assert fingerprints(one.iloc[:0]) == [] and stale_runs(one.iloc[:0], "x") == []


def test_a_stale_run_is_detected_and_rerun_with_rerun_stale(tmp_path: Path, monkeypatch, capsys) -> None:
    suite, results = tmp_path / "stale.toml", tmp_path / "results"
    suite.write_text(tiny_suite("stale", encodings='"none"'))
    run = ["run", str(suite), "--out", str(results), "--no-report"]
    monkeypatch.setattr(fingerprint, "current", lambda: "0.1.0+before")
    assert main(run) == 0
    frame = load_results(results / "stale")
    assert fingerprints(frame) == ["0.1.0+before"] and frame["run_id"].nunique() == 2

    monkeypatch.setattr(fingerprint, "current", lambda: "0.1.0+after")  # the code changed
    capsys.readouterr()
    assert main(run) == 0
    said = capsys.readouterr().err
    assert "2 of 2 stored runs are stale (other code than 0.1.0+after)" in said and "--rerun-stale" in said
    assert "2 already stored" in said  # kept, not re-run
    assert stale_runs(load_results(results / "stale")) == sorted(frame["run_id"].unique())

    assert main([*run, "--rerun-stale"]) == 0
    said = capsys.readouterr().err
    assert "re-running them" in said and "2 ok" in said
    after = load_results(results / "stale")
    assert fingerprints(after) == ["0.1.0+after"] and stale_runs(after) == []
    with sqlite3.connect(results / "stale" / "results.sqlite") as db:
        assert db.execute("SELECT attempts FROM runs").fetchall() == [(2,), (2,)]  # replaced, not added
    assert main(run) == 0
    assert "2 stored runs, none stale" in capsys.readouterr().err
