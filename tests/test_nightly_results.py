"""Nightly regressions from asv's result files, one machine class across hostnames, a stable environment name.

Nights are simulated: the ``asv run`` of the job is replaced by writing an asv result
file with asv's own writer; nothing is timed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ablate.core.environment
from ablate.nightly import commands, jobs, machine
from ablate.nightly.machine import MachineClass, machine_name, memory_class, stable_python
from ablate.nightly.record import env_name
from ablate.nightly.results import compare_commits, compare_values, read_values

TIME = "model.Forward.time_forward"
ACCURACY = "accuracy.Accuracy.track_accuracy"
PARAMS = [["'rope'", "'alibi'"], ["'mean'"], ["128"]]
EPYC = MachineClass("AMD EPYC 7763 64-Core Processor", 4, 16, None, "2.13.0+cpu")


def write_night(results: Path, machine_name_: str, commit: str, date: int, *, rope_time: float = 0.010,
                accuracy: tuple[float, float] = (0.90, 0.80), time_version: str = "v1", failed: bool = False,
                spread: float = 0.01) -> Path:
    """One night's asv result file, written by asv: time_forward samples and track_accuracy values."""
    from asv.results import Results
    from asv.runner import BenchmarkResult

    results_file = Results({"machine": machine_name_, "python": "3.11"}, {}, commit, date, "3.11", "existing-py", {})
    samples = [[rope_time * (1 + spread * k) for k in range(-2, 3)], [0.012 * (1 + 0.01 * k) for k in range(-2, 3)]]
    values = [None if failed else sorted(s)[2] for s in samples[:1]] + [sorted(samples[1])[2]]
    results_file.add_result({"name": TIME, "params": PARAMS, "version": time_version},
                            BenchmarkResult(values, [None if failed else samples[0], samples[1]], [1, 1], 0, "", None),
                            record_samples=True)
    results_file.add_result({"name": ACCURACY, "params": PARAMS, "version": "acc"},
                            BenchmarkResult(list(accuracy), [None, None], [None, None], 0, "", None))
    (results / machine_name_).mkdir(parents=True, exist_ok=True)
    results_file.save(str(results))
    return results / machine_name_


# ----------------------------------------------------------------------------- the machine
def test_the_machine_is_named_by_its_class_not_its_hostname(monkeypatch):
    assert EPYC.name() == "amd-epyc-7763-64-core-4cpu-16gib-cpu-torch-2-13-0-cpu"
    xeon = MachineClass("Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz", 4, 16, None, "2.13.0+cpu")
    assert xeon.name() == "intel-xeon-platinum-8370c-2-80ghz-4cpu-16gib-cpu-torch-2-13-0-cpu"
    gpu = MachineClass("AMD EPYC 7763 64-Core Processor", 16, 128, "NVIDIA H100 80GB HBM3", "2.13.0+cu128")
    assert gpu.name().endswith("16cpu-128gib-nvidia-h100-80gb-hbm3-torch-2-13-0-cu128")
    names = set()
    for hostname in ("fv-az123-456", "fv-az987-001"):
        monkeypatch.setattr("socket.gethostname", lambda: hostname)
        names.add(machine.this_machine().name())
    assert len(names) == 1  # a new runner every night is the same machine


def test_the_name_can_be_given_and_must_be_a_folder_name():
    assert machine_name("gpu01", environ={}, machine=EPYC) == "gpu01"
    assert machine_name(None, environ={"ABLATE_MACHINE": "box"}, machine=EPYC) == "box"
    assert machine_name(None, environ={}, machine=EPYC) == EPYC.name()
    with pytest.raises(ValueError, match="names a folder"):
        machine_name("a/b", environ={}, machine=EPYC)


def test_memory_classes_round_to_powers_of_two():
    assert [memory_class(g * 2**30) for g in (15.6, 7.7, 16, 31.3, 3.8, 0.3)] == [16, 8, 16, 32, 4, 1]
    assert memory_class(0) == 0


def test_the_environment_name_survives_python_patch_updates(tmp_path, monkeypatch):
    assert machine.launcher_path((3, 11)).name == "python3.11" and machine.launcher_path((3, 12)).name == "python3.12"
    assert machine.launcher_path((3, 11)).parent == machine.launcher_path((3, 12)).parent  # no interpreter path in it
    monkeypatch.setattr(machine, "launcher_path", lambda version=None: tmp_path / "ablate-asv-me" / "python3.11")
    first = stable_python("/opt/hostedtoolcache/Python/3.11.9/x64/bin/python")
    second = stable_python("/opt/hostedtoolcache/Python/3.11.10/x64/bin/python")
    assert first == second and env_name(first).endswith("ablate-asv-me_python3.11")
    assert "3.11.10" in Path(second).read_text()  # the launcher runs the new interpreter under the old name
    launcher = stable_python(sys.executable)
    out = subprocess.run([launcher, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
    assert out.returncode == 0 and Path(out.stdout.strip()).resolve() == Path(sys.executable).resolve()


# ----------------------------------------------------------------------------- reading result files
def test_time_memory_and_accuracy_are_read_from_the_result_files(tmp_path):
    folder = write_night(tmp_path, "m", "a" * 40, 1)
    values = read_values(next(folder.glob("aaaaaaaa-*.json")))
    rope = values["model.Forward.time_forward('rope', 'mean', 128)"]
    assert rope.value == pytest.approx(0.010) and rope.version == "v1"
    assert rope.interval is not None and rope.interval[0] < 0.010 < rope.interval[1]
    assert values["accuracy.Accuracy.track_accuracy('alibi', 'mean', 128)"].value == pytest.approx(0.80)


def test_regressions_follow_each_benchmarks_rule(tmp_path):
    write_night(tmp_path, "m", "a" * 40, 1)
    write_night(tmp_path, "m", "b" * 40, 2, rope_time=0.015, accuracy=(0.85, 0.79))
    found = {r.name: r.reason for r in compare_commits(tmp_path, "m", "a" * 40, "b" * 40)}
    assert set(found) == {"model.Forward.time_forward('rope', 'mean', 128)",
                          "accuracy.Accuracy.track_accuracy('rope', 'mean', 128)"}
    assert "1.50x" in found["model.Forward.time_forward('rope', 'mean', 128)"]
    assert "fell 5.0 points" in found["accuracy.Accuracy.track_accuracy('rope', 'mean', 128)"]  # alibi: 1 point
    assert compare_commits(tmp_path, "m", "a" * 40, "b" * 40, factor=1.6, accuracy_drop=0.06) == []
    write_night(tmp_path, "m", "c" * 40, 3, rope_time=0.0108)  # 8% slower: under the factor
    assert compare_commits(tmp_path, "m", "a" * 40, "c" * 40) == []
    assert len(compare_commits(tmp_path, "m", "a" * 40, "c" * 40, factor=1.05)) == 1  # past a smaller one
    write_night(tmp_path, "m", "f" * 40, 5, rope_time=0.0108, spread=0.1)
    assert compare_commits(tmp_path, "m", "a" * 40, "f" * 40, factor=1.05) == []  # but not past asv's noise
    write_night(tmp_path, "m", "d" * 40, 4, failed=True)
    (failing,) = compare_commits(tmp_path, "m", "a" * 40, "d" * 40)
    assert failing.reason == "newly failing"
    assert compare_commits(tmp_path, "m", "a" * 40, "e" * 40) == []  # no results for that commit


def test_a_changed_version_is_a_new_series_not_a_regression(tmp_path):
    write_night(tmp_path, "m", "a" * 40, 1)
    write_night(tmp_path, "m", "b" * 40, 2, rope_time=0.030, time_version="v2")
    assert compare_commits(tmp_path, "m", "a" * 40, "b" * 40) == []
    with pytest.raises(ValueError, match="ratio above 1"):
        compare_values({}, {}, factor=0.9)


# ----------------------------------------------------------------------------- simulated nights
def night(monkeypatch, tmp_path: Path, *, hostname: str, cpu: str, commit: str, date: int, **values) -> int:
    """One run of ``ablate nightly --existing`` on a simulated runner; asv's run writes ``values``."""
    monkeypatch.setattr("socket.gethostname", lambda: hostname)
    monkeypatch.setattr(ablate.core.environment, "cpu_model", lambda: cpu)
    monkeypatch.setattr(machine, "usable_cores", lambda: 4)
    monkeypatch.setattr(machine, "total_memory", lambda: int(15.6 * 2**30))
    monkeypatch.setattr(jobs, "_cuda", lambda: False)
    monkeypatch.setattr(commands, "results_dir", lambda: tmp_path)
    monkeypatch.setattr(jobs, "git", lambda *args: commit if args[0] == "rev-parse" else "")
    monkeypatch.setattr(commands, "is_ancestor", lambda old, new: old != new)

    def fake_execute(command, dry_run=False):
        if command.argv[3] == "run":
            name = command.argv[command.argv.index("--machine") + 1]
            write_night(tmp_path, name, commit, date, **values)
        return 0, ""

    monkeypatch.setattr(jobs, "execute", fake_execute)
    from ablate import nightly

    return nightly.main(["--existing"])


def test_two_nights_on_two_hostnames_of_the_same_hardware_compare(monkeypatch, tmp_path, capsys):
    cpu = "AMD EPYC 7763 64-Core Processor"
    assert night(monkeypatch, tmp_path, hostname="fv-az1", cpu=cpu, commit="a" * 40, date=1) == 0
    assert "nothing to compare yet" in capsys.readouterr().out
    code = night(monkeypatch, tmp_path, hostname="fv-az2", cpu=cpu, commit="b" * 40, date=2, rope_time=0.02)
    captured = capsys.readouterr()
    assert code == 1 and f"compared with {'a' * 8}" in captured.out
    assert "regression: model.Forward.time_forward('rope', 'mean', 128): 2.00x" in captured.err
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1  # one machine, two nights


def test_two_cpu_models_do_not_compare(monkeypatch, tmp_path, capsys):
    assert night(monkeypatch, tmp_path, hostname="fv-az1", cpu="AMD EPYC 7763 64-Core Processor",
                 commit="a" * 40, date=1) == 0
    code = night(monkeypatch, tmp_path, hostname="fv-az2", cpu="Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz",
                 commit="b" * 40, date=2, rope_time=0.02)
    assert code == 0 and "nothing to compare yet" in capsys.readouterr().out.split("$ ")[-1]
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
