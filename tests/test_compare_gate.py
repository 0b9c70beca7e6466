"""``ablate compare A B --fail-on regression``: exit 1 on an injected regression (one line each), 0 on A/A."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ablate.cli import main
from ablate.results.rounds_table import RoundValue
from ablate.results.store import MetricRow, Record, Store

SEEDS = 16
ROUNDS = 20


def write_folder(path: Path, *, slower: float = 1.0, memory: float = 1.0, accuracy_drop: float = 0.0,
                 noise_seed: int = 0) -> Path:
    """A results folder: 16 seeds of accuracy per encoding, and interleaved rounds of time and memory."""
    rng = np.random.default_rng(noise_seed)
    with Store(path) as store:
        store.set_meta("suite_name", "gate")
        store.set_meta("axes", ["encoding"])
        store.set_meta("baseline", {"encoding": "none"})
        store.set_meta("suite_config", {"name": "gate", "report": {"main_metric": "accuracy", "margin": 0.02}})
        for encoding in ("none", "rope"):
            model = {"encoding": encoding, "pooling": "mean", "d_model": 16}
            for seed in range(SEEDS):
                accuracy = 0.9 + rng.normal(0, 0.01) - (accuracy_drop if encoding == "rope" else 0.0)
                config = {"kind": "train", "task": "parity", "model": model, "train": {"length": 8}, "seed": seed}
                store.write(Record(f"t-{encoding}-{seed}", "gate", "train", "ok", config, {"encoding": encoding},
                                   metrics=[MetricRow("accuracy", 8, accuracy)]))
            factor = slower if encoding == "rope" else 1.0
            times = 0.01 * factor * np.exp(rng.normal(0, 0.01, ROUNDS))
            peaks = np.full(ROUNDS, 1e6 * (memory if encoding == "rope" else 1.0))
            config = {"kind": "measure", "task": "parity", "model": model, "train": {"length": 8},
                      "measure": {"mode": "forward", "batch_size": 8}, "seed": 0}
            rounds = [RoundValue("time_median_s", 64, i, t, i % 2, "s") for i, t in enumerate(times)]
            rounds += [RoundValue("peak_memory_bytes", 64, i, p, -1, "s") for i, p in enumerate(peaks)]
            store.write(Record(f"m-{encoding}", "gate", "measure", "ok", config, {"encoding": encoding},
                               metrics=[MetricRow("time_median_s", 64, float(np.median(times))),
                                        MetricRow("tokens_per_s", 64, 512 / float(np.median(times))),
                                        MetricRow("peak_memory_bytes", 64, float(peaks[0]))],
                               rounds=rounds))
    return path


def gate(capsys, a: Path, b: Path, out: Path) -> tuple[int, list[str]]:
    code = main(["compare", str(a), str(b), "--fail-on", "regression", "--out", str(out), "--labels", "main", "pr"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("regression:")]
    return code, lines


def test_an_injected_regression_of_time_memory_and_accuracy_exits_1_with_one_line_each(capsys, tmp_path):
    a = write_folder(tmp_path / "main" / "gate")
    b = write_folder(tmp_path / "pr" / "gate", slower=1.3, memory=1.5, accuracy_drop=0.1, noise_seed=1)
    code, lines = gate(capsys, a, b, tmp_path / "cmp")
    assert code == 1
    assert len(lines) == 3
    time, memory, accuracy = (next(line for line in lines if line.startswith(f"regression: {m} "))
                              for m in ("time_median_s", "peak_memory_bytes", "accuracy"))
    assert "encoding=rope" in time and "at length 64" in time and "pr/main = 1.29" in time
    assert "over 20 rounds" in time and "beyond ±5%" in time
    assert "pr/main = 1.500" in memory
    assert "pr - main = -0.1" in accuracy and "pr worse on 16 of 16 paired seeds" in accuracy
    assert (tmp_path / "cmp" / "comparison.md").is_file()


def test_an_a_a_comparison_exits_0(capsys, tmp_path):
    a = write_folder(tmp_path / "main" / "gate")
    b = tmp_path / "again" / "gate"
    shutil.copytree(a, b)
    code, lines = gate(capsys, a, b, tmp_path / "cmp")
    assert code == 0 and lines == []
    fresh = write_folder(tmp_path / "rerun" / "gate", noise_seed=7)  # the same truth, other noise
    code, lines = gate(capsys, a, fresh, tmp_path / "cmp2")
    assert code == 0 and lines == []


def test_an_improvement_or_a_small_slowdown_is_no_regression(capsys, tmp_path):
    a = write_folder(tmp_path / "main" / "gate")
    faster = write_folder(tmp_path / "faster" / "gate", slower=0.7, noise_seed=2)
    assert gate(capsys, a, faster, tmp_path / "c1") == (0, [])
    within = write_folder(tmp_path / "within" / "gate", slower=1.02, noise_seed=3)  # inside the 5% margin
    assert gate(capsys, a, within, tmp_path / "c2") == (0, [])


@pytest.mark.parametrize("flag", ["--fail-on", "--fail-on=never"])
def test_fail_on_takes_one_known_value(capsys, tmp_path, flag):
    a = write_folder(tmp_path / "x" / "gate")
    assert main(["compare", str(a), str(a), flag]) == 2
    assert "--fail-on" in capsys.readouterr().err  # one line naming the flag, no traceback
