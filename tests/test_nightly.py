"""The nightly asv job: benchmark params from the suite, skips, one real benchmark call, asv command lines.

Nothing here runs asv; ``tox`` (its last command, ``python -m ablate.nightly --check``) does.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from ablate import nightly
from ablate.nightly import commands, jobs
from ablate.model.encodings import ENCODINGS
from ablate.suite import load_plan

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "suites" / "nightly.toml"
sys.path.insert(0, str(REPO))

from benchmarks import common


@pytest.fixture(scope="module")
def plan():
    return load_plan(str(SUITE))


def write_suite(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "nightly_variant.toml"
    path.write_text(f'extends = "{SUITE}"\nname = "variant"\n{body}')
    return path


# ----------------------------------------------------------- params from the suite
def test_measure_params_are_the_suites_grid_and_lengths(plan):
    params, names = common.measure_params(plan)
    assert names == ["encoding", "pooling", "length"]
    assert params[0][:3] == ["none", "sinusoidal", "learned[max_positions=1024]"]
    assert params[1] == ["mean", "cls"]
    assert params[2] == sorted(plan.suite.measure.lengths)
    acc_params, acc_names = common.accuracy_params(plan)
    assert acc_names == ["encoding", "pooling", "eval_length"]
    assert acc_params == [params[0], params[1], [16, 32]]  # train length 16, multiples 1 and 2


def test_every_registered_encoding_is_tracked(plan):
    tracked = {label.split("[")[0] for label in common.grid_labels(plan.suite, "encoding")}
    assert tracked == set(ENCODINGS.names()), "add new encodings to suites/nightly.toml"


def test_changing_the_suite_changes_the_benchmark_params(tmp_path, monkeypatch):
    variant = write_suite(tmp_path, '[grid]\nencoding = ["rope", "alibi"]\npooling = ["last"]\n'
                                    '[measure]\nlengths = [64, 256]\nbatch_sizes = [2, 4]\n')
    monkeypatch.setenv("ABLATE_NIGHTLY_SUITE", str(variant))
    from benchmarks import model

    try:
        importlib.reload(model)
        assert model.PARAM_NAMES == ["encoding", "pooling", "length", "batch_size"]
        assert model.Forward.params == [["rope", "alibi"], ["last"], [64, 256], [2, 4]]
        assert model.TrainStep.params == model.Forward.params
        case = common.build_case("forward", "alibi", "last", 64, 2)
        assert tuple(case.batch.inputs.shape) == (2, 64)
    finally:
        monkeypatch.delenv("ABLATE_NIGHTLY_SUITE")
        importlib.reload(model)
    assert model.Forward.params[1] == ["mean", "cls"]


# ------------------------------------------------------------------- skips
def test_unsupported_length_is_skipped_in_setup(plan):
    from benchmarks.model import Forward, TrainStep

    learned = "learned[max_positions=1024]"
    with pytest.raises(NotImplementedError, match="1024"):
        Forward().setup(learned, "mean", 2048)
    with pytest.raises(NotImplementedError):
        TrainStep().setup(learned, "cls", 2048)
    assert common.build_case("forward", learned, "cls", 512, the_plan=plan).model.encoding.max_positions == 1024


def test_combinations_outside_the_suite_are_skipped(tmp_path):
    variant = load_plan(str(write_suite(tmp_path, '[measure]\nmodes = ["forward"]\nlengths = [16]\n'
                                                  '[[exclude]]\nencoding = "t5"\npooling = "cls"\n')))
    with pytest.raises(NotImplementedError, match="mode"):
        common.build_case("train_step", "none", "mean", 16, the_plan=variant)
    with pytest.raises(NotImplementedError, match="t5"):
        common.build_case("forward", "t5", "cls", 16, the_plan=variant)
    common.build_case("forward", "t5", "mean", 16, the_plan=variant)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")
def test_cuda_memory_is_skipped_without_cuda():
    from benchmarks.model import CudaMemory

    assert getattr(CudaMemory.track_cuda_peak_memory, "skip_benchmark", False)  # not even discovered
    with pytest.raises(NotImplementedError, match="CUDA"):
        CudaMemory().setup("none", "mean", 128)


# ------------------------------------------------------ benchmarks really run
def test_time_forward_and_train_step_run_once(plan):
    from benchmarks.model import Forward, Threads, TrainStep

    forward = Forward()
    forward.setup("rope", "cls", 128)
    forward.time_forward("rope", "cls", 128)
    forward.peakmem_forward("rope", "cls", 128)
    assert not forward.case.model.training
    step = TrainStep()
    step.setup("alibi", "mean", 128)
    before = [p.detach().clone() for p in step.case.model.parameters()]
    step.time_train_step("alibi", "mean", 128)
    assert any(not torch.equal(a, b) for a, b in zip(before, step.case.model.parameters()))
    assert Threads().track_threads() == plan.suite.measure.threads


def test_inputs_are_frozen(plan):
    a = common._build_case("forward", ("sinusoidal", "mean", 128), plan)
    b = common._build_case("forward", ("sinusoidal", "mean", 128), plan)
    assert torch.equal(a.batch.inputs, b.batch.inputs)
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def test_track_accuracy_trains_each_run_once(monkeypatch):
    from benchmarks.accuracy import Accuracy

    monkeypatch.setenv("ABLATE_NIGHTLY_SET", "train.steps=2 eval.batches=1 'grid.encoding=[\"none\", \"rope\"]'")
    bench = Accuracy()
    results = bench.setup_cache()
    assert set(results) == {("none", "mean"), ("none", "cls"), ("rope", "mean"), ("rope", "cls")}
    bench.setup(results, "rope", "cls", 32)
    assert 0.0 <= bench.track_accuracy(results, "rope", "cls", 32) <= 1.0
    with pytest.raises(NotImplementedError):
        bench.setup(results, "t5", "mean", 16)  # not in this (overridden) suite
    unsupported = {("x", "mean"): {"status": "unsupported", "reason": "too long", "accuracy": {}, "why": {}}}
    with pytest.raises(NotImplementedError, match="too long"):
        bench.setup(unsupported, "x", "mean", 16)
    diverged = {("x", "mean"): {"status": "diverged", "reason": "loss nan", "accuracy": {}, "why": {}}}
    with pytest.raises(RuntimeError, match="diverged"):
        bench.track_accuracy(diverged, "x", "mean", 16)


# ---------------------------------------------------------- asv command lines
def test_run_commands():
    run = commands.run_command("box-cpu", "abc123", "forkserver", python="/tmp/ablate-asv-x/python3.11")
    assert run.argv[:3] == [sys.executable, "-m", "asv"]
    assert run.argv[3:6] == ["run", "--environment=existing:/tmp/ablate-asv-x/python3.11", "--set-commit-hash"]
    assert ["--machine", "box-cpu"] == run.argv[7:9]
    assert "--launch-method" in run.argv and "forkserver" in run.argv
    assert run.argv[-2:] == ["--config", str(REPO / "asv.conf.json")]
    assert str(REPO) in run.env["ASV_PYTHONPATH"]
    first = commands.run_command("gpu-box-h100", "abc123", None, python=None, first=True)
    assert first.argv[3:5] == ["run", "abc123^!"] and "--launch-method" not in first.argv and not first.env
    later = commands.run_command("gpu-box-h100", "abc123", None, python=None, quick=True)
    assert later.argv[3:5] == ["run", "NEW"] and "--quick" in later.argv
    discover = commands.discover_command("m", "/p/python3.11")
    assert discover.argv[3:7] == ["run", "--environment=existing:/p/python3.11", "--bench", "just-discover"]
    assert commands.launch_method(cuda=True) is None and commands.launch_method(cuda=False) == "forkserver"


def test_check_runs_every_benchmark_on_a_cheap_selection(plan):
    machine, check, run = commands.check_commands(plan, "ci-cpu", "forkserver")
    assert machine.argv[3:5] == ["machine", "--yes"]
    assert check.argv[3:5] == ["check", "--python=same"]
    assert run.argv[3:8] == ["run", "--python=same", "--quick", "--dry-run", "--show-stderr"]
    assert run.env["ABLATE_NIGHTLY_SET"] == commands.CHECK_OVERRIDES
    regexes = [run.argv[i + 1] for i, arg in enumerate(run.argv) if arg == "--bench"]
    # asv matches each regex against "<benchmark>(<repr of params>)", as asv.benchmarks.Benchmarks does.
    params, _ = common.measure_params(plan)
    names = {f"model.{cls}.{fn}({', '.join(map(repr, combo))})"
             for cls, fn in [("Forward", "time_forward"), ("Forward", "peakmem_forward"),
                             ("TrainStep", "time_train_step")]
             for combo in itertools.product(*params)}
    names |= {"model.Threads.track_threads"}
    names |= {f"accuracy.Accuracy.track_accuracy('{e}', '{p}', {n})" for e in params[0] for p in params[1]
              for n in (16, 32)}
    selected = {name for name in names if any(re.search(regex, name) for regex in regexes)}
    assert "model.Forward.time_forward('learned[max_positions=1024]', 'mean', 2048)" in selected
    assert "model.TrainStep.time_train_step('none', 'cls', 128)" in selected
    assert "model.Threads.track_threads" in selected
    for fn in ("time_forward", "peakmem_forward", "time_train_step"):
        chosen = [n for n in selected if f".{fn}(" in n]
        assert {e for e in params[0] if any(f"({e!r}," in n for n in chosen)} == set(params[0])
    measured = [name for name in names if name.startswith("model.")]
    assert len([n for n in selected if n.startswith("model.")]) < len(measured) / 3  # minutes, not the whole grid
    assert all(n in selected for n in names if ".track_accuracy(" in n)  # one training pass trains them all


def test_failed_benchmarks_are_found_in_asv_run_output():
    output = ("[16.67%] ··· b.A.time_fail                                           1/2 failed\n"
              "[16.67%] ··· === ========\n              1   failed \n"
              "[33.33%] ··· model.Forward.time_forward                                      ok\n"
              "[50.00%] ··· b.time_plain_fail                                           failed\n"
              "              asv: benchmark failed (exit status 1)\n")
    assert [line.split()[2] for line in commands.failed_benchmarks(output)] == ["b.A.time_fail", "b.time_plain_fail"]


def test_previous_commit_is_the_newest_ancestor(tmp_path):
    folder = tmp_path / "box-cpu"
    folder.mkdir()
    (folder / "machine.json").write_text("{}")
    for commit, date in [("a1", 1), ("b2", 2), ("c3", 3), ("d4", 4)]:
        (folder / f"{commit}-env.json").write_text(json.dumps({"commit_hash": commit, "date": date, "env_name": "env"}))
    (folder / "b2-other.json").write_text(json.dumps({"commit_hash": "b2", "date": 2, "env_name": "other"}))
    (tmp_path / "other-box").mkdir()
    (tmp_path / "other-box" / "e5-env.json").write_text(json.dumps({"commit_hash": "e5", "date": 5, "env_name": "env"}))
    commits = commands.result_commits(tmp_path, "box-cpu")
    assert commits == {"a1": 1, "b2": 2, "c3": 3, "d4": 4}
    assert commands.result_commits(tmp_path, "box-cpu", {"other"}) == {"b2": 2}
    assert set(commands.result_commits(tmp_path)) == {"a1", "b2", "c3", "d4", "e5"}  # every machine
    on_branch = {"a1", "b2"}.__contains__  # c3 is on another branch; d4 is head
    assert commands.previous_commit(commits, "d4", lambda commit, head: on_branch(commit)) == "b2"
    assert commands.previous_commit({"d4": 4}, "d4", lambda c, h: True) is None


def test_dry_run_prints_the_whole_job(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "machine_name", lambda override=None: "box-class")
    monkeypatch.setattr(jobs, "_cuda", lambda: True)
    monkeypatch.setattr(commands, "results_dir", lambda: tmp_path)
    assert nightly.main(["--existing", "--dry-run", "--threshold", "1.3"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("$ ")]
    assert [line.split(" -m asv ")[1].split()[0] for line in lines] == ["machine", "run", "publish"]
    assert "--machine box-class" in lines[0] and "--launch-method" not in lines[1]
    assert "--environment=existing:" in lines[1] and "python3.11" in lines[1]
    assert "nothing to compare" in out


def test_asv_configuration():
    config = commands.read_config()
    assert config["version"] == 1 and config["project"] == "ablate" and config["repo"] == "."
    assert config["branches"] == ["main"] and config["environment_type"] == "virtualenv"
    assert config["launch_method"] == "spawn"
    assert (config["results_dir"], config["html_dir"]) == ("results/asv", "results/asv/html")
    assert (config["benchmark_dir"], config["env_dir"]) == ("benchmarks", ".asv/env")
    assert any("download.pytorch.org/whl/cpu" in step for step in config["install_command"])


def test_one_cli_ablate_nightly_has_every_flag_of_the_module_entry_point():
    from ablate.cli import build_parser

    def flags(parser):
        return {option for action in parser._actions for option in action.option_strings}

    cli = build_parser()
    sub = next(a for a in cli._actions if a.dest == "command").choices["nightly"]
    module = nightly.build_parser()
    assert flags(sub) == flags(module) >= {"--machine", "--check", "--dry-run", "--continuous", "--quick",
                                            "--existing", "--threshold", "--accuracy-drop", "--base", "--budget-s"}
    assert all(action.help for action in sub._actions)  # every flag says what it does
    args = cli.parse_args(["nightly", "--continuous", "--base", "HEAD", "--threshold", "1.5", "--accuracy-drop",
                           "0.02", "--machine", "m", "--dry-run"])
    assert (args.continuous, args.base, args.threshold, args.accuracy_drop, args.machine, args.dry_run) == \
        (True, "HEAD", 1.5, 0.02, "m", True)
    docs = (REPO / "docs" / "nightly.md").read_text()
    assert all(flag in docs for flag in flags(module) - {"-h", "--help"})  # and every flag is documented


# ------------------------------------------------------------- benchmark versions
def test_a_changed_recipe_starts_a_new_series(tmp_path, plan):
    base = {kind: common.recipe_version(kind, the_plan=plan) for kind in common.RECIPES}
    variant = load_plan(str(write_suite(tmp_path, "[model]\nd_model = 32\n")))
    model_changed = {kind: common.recipe_version(kind, the_plan=variant) for kind in common.RECIPES}
    assert model_changed["forward"] != base["forward"] and model_changed["accuracy"] != base["accuracy"]
    assert model_changed["threads"] == base["threads"]
    longer = load_plan(str(write_suite(tmp_path, "[train]\nsteps = 400\n")))
    train_changed = {kind: common.recipe_version(kind, the_plan=longer) for kind in common.RECIPES}
    assert train_changed["forward"] == base["forward"]  # inference does not read the training recipe
    assert train_changed["train_step"] != base["train_step"] and train_changed["accuracy"] != base["accuracy"]
    wider = load_plan(str(write_suite(tmp_path, '[grid]\nencoding = ["none", "rope"]\n')))
    assert common.recipe_version("forward", the_plan=wider) == base["forward"]  # the grid names params only
    assert common.recipe_version("forward", common.Case, the_plan=plan) != base["forward"]  # and the code counts


def test_asv_discovers_the_recipe_versions(tmp_path, monkeypatch):
    from asv_runner.discovery import disc_benchmarks
    from benchmarks import accuracy, model

    found = {b.name: b.version for b in disc_benchmarks(str(REPO / "benchmarks"))}
    assert found["model.Forward.time_forward"] == model.Forward.version
    assert found["accuracy.Accuracy.track_accuracy"] == accuracy.Accuracy.version
    assert found["model.Forward.time_forward"] != found["model.TrainStep.time_train_step"]
    monkeypatch.setenv("ABLATE_NIGHTLY_SUITE", str(write_suite(tmp_path, "[eval]\nbatches = 5\n")))
    try:
        importlib.reload(model)
        importlib.reload(accuracy)
        assert model.Forward.version == found["model.Forward.time_forward"]  # eval is not its recipe
        assert accuracy.Accuracy.version != found["accuracy.Accuracy.track_accuracy"]
    finally:
        monkeypatch.delenv("ABLATE_NIGHTLY_SUITE")
        importlib.reload(model)
        importlib.reload(accuracy)
