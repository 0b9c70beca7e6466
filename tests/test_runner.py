"""The runner end to end on tiny suites: storage, resume after Ctrl-C and SIGKILL, statuses, executors."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny_suite import tiny_suite

from ablate.cli import main
from ablate.run.runner import run_plan
from ablate.results.store import load_results, load_runs
from ablate.suite import load_plan

def suite_file(tmp_path: Path, steps: int = 3, extra: str = "") -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite(steps=steps) + extra)
    return path


def test_run_stores_tidy_results_and_resumes(tmp_path: Path) -> None:
    plan = load_plan(str(suite_file(tmp_path)))
    summary = run_plan(plan, tmp_path / "results", progress=False)
    assert summary.total == 4 and summary.counts == {"ok": 4}
    frame = load_results(tmp_path / "results" / "tiny")
    assert {"run_id", "metric", "value", "eval_length", "encoding", "pooling", "seed", "status", "env.torch",
            "higher_is_better", "train_length", "model.d_model"} <= set(frame.columns)
    assert frame.attrs["axes"] == ["encoding", "pooling"]
    assert frame.attrs["baseline"] == {"encoding": "none", "pooling": "mean"}
    accuracy = frame[frame.metric == "accuracy"]
    assert set(accuracy.eval_length) == {8, 16}
    # The learned table has 12 rows: length 16 is unsupported, a data point rather than a crash.
    learned16 = accuracy[(accuracy.encoding == "learned[max_positions=12]") & (accuracy.eval_length == 16)]
    assert set(learned16.status) == {"unsupported"} and learned16.value.isna().all()
    assert "max_positions" in learned16.reason.iloc[0]
    again = run_plan(plan, tmp_path / "results", progress=False)
    assert again.skipped == 4 and again.counts == {}


def test_same_run_id_gives_the_same_metrics(tmp_path: Path) -> None:
    plan = load_plan(str(suite_file(tmp_path)))
    run_plan(plan, tmp_path / "a", progress=False)
    run_plan(plan, tmp_path / "b", progress=False)
    a, b = (load_results(tmp_path / d / "tiny") for d in ("a", "b"))
    keep = ~a.metric.isin(["train_time_s", "eval_time_s"])
    merged = a[keep].merge(b, on=["run_id", "metric", "eval_length"])
    assert len(merged) == keep.sum()
    assert ((merged.value_x == merged.value_y) | (merged.value_x.isna() & merged.value_y.isna())).all()


def test_ctrl_c_keeps_finished_runs_and_the_next_run_resumes(tmp_path: Path) -> None:
    plan = load_plan(str(suite_file(tmp_path)))
    seen = []

    def interrupt_after_two(record) -> None:
        seen.append(record.run_id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, tmp_path / "results", progress=False, on_record=interrupt_after_two)
    assert len(load_runs(tmp_path / "results" / "tiny")) == 2
    summary = run_plan(plan, tmp_path / "results", progress=False)
    assert summary.skipped == 2 and sum(summary.counts.values()) == 2


def test_sigkill_leaves_no_corrupt_file_and_resume_completes(tmp_path: Path) -> None:
    path = suite_file(tmp_path, steps=40)
    database = tmp_path / "results" / "tiny" / "results.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "ablate.cli", "run", str(path), "--out", str(tmp_path / "results"), "--no-report"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and process.poll() is None:
        if database.exists():
            with sqlite3.connect(database) as db:
                stored = db.execute("SELECT count(*) FROM runs").fetchone()[0]
            if stored >= 1:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        survivors = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert survivors >= 1
    summary = run_plan(load_plan(str(path)), tmp_path / "results", progress=False)
    assert summary.skipped == survivors and summary.skipped + sum(summary.counts.values()) == 4


def test_failures_are_recorded_and_set_the_exit_code(tmp_path: Path) -> None:
    extra = '\n[[include]]\nencoding = "none"\npooling = "max"\n"model.embedding_path" = "missing-vectors.txt"\n'
    path = suite_file(tmp_path, extra=extra)
    code = main(["run", str(path), "--out", str(tmp_path / "results"), "--no-report"])
    runs = load_runs(tmp_path / "results" / "tiny")
    failed = runs[runs.status == "failed"]
    assert code == 1 and len(failed) == 2  # both seeds of the bad include
    assert "ValueError" in failed.reason.iloc[0]
    assert set(runs[runs.status != "failed"].status) == {"ok"}


def test_divergence_is_a_status(tmp_path: Path) -> None:
    path = suite_file(tmp_path, extra="")
    plan = load_plan(str(path), ["train.diverge_loss=0.0001", 'grid.encoding=["none"]', "seeds=[0]"])
    run_plan(plan, tmp_path / "results", progress=False)
    runs = load_runs(tmp_path / "results" / "tiny")
    assert runs.status.tolist() == ["diverged"] and "step 0" in runs.reason.iloc[0]


@pytest.mark.slow
def test_process_pool_matches_local_results(tmp_path: Path) -> None:
    plan = load_plan(str(suite_file(tmp_path)))
    run_plan(plan, tmp_path / "local", progress=False)
    summary = run_plan(plan, tmp_path / "pool", executor="process", workers=2, progress=False)
    assert summary.counts == {"ok": 4}
    local, pool = (load_results(tmp_path / d / "tiny") for d in ("local", "pool"))
    keep = lambda f: f[f.metric.isin(["accuracy", "loss"]) & (f.status == "ok")].set_index(["run_id", "metric", "eval_length"]).value  # noqa: E731
    a, b = keep(local).sort_index(), keep(pool).sort_index()
    assert a.index.equals(b.index)
    assert all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-5) for x, y in zip(a, b))


def test_plan_and_list_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(suite_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "4 runs" in out and "rough cost" in out
    assert main(["list"]) == 0
    assert "alibi" in capsys.readouterr().out


def test_threads_per_worker_are_set_and_recorded(tmp_path: Path) -> None:
    from ablate.run.runner import threads_per_worker

    assert threads_per_worker(1, cores=2) == 2 and threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(4, cores=2) == 1  # never below one
    path = suite_file(tmp_path)
    code = main(["run", str(path), "--executor", "process", "--workers", "1", "--threads", "1",
                 "--out", str(tmp_path / "results"), "--no-report"])
    assert code == 0
    frame = load_results(tmp_path / "results" / "tiny")
    assert set(frame["env.threads"]) == {1}
    assert main(["run", str(path), "--threads", "0", "--out", str(tmp_path / "results")]) == 2


def test_a_new_database_appears_with_its_tables_and_an_existing_one_is_kept(tmp_path: Path) -> None:
    # A reader polling for results.sqlite (a report, the SIGKILL test above) must never
    # find the file without its tables; a second store must not replace a first one's file.
    from ablate.results.store import Store, _create_with_schema

    run_plan(load_plan(str(suite_file(tmp_path))), tmp_path / "results", progress=False)
    database = tmp_path / "results" / "tiny" / "results.sqlite"
    _create_with_schema(database)  # exists: nothing happens
    with Store(database.parent):
        pass
    assert len(load_runs(database.parent)) == 4
    fresh = tmp_path / "fresh" / "results.sqlite"
    fresh.parent.mkdir()
    _create_with_schema(fresh)
    with sqlite3.connect(fresh) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "metrics"} <= tables
    assert not [p for p in fresh.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary left
