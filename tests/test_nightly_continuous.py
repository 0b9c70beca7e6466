"""``ablate nightly --continuous``: two commits in one job, interleaved; simulated timings, never the wall clock.

The workers here are fakes whose timings are injected: a per-call time per commit,
a drift of the simulated runner shared by both commits (what interleaving cancels)
and per-sample noise. One test drives the real worker process on a toy benchmark
suite to check the protocol, without judging any of its numbers.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ablate.nightly import jobs
from ablate.nightly.continuous import (
    BASE,
    HEAD,
    Settings,
    WorkerError,
    WorkerProcess,
    compare_commits,
    matched_cases,
    noise_summary,
)

TIME = "model.Forward.time_forward"
PEAKMEM = "model.Forward.peakmem_forward"
ACCURACY = "accuracy.Accuracy.track_accuracy"
THREADS = "model.Threads.track_threads"
PARAMS = [["'none'", "'rope'", "'alibi'"], ["'mean'"], ["128", "512"]]


class Runner:
    """The simulated machine both fake workers share: a clock, its drift, and a log of calls."""

    def __init__(self, seed: int = 0, noise: float = 0.03) -> None:
        self.now = 0.0
        self.rng = np.random.default_rng(seed)
        self.noise = noise
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def drift(self) -> float:
        """Slow waves plus rare bursts: large, but shared by whatever runs at that moment."""
        burst = 1.8 if self.rng.random() < 0.05 else 1.0
        return (1.0 + 0.3 * math.sin(self.now / 7.0)) * burst


class FakeCommit:
    """A worker whose benchmarks take injected times (seconds per call at length 128, linear in length)."""

    def __init__(self, who: str, runner: Runner, seconds: dict[str, float], *, memory: dict[str, float] | None = None,
                 accuracy: dict[str, float] | None = None, versions: dict[str, str] | None = None,
                 skip: set[str] = frozenset()) -> None:
        self.who, self.runner, self.seconds = who, runner, seconds
        self.memory = memory or {}
        self.accuracy = accuracy or {}
        self.versions = versions or {}
        self.skip = skip
        self.current: tuple[str, tuple[str, ...]] | None = None

    def request(self, op: str, **arguments):
        if op == "list":
            return {"benchmarks": [
                {"name": name, "type": kind, "params": params, "version": self.versions.get(name, "v1"), "unit": ""}
                for name, kind, params in [(TIME, "time", PARAMS), (PEAKMEM, "peakmemory", PARAMS),
                                           (ACCURACY, "track", PARAMS[:2]), (THREADS, "track", [])]]}
        if op == "setup":
            import itertools

            params = PARAMS if arguments["name"] != ACCURACY else PARAMS[:2]
            combo = list(itertools.product(*params))[arguments["index"]] if arguments["index"] is not None else ()
            self.current = (arguments["name"], combo)
            return {"skip": combo[0].strip("'") in self.skip}
        if op == "teardown":
            self.current = None
            return {}
        name, combo = self.current
        encoding = combo[0].strip("'")
        self.runner.calls.append(f"{self.who}:{op}:{encoding}:{combo[-1]}")
        if op == "time":
            per_call = self.seconds[encoding] * int(combo[2]) / 128
            noise = math.exp(self.runner.rng.normal(0, self.runner.noise))
            elapsed = arguments["number"] * per_call * self.runner.drift() * noise
            self.runner.now += elapsed
            return {"seconds": elapsed}
        if op == "peakmem":
            return {"bytes": self.memory.get(encoding, 2e8)}
        if op == "track":
            return {"value": self.accuracy.get(encoding, 0.9)}
        raise AssertionError(op)

    def close(self) -> None:
        pass


SECONDS = {"none": 0.004, "rope": 0.005, "alibi": 0.0045}
FAST = Settings(budget_s=600.0, sample_s=0.02)


def run(new: dict, old: dict | None = None, *, seed: int = 0, settings: Settings = FAST, noise: float = 0.03,
        **fakes):
    runner = Runner(seed, noise)
    head = FakeCommit(HEAD, runner, new, **fakes.get("head", {}))
    base = FakeCommit(BASE, runner, old or new, **fakes.get("base", {}))
    return compare_commits(head, base, settings, clock=runner, log=lambda line: None), runner


def by_name(outcomes):
    return {o.case.name: o for o in outcomes}


def test_an_a_a_run_flags_nothing():
    for seed in range(8):  # eight simulated jobs of the same commit twice, each with its own drift and noise
        outcomes, _ = run(SECONDS, seed=seed)
        assert [o.regression for o in outcomes if o.regression] == []
        timed = [o for o in outcomes if o.case.benchmark == TIME]
        assert len(timed) == 6 and all(o.verdict in ("equivalent", "undecided") for o in timed)
        assert all(0.9 < o.estimate < 1.1 for o in timed)
    assert "noise: time ratios known to" in noise_summary(outcomes)


def test_an_injected_slowdown_is_flagged_and_nothing_else():
    slower = {**SECONDS, "rope": SECONDS["rope"] * 1.4}
    outcomes, _ = run(slower, SECONDS)
    flagged = {o.case.name for o in outcomes if o.regression}
    assert flagged == {f"{TIME}('rope', 'mean', 128)", f"{TIME}('rope', 'mean', 512)"}
    rope = by_name(outcomes)[f"{TIME}('rope', 'mean', 512)"]
    assert rope.verdict == "worse" and rope.low < 1.4 < rope.high and "factor 1.2" in rope.regression


def test_a_decided_difference_below_the_factor_is_not_a_regression():
    outcomes, _ = run({**SECONDS, "rope": SECONDS["rope"] * 1.1}, SECONDS)
    rope = by_name(outcomes)[f"{TIME}('rope', 'mean', 128)"]
    assert rope.verdict == "worse" and rope.regression is None  # beyond the noise, not beyond the factor


def test_a_difference_past_the_factor_but_inside_the_noise_is_not_a_regression():
    settings = Settings(budget_s=0.5, sample_s=0.001)  # too little time to see through 40% noise
    outcomes, _ = run({**SECONDS, "rope": SECONDS["rope"] * 1.25}, SECONDS, noise=0.4, settings=settings)
    rope = by_name(outcomes)[f"{TIME}('rope', 'mean', 128)"]
    assert rope.verdict == "undecided" and rope.regression is None


def test_each_round_measures_both_commits_once_in_a_shuffled_order():
    outcomes, runner = run(SECONDS)
    calls = [c for c in runner.calls if ":time:" in c]
    first_case = [c for c in calls if c.endswith(":none:128")]
    rounds = [first_case[i:i + 2] for i in range(2, len(first_case) - 1, 2)]  # after the two calibration calls
    assert rounds and all(sorted(c.split(":")[0] for c in pair) == sorted([BASE, HEAD]) for pair in rounds)
    leaders = {pair[0].split(":")[0] for pair in rounds}
    assert leaders == {BASE, HEAD}  # neither commit always goes first


def test_the_budget_is_shared_and_respected():
    settings = Settings(budget_s=3.0, sample_s=0.02, precision=0.001)  # never tight: the budget stops every case
    outcomes, runner = run(SECONDS, settings=settings)
    timed = [o for o in outcomes if o.case.benchmark == TIME]
    assert all(o.stop == "budget" for o in timed)
    assert runner.now < 3.0 + 6 * 0.2  # the budget, plus at most one round and a calibration per case


def test_memory_and_accuracy_are_judged_by_their_rules():
    fakes = {"head": {"memory": {"alibi": 3e8}, "accuracy": {"rope": 0.84}},
             "base": {"memory": {"alibi": 2e8}, "accuracy": {"rope": 0.90}}}
    outcomes, _ = run(SECONDS, **fakes)
    flagged = {o.case.name: o.regression for o in outcomes if o.regression}
    assert set(flagged) == {f"{PEAKMEM}('alibi', 'mean', 128)", f"{PEAKMEM}('alibi', 'mean', 512)",
                            f"{ACCURACY}('rope', 'mean')"}
    assert "6.0 points" in flagged[f"{ACCURACY}('rope', 'mean')"]
    memory = by_name(outcomes)[f"{PEAKMEM}('alibi', 'mean', 128)"]
    assert memory.estimate == pytest.approx(1.5) and memory.rounds >= 7
    assert THREADS not in {o.case.benchmark for o in outcomes}  # other track_ numbers are not judged


def test_only_cases_both_commits_define_alike_are_compared():
    outcomes, _ = run(SECONDS, head={"versions": {PEAKMEM: "v2"}, "skip": {"alibi"}})
    names = {o.case.benchmark for o in outcomes}
    assert PEAKMEM not in names  # a changed recipe: a new series, nothing to compare
    alibi = by_name(outcomes)[f"{TIME}('alibi', 'mean', 128)"]
    assert alibi.status == "skipped" and "new" in alibi.note
    head = [{"name": TIME, "type": "time", "params": PARAMS, "version": "v1"}]
    assert len(matched_cases(head, head, bench="rope")) == 2


def test_dry_run_of_an_a_a_job(monkeypatch, capsys):
    from ablate import nightly

    monkeypatch.setattr(jobs, "git", lambda *args: "c" * 40)
    monkeypatch.setattr(jobs, "machine_name", lambda override=None: "runner-class")
    assert nightly.main(["--continuous", "--base", "HEAD", "--dry-run"]) == 0
    assert "the same commit twice: an A/A run" in capsys.readouterr().out


def test_the_worker_process_speaks_the_protocol(tmp_path: Path):
    checkout = tmp_path / "checkout"
    (checkout / "benchmarks").mkdir(parents=True)
    (checkout / "benchmarks" / "__init__.py").write_text("")
    (checkout / "benchmarks" / "toy.py").write_text(textwrap.dedent("""
        class Toy:
            params = [[1, 2]]
            param_names = ["n"]
            version = "toy-1"

            def setup(self, n):
                if n == 2:
                    raise NotImplementedError("two is not supported")
                print("setting up")  # must not disturb the protocol
                self.data = list(range(1000 * n))

            def time_sum(self, n):
                sum(self.data)

            def peakmem_list(self, n):
                [0] * 100000

            def track_size(self, n):
                return len(self.data)
    """))
    worker = WorkerProcess(checkout)
    try:
        listed = {b["name"]: b for b in worker.request("list")["benchmarks"]}
        assert set(listed) == {"toy.Toy.time_sum", "toy.Toy.peakmem_list", "toy.Toy.track_size"}
        assert listed["toy.Toy.time_sum"]["version"] == "toy-1" and listed["toy.Toy.time_sum"]["type"] == "time"
        assert worker.request("setup", name="toy.Toy.track_size", index=1) == {"skip": True}
        assert worker.request("setup", name="toy.Toy.track_size", index=0) == {"skip": False}
        assert worker.request("track") == {"value": 1000.0}
        assert worker.request("time", number=3)["seconds"] > 0
        assert worker.request("peakmem")["bytes"] > 100000
        worker.request("teardown")
        with pytest.raises(WorkerError, match="no benchmark is set up"):
            worker.request("track")
    finally:
        worker.close()
    assert worker.process.returncode == 0


def test_the_new_commits_numbers_are_saved_where_asv_and_the_next_night_read_them(tmp_path: Path):
    from ablate.nightly.commands import result_commits
    from ablate.nightly.record import save_head_results
    from ablate.nightly.results import read_values

    runner = Runner()
    head = FakeCommit(HEAD, runner, SECONDS, skip={"alibi"})
    outcomes = compare_commits(head, FakeCommit(BASE, runner, SECONDS, skip={"alibi"}), FAST, clock=runner,
                               log=lambda line: None)
    path = save_head_results(tmp_path, "runner-class", "f" * 40, 1_700_000_000_000, "/tmp/x/python3.11",
                             head.request("list")["benchmarks"], outcomes)
    assert path.parent.name == "runner-class"
    assert result_commits(tmp_path, "runner-class") == {"f" * 40: 1_700_000_000_000}
    values = read_values(path)
    rope = by_name(outcomes)[f"{TIME}('rope', 'mean', 128)"]
    saved = values[f"{TIME}('rope', 'mean', 128)"]
    assert saved.value == pytest.approx(float(np.median(rope.head_values)), rel=1e-6) and saved.version == "v1"
    assert saved.interval is not None  # asv computed its statistics from the rounds
    assert math.isnan(values[f"{TIME}('alibi', 'mean', 128)"].value)  # skipped: asv's n/a
    assert values[f"{ACCURACY}('rope', 'mean')"].value == pytest.approx(0.9)


@pytest.mark.parametrize("slower, base, code", [(1.0, "HEAD", 0), (1.4, "old", 1)])
def test_the_job_exits_1_on_an_injected_slowdown_and_0_on_an_a_a_run(monkeypatch, tmp_path, capsys, slower, base,
                                                                      code):
    import contextlib

    from ablate import nightly

    runner = Runner()
    commits = {"h" * 40: {**SECONDS, "rope": SECONDS["rope"] * slower}, "o" * 40: SECONDS}
    fakes = iter([FakeCommit(HEAD, runner, commits["h" * 40]), FakeCommit(BASE, runner, commits["o" * 40])])
    monkeypatch.setattr(jobs, "WorkerProcess", lambda root: next(fakes))
    monkeypatch.setattr(jobs, "checkout", lambda commit, head: contextlib.nullcontext(tmp_path))
    monkeypatch.setattr(jobs, "git", lambda *args: {"HEAD": "h" * 40, "old": "o" * 40}.get(args[-1], "1700000000"))
    monkeypatch.setattr(jobs, "machine_name", lambda override=None: "runner-class")
    monkeypatch.setattr(jobs, "execute", lambda command, dry_run=False: (0, ""))
    monkeypatch.setattr(jobs.commands, "results_dir", lambda: tmp_path / "asv")
    monkeypatch.setattr(jobs, "compare_commits",
                        lambda new, old, settings: compare_commits(new, old, settings, clock=runner, log=print))
    assert nightly.main(["--continuous", "--base", base, "--budget-s", "60"]) == code
    captured = capsys.readouterr()
    assert ("regression: model.Forward.time_forward('rope', 'mean', 128)" in captured.err) == (code == 1)
    assert "noise: time ratios known to" in captured.out
    saved = list((tmp_path / "asv").rglob("*.json"))
    assert (len(saved) == 1) == (base != "HEAD")  # an A/A run saves nothing
