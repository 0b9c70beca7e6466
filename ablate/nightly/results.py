"""Regressions read from asv's result files, through asv's own reader, the same way for time, memory and accuracy.

Two commits' result files of one machine are read with :class:`asv.results.Results`
(never the text of ``asv compare``) and every benchmark x parameter combination
measured in both is judged by its kind's rule (:data:`RULES`, first match wins):

* time and memory (``time_*``, ``peakmem_*``, ``mem_*``, ``track_cuda_peak_memory``):
  lower is better, judged by a ratio. A regression is ``after / before >=
  factor`` *and* beyond the noise asv measured: the two 99% intervals asv stores
  with each number (``ci_99_a``, ``ci_99_b``) do not overlap (as ``asv compare``
  decides, where both have one).
* accuracy (``track_accuracy``): higher is better, judged in points: a drop of
  ``accuracy_drop`` or more (0.90 -> 0.85 is a ratio of 1.06 that a 1.2 factor
  would wait for until 0.75). The accuracy runs are deterministic (fixed seeds,
  frozen data), so a drop that size is a change in the library, not noise.
* a number that stopped being produced (asv's ``failed``) is a regression of any kind.

A benchmark whose ``version`` differs between the two files is a new series
(its recipe or code changed, :mod:`benchmarks.common`): nothing to compare.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Default largest tolerated drop in accuracy (0.03 = 3 points).
DEFAULT_MAX_DROP = 0.03
#: Default factor of time and memory.
DEFAULT_FACTOR = 1.2


@dataclass(frozen=True)
class Value:
    """One benchmark x parameter combination in one result file."""

    benchmark: str
    params: tuple[str, ...]
    #: The number; ``None`` where the benchmark failed, NaN where it was skipped.
    value: float | None
    #: asv's 99% interval of it, where it stored one.
    interval: tuple[float, float] | None
    version: str | None

    @property
    def name(self) -> str:
        """``model.Forward.time_forward('rope', 'mean', 128)``, as asv prints it."""
        return f"{self.benchmark}({', '.join(self.params)})" if self.params else self.benchmark

    @property
    def measured(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


@dataclass(frozen=True)
class Regression:
    """A benchmark that got worse: its name, the two numbers and a one-line reason."""

    name: str
    before: float | None
    after: float | None
    reason: str


@dataclass(frozen=True)
class Rule:
    """How one kind of benchmark is judged: ``judge(before, after, factor, drop) -> reason or None``."""

    pattern: re.Pattern[str]
    kind: str
    judge: Callable[[Value, Value, float, float], str | None]


def _ratio(before: Value, after: Value, factor: float, drop: float) -> str | None:
    assert before.value is not None and after.value is not None
    ratio = after.value / before.value if before.value > 0 else math.inf
    if ratio < factor:
        return None
    if before.interval and after.interval and after.interval[0] <= before.interval[1]:
        return None  # within what asv measured as noise
    return f"{ratio:.2f}x the previous number (factor {factor:g})"


def _points(before: Value, after: Value, factor: float, drop: float) -> str | None:
    assert before.value is not None and after.value is not None
    points = before.value - after.value
    if points < drop - 1e-12:
        return None
    return f"accuracy fell {100 * points:.1f} points ({before.value:.3f} -> {after.value:.3f}; limit {100 * drop:g})"


def _untracked(before: Value, after: Value, factor: float, drop: float) -> str | None:
    return None


#: Benchmark kinds by name, first match wins.
RULES = (
    Rule(re.compile(r"\.track_accuracy$"), "accuracy", _points),
    Rule(re.compile(r"\.(?:time|peakmem|mem)_\w+$|\.track_cuda_peak_memory$"), "cost", _ratio),
    Rule(re.compile(r"."), "untracked", _untracked),
)


def rule_of(benchmark: str) -> Rule:
    """The rule that judges ``benchmark``."""
    return next(rule for rule in RULES if rule.pattern.search(benchmark))


def read_values(result_file: str | Path) -> dict[str, Value]:
    """Every benchmark x parameter combination of one asv result file, by :attr:`Value.name`.

    asv stores a parametrized benchmark as a flat list in the order of the Cartesian
    product of its ``params`` lists; :class:`asv.results.Results` reads it.
    """
    from asv.results import Results

    results = Results.load(str(result_file))
    values: dict[str, Value] = {}
    for key in results.get_all_result_keys():
        params = results.get_result_params(key)
        numbers, stats = results.get_result_value(key, params), results.get_result_stats(key, params)
        combos = list(itertools.product(*params)) if params else [()]
        if not params:
            numbers, stats = [numbers], [stats]
        version = results.benchmark_version.get(key)
        for combo, number, stat in zip(combos, numbers, stats or [None] * len(combos)):
            interval = None
            if isinstance(stat, dict) and stat.get("ci_99_a") is not None and stat.get("ci_99_b") is not None:
                interval = (float(stat["ci_99_a"]), float(stat["ci_99_b"]))
            value = Value(key, tuple(str(p) for p in combo), None if number is None else float(number), interval,
                          version)
            values[value.name] = value
    return values


def compare_values(before: dict[str, Value], after: dict[str, Value], *, factor: float = DEFAULT_FACTOR,
                   accuracy_drop: float = DEFAULT_MAX_DROP) -> list[Regression]:
    """Regressions of ``after`` against ``before`` (see the module docstring), worst kind first, then by name."""
    if factor <= 1:
        raise ValueError(f"the regression factor is a ratio above 1 (1.2 = 20% worse), got {factor}")
    if not 0 < accuracy_drop < 1:
        raise ValueError(f"the accuracy drop threshold is a fraction of 1 (0.03 = 3 points), got {accuracy_drop}")
    found = []
    for name in sorted(before.keys() & after.keys()):
        old, new = before[name], after[name]
        if old.version != new.version or not old.measured:
            continue  # a new series, or nothing measured before: nothing to compare
        if new.value is None:
            found.append(Regression(name, old.value, None, "newly failing"))
            continue
        if not new.measured:
            continue  # skipped now (asv's n/a)
        reason = rule_of(old.benchmark).judge(old, new, factor, accuracy_drop)
        if reason is not None:
            found.append(Regression(name, old.value, new.value, reason))
    return found


# ----------------------------------------------------------------------------- the result files of a machine
def asv_results(results_dir: Path, machine: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every readable asv result file of ``machine`` with its header (``machine.json`` aside)."""
    for path in sorted((Path(results_dir) / machine).glob("*.json")):
        if path.name == "machine.json":
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if "commit_hash" in data:
            yield path, data


def result_file(results_dir: Path, machine: str, commit: str, env_names: set[str] | None = None) -> Path | None:
    """The asv result file of ``commit`` on ``machine`` (in one of ``env_names`` if given), or ``None``."""
    for path, data in asv_results(results_dir, machine):
        if data["commit_hash"] == commit and (env_names is None or str(data.get("env_name")) in env_names):
            return path
    return None


def compare_commits(results_dir: Path, machine: str, before: str, after: str, *, factor: float = DEFAULT_FACTOR,
                    accuracy_drop: float = DEFAULT_MAX_DROP, env_names: set[str] | None = None) -> list[Regression]:
    """Regressions of commit ``after`` against commit ``before`` on ``machine`` (none when either has no file)."""
    files = [result_file(results_dir, machine, commit, env_names) for commit in (before, after)]
    if files[0] is None or files[1] is None:
        return []
    return compare_values(read_values(files[0]), read_values(files[1]), factor=factor, accuracy_drop=accuracy_drop)
