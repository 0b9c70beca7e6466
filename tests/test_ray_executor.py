"""The Ray executor against a real local Ray cluster (2 CPUs, loopback only, started once per module)."""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

# Keep the test cluster on 127.0.0.1 (Ray otherwise advertises the node's IP); read when ray is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

from tiny_suite import tiny_suite  # noqa: E402

from ablate.cli import main  # noqa: E402
from ablate.run.runner import create_executor, execute_spec, run_plan  # noqa: E402
from ablate.results.store import Record, load_results, load_runs  # noqa: E402
from ablate.suite import load_plan  # noqa: E402

pytestmark = pytest.mark.ray

BAD_INCLUDE = '\n[[include]]\nencoding = "none"\npooling = "max"\n"model.embedding_path" = "missing-vectors.txt"\n'


def suite_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite(steps=3) + extra)
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    """A private 2-CPU Ray instance; the executor sees it initialised and neither starts nor stops one."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning",
             _temp_dir=temp_dir)
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def accuracy_and_loss(results_dir: Path):
    frame = load_results(results_dir)
    keep = frame.metric.isin(["accuracy", "loss"]) & (frame.status == "ok")
    return frame[keep].set_index(["run_id", "metric", "eval_length"]).value.sort_index()


def test_without_ray_the_cli_says_how_to_install_it(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=re.escape('pip install "ablate[ray]"')):
        create_executor("ray")
    code = main(["run", str(suite_file(tmp_path)), "--executor", "ray", "--out", str(tmp_path / "r"), "--no-report"])
    assert code == 2 and "needs Ray, which is not installed: pip install" in capsys.readouterr().err


def test_ray_results_match_the_local_executor(tmp_path: Path, ray_cluster) -> None:
    plan = load_plan(str(suite_file(tmp_path)))
    run_plan(plan, tmp_path / "local", progress=False)
    summary = run_plan(plan, tmp_path / "ray", executor="ray", progress=False)
    assert summary.counts == {"ok": 4}
    local, remote = accuracy_and_loss(tmp_path / "local" / "tiny"), accuracy_and_loss(tmp_path / "ray" / "tiny")
    assert local.index.equals(remote.index) and len(local) == 12  # 4 runs x 2 metrics x 2 lengths, learned@16 unsupported
    assert all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(local, remote))
    assert ray.is_initialized()  # the executor did not shut down a cluster it did not start


def test_a_failing_run_is_recorded_as_failed(tmp_path: Path, ray_cluster) -> None:
    plan = load_plan(str(suite_file(tmp_path, BAD_INCLUDE)), ['grid.encoding=["none"]', "seeds=[0]"])
    summary = run_plan(plan, tmp_path / "results", executor="ray", progress=False)
    assert summary.counts == {"ok": 1, "failed": 1}
    runs = load_runs(tmp_path / "results" / "tiny").set_index("pooling")
    assert runs.status["max"] == "failed" and "ValueError" in runs.reason["max"]


def test_dead_workers_are_retried_then_recorded(tmp_path: Path, ray_cluster) -> None:
    """Seed 0 kills its worker every time, seed 1 only the first time, seed 2 raises in the task."""
    attempts = tmp_path / "attempts"
    attempts.mkdir()

    def flaky(spec):  # runs on a Ray worker (pickled by value: a local function)
        seed = spec.config["seed"]
        tries = len(list(attempts.glob(f"{seed}-*")))
        (attempts / f"{seed}-{tries}").touch()
        if seed == 0 or (seed == 1 and tries == 0):
            os._exit(1)
        if seed == 2:
            raise RuntimeError("not caught by execute")
        return execute_spec(spec)

    plan = load_plan(str(suite_file(tmp_path)), ['grid.encoding=["none"]', "seeds=[0, 1, 2]"])
    options = {"function": flaky, "max_retries": 1}
    summary = run_plan(plan, tmp_path / "results", executor="ray", progress=False, executor_options=options)
    assert summary.counts == {"failed": 2, "ok": 1}
    runs = load_runs(tmp_path / "results" / "tiny").set_index("seed")
    assert runs.status.to_dict() == {0: "failed", 1: "ok", 2: "failed"}
    assert runs.reason[0].startswith("worker died after 1 retries: WorkerCrashedError")
    assert runs.reason[2].startswith("task raised RuntimeError: not caught by execute")
    tries = sorted(p.name for p in attempts.iterdir())
    assert tries == ["0-0", "0-1", "1-0", "1-1", "2-0"]  # crashes retried once, exceptions never


def test_interrupted_suite_cancels_outstanding_runs_and_resumes(tmp_path: Path, ray_cluster) -> None:
    plan = load_plan(str(suite_file(tmp_path)))
    first = plan.runs[0].run_id

    def slow_but_first(spec):  # every run but the first would block both CPUs for minutes unless cancelled
        if spec.run_id != first:
            time.sleep(300)
        return execute_spec(spec)

    def interrupt(record: Record) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, tmp_path / "results", executor="ray", progress=False, on_record=interrupt,
                 executor_options={"function": slow_but_first})
    assert load_runs(tmp_path / "results" / "tiny").run_id.tolist() == [first]
    clock = time.perf_counter()
    summary = run_plan(plan, tmp_path / "results", executor="ray", progress=False)
    assert time.perf_counter() - clock < 120  # the sleeping tasks were cancelled, not waited for
    assert summary.skipped == 1 and summary.counts == {"ok": 3}
    runs = load_runs(tmp_path / "results" / "tiny")
    assert sorted(runs.run_id) == sorted(r.run_id for r in plan.runs)
    assert set(runs.attempts) == {1}  # every run stored exactly once


def test_executor_is_registered_and_validates_options() -> None:
    from ablate.run.executors.ray_executor import RayExecutor, RayExecutorError

    assert isinstance(create_executor("ray", workers=3, num_cpus=2), RayExecutor)
    assert create_executor("ray", num_cpus=0.5).threads == 1
    with pytest.raises(RayExecutorError, match="num-gpus"):
        create_executor("ray", num_gpus=-1)
