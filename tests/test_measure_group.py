"""A suite's measurement runs measured together: rounds pair with the baseline's, stored and loaded (fake timer)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import ablate.measure.group as group
import ablate.measure.point as point
from ablate.core.errors import UnsupportedLengthError
from ablate.measure.memory import MemoryResult
from ablate.measure.rounds import rounds_to_decide
from ablate.results.rounds_table import load_rounds
from ablate.measure.run import baseline_pairs, groups_of, with_partners
from ablate.run.runner import run_plan
from ablate.analysis.stats.verdict import judge
from ablate.results.store import load_results
from ablate.suite import load_plan

#: Seconds one call of each encoding's step takes on the fake clock.
SECONDS = {"none": 0.010, "rope": 0.013, "alibi": 0.010}
SUITE = """name = "costs"
seeds = [0]
task = { name = "parity" }
[model]
d_model = 16
num_heads = 2
num_layers = 1
[train]
length = 8
[grid]
encoding = ["none", "rope", "alibi"]
pooling = ["mean", "cls"]
[measure]
lengths = [16, 64]
budget_s = 5
precision = 0.05
sample_s = 0.02
min_run_time = 0.01
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_machine(monkeypatch):
    """Steps that only advance a fake clock (rope 1.3x none), alibi unsupported past length 16, fixed memory."""
    clock, calls = Clock(), []

    class Workload:
        def __init__(self, spec):
            encoding = spec.config["encoding"]
            self.name = encoding if isinstance(encoding, str) else encoding["name"]
            if self.name == "alibi" and spec.length > 16:
                raise UnsupportedLengthError("alibi: fake limit of 16 positions")
            self.spec = spec

        def step(self):
            calls.append((self.name, str(self.spec.config["pooling"]), self.spec.length))
            clock.now += SECONDS[self.name] * (self.spec.length / 16)

    def peaks(spec, *, samples, repeats, threads):
        return [MemoryResult(1000 * spec.length, None, 0, "fake", repeats) for _ in range(samples)]

    monkeypatch.setattr(point, "make_workload", Workload)
    monkeypatch.setattr(point, "cpu_peaks_of", peaks)
    monkeypatch.setattr(group, "device_clock", lambda device: clock)
    return clock, calls


def test_pairs_are_each_run_against_the_run_at_the_baseline_of_one_axis(tmp_path: Path):
    (tmp_path / "s.toml").write_text(SUITE)
    plan = load_plan(str(tmp_path / "s.toml"))
    (measured,) = groups_of(plan.measure_runs())
    label = {r.run_id: (r.axes["model.encoding"], r.axes["model.pooling"]) for r in measured}
    pairs = {(label[a], label[b]) for a, b in baseline_pairs(measured, plan.axes, plan.baseline)}
    assert pairs == {(("rope", "mean"), ("none", "mean")), (("alibi", "mean"), ("none", "mean")),
                     (("rope", "cls"), ("none", "cls")), (("alibi", "cls"), ("none", "cls")),
                     (("none", "cls"), ("none", "mean")), (("rope", "cls"), ("rope", "mean")),
                     (("alibi", "cls"), ("alibi", "mean"))}
    assert with_partners(plan.measure_runs(), measured[:1]) == measured  # one pending run brings its group


def test_bench_measures_a_group_in_interleaved_rounds_and_stores_every_round(tmp_path: Path, fake_machine):
    clock, calls = fake_machine
    (tmp_path / "s.toml").write_text(SUITE)
    plan = load_plan(str(tmp_path / "s.toml"))
    summary = run_plan(plan, tmp_path / "results", kinds=("measure",), progress=False)
    assert summary.counts == {"ok": 6}
    frame = load_results(summary.results_dir)
    rows = frame[frame["eval_length"].eq(16)].set_index(["encoding", "pooling", "metric"])["value"]
    assert rows[("none", "mean", "time_median_s")] == pytest.approx(0.010)
    assert rows[("rope", "cls", "time_median_s")] == pytest.approx(0.013)
    assert rows[("rope", "mean", "tokens_per_s")] == pytest.approx(8 * 16 / 0.013)
    assert rows[("none", "mean", "peak_memory_bytes")] == 16000
    alibi = frame[frame["encoding"].eq("alibi") & frame["eval_length"].eq(64)]
    assert set(alibi["status"]) == {"unsupported"} and alibi["value"].isna().all()

    labels = frame.drop_duplicates("run_id")[["run_id", "encoding", "pooling"]]
    rounds = load_rounds(summary.results_dir).merge(labels, on="run_id")
    timed = rounds[rounds["metric"].eq("time_median_s") & rounds["eval_length"].eq(16)]
    assert timed["session"].nunique() == 1  # one session: every model's round i pairs with its baseline's
    per_round = timed.groupby("round")["position"].apply(sorted)
    assert all(positions == list(range(6)) for positions in per_round)  # six models, once each per round
    series = {key: g.sort_values("round")["value"].tolist() for key, g in timed.groupby(["encoding", "pooling"])}
    verdict = judge(series[("rope", "mean")], series[("none", "mean")], metric="time_median_s", alpha=0.05,
                    by="interval")
    assert verdict.verdict == "worse" and verdict.estimate == pytest.approx(1.3)
    memory = rounds[rounds["metric"].eq("peak_memory_bytes") & rounds["eval_length"].eq(16)]
    pairs_at_16 = 7
    assert memory.groupby("run_id").size().unique().tolist() == [rounds_to_decide(0.05 / pairs_at_16)]
    # The calls really were interleaved: consecutive calls at one length visit different models.
    at_16 = [c for c in calls if c[2] == 16]
    assert len({c[:2] for c in at_16[-12:]}) == 6


def test_a_group_with_one_pending_run_is_measured_again_as_a_whole(tmp_path: Path, fake_machine):
    (tmp_path / "s.toml").write_text(SUITE)
    plan = load_plan(str(tmp_path / "s.toml"))
    first = run_plan(plan, tmp_path / "results", kinds=("measure",), progress=False)
    sessions = set(load_rounds(first.results_dir)["session"])
    assert run_plan(plan, tmp_path / "results", kinds=("measure",), progress=False).counts == {}  # all stored
    wider = load_plan(str(tmp_path / "s.toml"), ['grid.encoding=["none", "rope", "alibi", "t5"]'])
    SECONDS["t5"] = 0.02
    try:
        again = run_plan(wider, tmp_path / "results", kinds=("measure",), progress=False)
    finally:
        del SECONDS["t5"]
    assert again.counts == {"ok": 8} and again.skipped == 0
    rounds = load_rounds(again.results_dir)
    timed = rounds[rounds["metric"].eq("time_median_s") & rounds["eval_length"].eq(16)]
    assert timed["session"].nunique() == 1 and not sessions & set(timed["session"])


def test_a_model_that_fails_mid_rounds_keeps_its_status_and_the_rest_is_measured(tmp_path: Path, fake_machine,
                                                                                  monkeypatch):
    clock, calls = fake_machine
    original = point.make_workload

    class Breaks(original):  # type: ignore[misc, valid-type]
        def step(self):
            if self.name == "rope" and len(calls) > 40:
                raise RuntimeError("boom")
            super().step()

    monkeypatch.setattr(point, "make_workload", Breaks)
    (tmp_path / "s.toml").write_text(SUITE.replace('"none", "rope", "alibi"', '"none", "rope"').replace(
        "[16, 64]", "[16]"))
    summary = run_plan(load_plan(str(tmp_path / "s.toml")), tmp_path / "results", kinds=("measure",), progress=False)
    frame = load_results(summary.results_dir)
    rope = frame[frame["encoding"].eq("rope")]
    assert set(rope["status"]) == {"failed"} and rope["reason"].str.contains("boom").all()
    none = frame[frame["encoding"].eq("none") & frame["metric"].eq("time_median_s")]
    assert none["value"].map(math.isfinite).all()


# ----------------------------------------------------------------------------- instruction counts
def test_the_instruction_protocol_stores_counts_in_rounds(tmp_path: Path, fake_machine, monkeypatch):
    counted = []

    def fake_counts(specs, *, rounds):
        counted.append((len(specs), rounds))
        per_call = {"none": 1.0e7, "rope": 1.3e7}
        names = [s.config["encoding"] if isinstance(s.config["encoding"], str) else s.config["encoding"]["name"]
                 for s in specs]
        return [[per_call[n] * (1 + 1e-4 * r) for r in range(rounds)] for n in names]

    monkeypatch.setattr(group, "instruction_rounds", fake_counts)
    (tmp_path / "s.toml").write_text(SUITE.replace('"none", "rope", "alibi"', '"none", "rope"').replace(
        "[16, 64]", "[16]").replace("budget_s = 5", 'protocol = "instructions"'))
    summary = run_plan(load_plan(str(tmp_path / "s.toml")), tmp_path / "results", kinds=("measure",), progress=False)
    assert counted == [(4, rounds_to_decide(0.05 / 4))]  # one valgrind process for the length's four models
    frame = load_results(summary.results_dir)
    assert set(frame["metric"]) == {"instructions", "peak_memory_bytes"}
    rounds = load_rounds(summary.results_dir).merge(frame.drop_duplicates("run_id")[["run_id", "encoding"]])
    counts = rounds[rounds["metric"].eq("instructions")]
    assert sorted(counts["position"].unique()) == [0, 1, 2, 3]
    series = {e: g.sort_values("round")["value"].tolist() for e, g in counts.groupby("encoding")}
    verdict = judge(series["rope"], series["none"], metric="instructions", alpha=0.05, by="interval")
    assert verdict.verdict == "worse" and verdict.estimate == pytest.approx(1.3)


def test_instruction_counts_are_read_from_callgrinds_dumps(tmp_path: Path, monkeypatch):
    from ablate.measure import instructions
    from ablate.measure.workload import spec_of

    for n, total in [(1, 1000), (2, 2000), (10, 3000)]:
        (tmp_path / f"callgrind.out.{n}").write_text(f"events: Ir\nsummary: {total}\ntotals: {total}\n")
    (tmp_path / "callgrind.out").write_text("events: Ir\ntotals: 5\n")  # the final dump at exit: not a call
    assert instructions.dump_totals(tmp_path, "callgrind.out") == [1000.0, 2000.0, 3000.0]
    spec = spec_of({"vocab_size": 4}, mode="forward", batch_size=1, length=4, dtype="float32", device="cuda")
    with pytest.raises(ValueError, match="host code only"):
        instructions.instruction_rounds([spec], rounds=3)
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    cpu = spec_of({"vocab_size": 4}, mode="forward", batch_size=1, length=4, dtype="float32", device="cpu")
    with pytest.raises(instructions.InstructionsUnavailable, match="apt-get install valgrind"):
        instructions.instruction_rounds([cpu], rounds=3)
