"""Same-job comparison: the previous benchmarked commit and the new one, measured in one job, interleaved.

Timings of two jobs on two shared runners differ by more than any useful threshold,
so a hosted runner cannot compare with stored results. Here both commits run in
the same job on the same machine, each in a worker process with its own checkout
(:mod:`ablate.nightly.worker`), and every benchmark x parameter combination is
measured in interleaved rounds (:mod:`ablate.measure.rounds`): each round times
one sample of each commit, in a shuffled order, so the runner's drift hits both.
Round ``i`` of the new commit pairs with round ``i`` of the old one, and
:func:`ablate.analysis.stats.verdict.judge` decides on the median paired ratio.

A regression is flagged only when the difference exceeds both the factor
(``--threshold``) and the noise measured in this job: the verdict is *worse* (the
whole confidence sequence of the ratio lies beyond the metric's margin) and the
estimated ratio is at least the factor. Every comparison spends ``alpha / m``
(Bonferroni over the ``m`` compared benchmarks), so when the two commits do not
differ (an A/A run: the same commit twice) the chance that anything is flagged is
at most ``alpha``, however many rounds each benchmark took.

* time (``time_*``): samples batch calls to last ``sample_s``; rounds until the
  interval is narrower than ``1 + precision`` or the benchmark's share of the
  budget is spent (what is left is shared by the benchmarks still to come).
* memory (``peakmem_*``, ``track_cuda_peak_memory``): as many rounds as a
  verdict on identical values needs (:func:`~ablate.measure.rounds.rounds_to_decide`).
* accuracy (``track_accuracy``): deterministic, one value per commit, judged in
  points (:mod:`ablate.nightly.results`).
* other ``track_*`` numbers are reported, not judged.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ablate.measure.rounds import calls_per_sample, interleaved_rounds, rounds_to_decide
from ablate.nightly.results import Value, rule_of
from ablate.analysis.stats.verdict import WORSE, judge

HEAD, BASE = "new", "old"


class WorkerError(RuntimeError):
    """A benchmark raised in a worker, or a worker died."""


class Benchmarks(Protocol):
    """What the comparison needs of a worker (a real process, or a fake in tests)."""

    def request(self, op: str, **arguments: Any) -> dict[str, Any]: ...

    def close(self) -> None: ...


class WorkerProcess:
    """A worker process of one checkout (:mod:`ablate.nightly.worker`), spoken to over its pipes."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        script = Path(__file__).with_name("worker.py")
        variables = {**os.environ, **(env or {}), "PYTHONPATH": str(root)}
        self.process = subprocess.Popen([sys.executable, str(script), str(root)], cwd=root, env=variables,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def request(self, op: str, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError) as error:
            raise WorkerError(f"the benchmark worker died ({error})") from None
        if not line:
            raise WorkerError(f"the benchmark worker exited with {self.process.wait()}")
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerError(answer["error"])
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request("quit")
            except (WorkerError, ValueError):
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class Case:
    """One benchmark x parameter combination both commits define alike (same params and version)."""

    benchmark: str
    kind: str  # asv's type: time, peakmemory, track
    index: int | None
    params: tuple[str, ...]
    version: str

    @property
    def name(self) -> str:
        return f"{self.benchmark}({', '.join(self.params)})" if self.params else self.benchmark

    @property
    def judged_as(self) -> str:
        """``time``, ``memory``, ``accuracy`` or ``untracked``."""
        rule = rule_of(self.benchmark).kind
        if rule == "cost":
            return "time" if self.kind == "time" else "memory"
        return rule


@dataclass
class Outcome:
    """What one case gave: the verdict, the ratio (or points) and whether it is a regression."""

    case: Case
    status: str  # compared, skipped, failed
    verdict: str = ""
    estimate: float = math.nan
    low: float = math.nan
    high: float = math.nan
    rounds: int = 0
    stop: str = ""
    regression: str | None = None
    note: str = ""
    head_values: tuple[float, ...] = ()
    base_values: tuple[float, ...] = ()


@dataclass(frozen=True)
class Settings:
    """How the two commits are compared (the flags of ``ablate nightly --continuous``)."""

    factor: float = 1.2
    accuracy_drop: float = 0.03
    alpha: float = 0.05
    budget_s: float = 2400.0
    precision: float = 0.05
    sample_s: float = 0.05
    bench: str | None = None


def matched_cases(head: list[dict[str, Any]], base: list[dict[str, Any]], bench: str | None = None) -> list[Case]:
    """Cases both commits define with the same type, params and version (``bench``: a regex on their names)."""
    theirs = {b["name"]: b for b in base}
    cases = []
    for mine in head:
        other = theirs.get(mine["name"])
        if other is None or other["version"] != mine["version"] or other["params"] != mine["params"] \
                or other["type"] != mine["type"]:
            continue
        combos = list(itertools.product(*mine["params"])) if mine["params"] else [()]
        for index, combo in enumerate(combos):
            case = Case(mine["name"], mine["type"], index if mine["params"] else None, tuple(combo), mine["version"])
            if bench is None or re.search(bench, case.name):
                cases.append(case)
    return cases


def compare_commits(head: Benchmarks, base: Benchmarks, settings: Settings, *,
                    clock: Callable[[], float] = time.perf_counter,
                    log: Callable[[str], None] = print) -> list[Outcome]:
    """Compare every matched case of ``head`` against ``base``, interleaved, within the budget."""
    cases = matched_cases(head.request("list")["benchmarks"], base.request("list")["benchmarks"], settings.bench)
    judged = [c for c in cases if c.judged_as != "untracked"]
    each = settings.alpha / max(1, len([c for c in judged if c.judged_as in ("time", "memory")]))
    outcomes = []
    order = sorted(judged, key=lambda c: ("accuracy", "memory", "time").index(c.judged_as))
    deadline = clock() + settings.budget_s
    timed_left = len([c for c in judged if c.judged_as == "time"])
    for case in order:
        if case.judged_as == "time":
            share = max(0.0, (deadline - clock()) / max(1, timed_left))
            timed_left -= 1
        else:
            share = math.inf
        outcome = _compare_case(case, head, base, settings, each, share, clock)
        log(describe(outcome))
        outcomes.append(outcome)
    return outcomes


def _compare_case(case: Case, head: Benchmarks, base: Benchmarks, settings: Settings, alpha: float, share: float,
                  clock: Callable[[], float]) -> Outcome:
    try:
        skipped = [w.request("setup", name=case.benchmark, index=case.index)["skip"] for w in (head, base)]
        if any(skipped):
            return Outcome(case, "skipped", note="skipped by " + " and ".join(
                who for who, skip in zip((HEAD, BASE), skipped) if skip))
        if case.judged_as == "accuracy":
            return _accuracy(case, head, base, settings)
        return _rounds(case, head, base, settings, alpha, share, clock)
    except WorkerError as error:
        return Outcome(case, "failed", note=str(error).splitlines()[0][:300])
    finally:
        for worker in (head, base):
            try:
                worker.request("teardown")
            except WorkerError:
                pass


def _accuracy(case: Case, head: Benchmarks, base: Benchmarks, settings: Settings) -> Outcome:
    new, old = (float(w.request("track")["value"]) for w in (head, base))
    before, after = (Value(case.benchmark, case.params, v, None, case.version) for v in (old, new))
    reason = rule_of(case.benchmark).judge(before, after, settings.factor, settings.accuracy_drop)
    return Outcome(case, "compared", "worse" if reason else "same", new - old, rounds=1, regression=reason,
                   head_values=(new,), base_values=(old,))


def _rounds(case: Case, head: Benchmarks, base: Benchmarks, settings: Settings, alpha: float, share: float,
            clock: Callable[[], float]) -> Outcome:
    if case.judged_as == "time":
        first = min(head.request("time", number=1)["seconds"], base.request("time", number=1)["seconds"])
        number = calls_per_sample(first, settings.sample_s)
        samplers = {name: _timer(worker, number) for name, worker in ((HEAD, head), (BASE, base))}
        metric, limits = "time_median_s", {"budget_s": max(share, 1e-9)}
    else:
        op = "peakmem" if case.kind == "peakmemory" else "track"
        key = "bytes" if op == "peakmem" else "value"
        samplers = {name: _sampler(worker, op, key) for name, worker in ((HEAD, head), (BASE, base))}
        count = rounds_to_decide(alpha)
        metric, limits = "peak_memory_bytes", {"budget_s": math.inf, "max_rounds": count, "min_rounds": count}
    rounds = interleaved_rounds(samplers, [(HEAD, BASE)], alpha=alpha, precision=settings.precision,
                                seed=zlib.crc32(case.name.encode()), clock=clock, classify=_failure, **limits)
    if rounds.failures:
        return Outcome(case, "failed", note="; ".join(f"{w}: {r}" for w, (_, r) in rounds.failures.items()))
    verdict = judge(rounds.values[HEAD], rounds.values[BASE], metric=metric, alpha=alpha, by="interval")
    regression = None
    if verdict.verdict == WORSE and verdict.estimate >= settings.factor:
        regression = (f"{verdict.estimate:.2f}x the old commit [{verdict.low:.2f}, {verdict.high:.2f}] over "
                      f"{verdict.n} interleaved rounds (factor {settings.factor:g})")
    return Outcome(case, "compared", verdict.verdict, verdict.estimate, verdict.low, verdict.high, rounds.count,
                   rounds.stop, regression, head_values=rounds.values[HEAD], base_values=rounds.values[BASE])


def _timer(worker: Benchmarks, number: int) -> Callable[[], float]:
    return lambda: worker.request("time", number=number)["seconds"] / number


def _sampler(worker: Benchmarks, op: str, key: str) -> Callable[[], float]:
    return lambda: float(worker.request(op)[key])


def _failure(error: Exception) -> tuple[str, str]:
    return "failed", str(error).splitlines()[0][:300] if str(error) else type(error).__name__


# ----------------------------------------------------------------------------- reading the outcome
def describe(outcome: Outcome) -> str:
    """One line per case: ratio [interval], verdict, rounds, and the regression if any."""
    case = outcome.case
    if outcome.status != "compared":
        return f"  {outcome.status:<10} {case.name}: {outcome.note}"
    if case.judged_as == "accuracy":
        change = f"{outcome.head_values[0]:.3f} vs {outcome.base_values[0]:.3f} ({100 * outcome.estimate:+.1f} points)"
    else:
        bounds = (f"[{outcome.low:.3f}, {outcome.high:.3f}]" if outcome.low > 0 and math.isfinite(outcome.high)
                  else "[not yet bounded]")
        change = f"{outcome.estimate:.3f}x {bounds} over {outcome.rounds} rounds ({outcome.stop})"
    flag = f"  REGRESSION: {outcome.regression}" if outcome.regression else ""
    return f"  {outcome.verdict:<10} {case.name}: {change}{flag}"


def noise_summary(outcomes: Sequence[Outcome]) -> str:
    """The ratio spread measured in this job: half-width of each time ratio's interval, median and widest."""
    widths = sorted(math.sqrt(o.high / o.low) - 1 for o in outcomes
                    if o.status == "compared" and o.case.judged_as == "time" and o.low > 0 and math.isfinite(o.high))
    if not widths:
        return "noise: no time benchmark was bounded"
    median = widths[len(widths) // 2]
    off = sorted(abs(o.estimate - 1) for o in outcomes if o.status == "compared" and o.case.judged_as == "time")
    return (f"noise: time ratios known to ±{100 * median:.1f}% (median half-width of {len(widths)} intervals), "
            f"±{100 * widths[-1]:.1f}% at worst; |ratio - 1| median {100 * off[len(off) // 2]:.1f}%, "
            f"largest {100 * off[-1]:.1f}%")
