"""Executable predicates over a results frame, each giving a verdict with its evidence.

Every predicate works on per-seed values, so the evidence is a mean over seeds
with a 95% t-interval (seed counts are small, 3-5, where a bootstrap interval
is unreliable). Verdicts:

* ``reproduced`` - the whole interval lies on the claimed side of the threshold;
* ``not reproduced`` - the whole interval lies on the other side;
* ``inconclusive`` - the interval straddles the threshold (or too few seeds).

Thresholds and tolerances live in the claim files, fixed before any run; they
are never tuned to make a verdict come out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from ablate.feasibility import has_learned, learned_threshold
from ablate.metrics import higher_is_better
from ablate.registry import Registry
from ablate.stats.decisions import looks_of
from ablate.stats.sequential import design

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, MEASURED = "reproduced", "not reproduced", "inconclusive", "measured"
#: A predicate past the train length on a cell that never learned the task at the train length: no verdict.
DID_NOT_LEARN = "did not learn"


@dataclass
class Verdict:
    """One predicate's outcome: the verdict, what was measured, and a sentence of evidence."""

    verdict: str
    expected: str
    measured: str
    details: str = ""


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2 or not math.isfinite(self.low):
            return f"{self.mean:.4g} (n={self.n}, no CI)"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.n})"


def t_interval(values: np.ndarray, confidence: float = 0.95, looks: tuple[int, ...] | None = None) -> Interval:
    """Mean with a two-sided t confidence interval over seeds.

    With ``looks`` (the claim suite's adaptive seed schedule), the repeated confidence
    interval of the group-sequential design (:mod:`ablate.stats.sequential`), valid
    however many looks the seeds were added in.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return Interval(mean, -math.inf, math.inf, n)
    c = stats.t.ppf(0.5 + confidence / 2, n - 1)
    if looks is not None and len(looks) > 1:
        c = design(looks, 1 - confidence).boundary(n) or math.inf
    half = c * values.std(ddof=1) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def _looks(frame: pd.DataFrame) -> tuple[int, ...] | None:
    seeds = (frame.attrs.get("suite_config") or {}).get("seeds")
    if isinstance(seeds, dict):
        return looks_of(seeds)
    return None


def unlearned(frame: pd.DataFrame, where: dict[str, Any], metric: str, length: int | None) -> str | None:
    """Why a predicate at ``length`` on the ``where`` cell is not an extrapolation result, or ``None``.

    Past the train length, a cell whose mean ``metric`` at the train length misses the suite's
    ``report.learned_threshold`` (:func:`ablate.feasibility.learned_threshold`) did not learn the task.
    """
    rows = frame[frame["metric"] == metric]
    for column, value in where.items():
        if column in rows.columns:
            rows = rows[rows[column].astype(str) == str(value)]
    if rows.empty or "train_length" not in rows.columns:
        return None
    train_length = rows["train_length"].dropna().unique()
    if len(train_length) != 1 or length == int(train_length[0]):
        return None
    configured = ((frame.attrs.get("suite_config") or {}).get("report") or {}).get("learned_threshold")
    threshold = learned_threshold(metric, configured)
    at_train = select(frame, where, metric, int(train_length[0])).dropna()
    if threshold is None or at_train.empty or has_learned(float(at_train.mean()), metric, threshold):
        return None
    return f"{_label(where)} did not learn at the train length ({metric} {at_train.mean():.3g} < {threshold:g})"


def select(frame: pd.DataFrame, where: dict[str, Any], metric: str, length: int | None) -> pd.Series:
    """Per-seed values of ``metric`` for rows matching ``where`` (column -> value) at ``length``.

    Several matching rows per seed (e.g. two tasks) are averaged; non-ok rows are NaN.
    """
    rows = frame[frame["metric"] == metric]
    for column, value in where.items():
        if column not in rows.columns:
            raise ValueError(f"claim predicate: no column {column!r} in the results")
        rows = rows[rows[column].astype(str) == str(value)]
    if length is not None:
        rows = rows[rows["eval_length"] == length]
    values = rows.assign(value=rows["value"].where(rows["status"] == "ok"))
    return values.groupby("seed")["value"].mean()


def _side(interval: Interval, threshold: float, op: str) -> str:
    if interval.n < 2:
        return INCONCLUSIVE
    if op == "<=":
        return REPRODUCED if interval.high <= threshold else NOT_REPRODUCED if interval.low > threshold else INCONCLUSIVE
    if op == ">=":
        return REPRODUCED if interval.low >= threshold else NOT_REPRODUCED if interval.high < threshold else INCONCLUSIVE
    raise ValueError(f"claim predicate: op must be '<=' or '>=', got {op!r}")


def _label(where: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in where.items())


PREDICATES: Registry[Callable[..., Verdict]] = Registry("predicate")


@PREDICATES.register("value")
def value_predicate(frame: pd.DataFrame, *, where: dict[str, Any], metric: str, length: int, op: str,
                    threshold: float) -> Verdict:
    """The mean of ``metric`` at ``length`` is ``op`` ``threshold``."""
    interval = t_interval(select(frame, where, metric, length).dropna().to_numpy(), looks=_looks(frame))
    why = unlearned(frame, where, metric, length)
    return Verdict(DID_NOT_LEARN if why else _side(interval, threshold, op), f"{metric} of {_label(where)} at L={length} {op} {threshold:g}",
                   str(interval), why or "")


@PREDICATES.register("ratio")
def ratio_predicate(frame: pd.DataFrame, *, where: dict[str, Any], metric: str, length: int, reference_length: int,
                    op: str, threshold: float, other: dict[str, Any] | None = None) -> Verdict:
    """Per seed, ``metric`` at ``length`` divided by ``metric`` at ``reference_length`` (of ``other``
    when given, e.g. the same length for a baseline encoding), then ``mean op threshold``."""
    top = select(frame, where, metric, length)
    bottom = select(frame, other or where, metric, reference_length)
    ratio = (top / bottom).replace([np.inf, -np.inf], np.nan)
    missing = int(ratio.isna().sum())
    interval = t_interval(ratio.dropna().to_numpy(), looks=_looks(frame))
    why = unlearned(frame, where, metric, length) or unlearned(frame, other or where, metric, length)
    denominator = f"{_label(other)} at L={reference_length}" if other else f"L={reference_length}"
    verdict = _side(interval, threshold, op)
    details = f"{missing} seed(s) without a value (unsupported/failed)" if missing else ""
    if why:
        verdict, details = DID_NOT_LEARN, why
    return Verdict(verdict, f"{metric} of {_label(where)} at L={length} / {denominator} {op} {threshold:g}",
                   f"ratio {interval}", details)


@PREDICATES.register("better")
def better_predicate(frame: pd.DataFrame, *, a: dict[str, Any], b: dict[str, Any], metric: str, length: int,
                     margin: float = 0.0) -> Verdict:
    """``a`` is better than ``b`` by more than ``margin`` (paired by seed, direction from the metric)."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    diff = (select(frame, a, metric, length) - select(frame, b, metric, length)) * sign
    interval = t_interval(diff.dropna().to_numpy(), looks=_looks(frame))
    verdict = _side(interval, margin, ">=") if interval.n >= 2 else INCONCLUSIVE
    if verdict == NOT_REPRODUCED and interval.high >= 0:
        verdict = INCONCLUSIVE  # not better by the margin, but not worse either
    why = unlearned(frame, a, metric, length) or unlearned(frame, b, metric, length)
    return Verdict(DID_NOT_LEARN if why else verdict, f"{_label(a)} better than {_label(b)} on {metric} at L={length}",
                   f"advantage {interval}", why or "")


@PREDICATES.register("order")
def order_predicate(frame: pd.DataFrame, *, items: list[dict[str, Any]], metric: str, length: int,
                    margin: float = 0.0) -> Verdict:
    """``items[0]`` better than ``items[1]`` better than ... (each adjacent pair paired by seed)."""
    pairs = [better_predicate(frame, a=a, b=b, metric=metric, length=length, margin=margin)
             for a, b in zip(items, items[1:])]
    verdicts = {p.verdict for p in pairs}
    verdict = DID_NOT_LEARN if DID_NOT_LEARN in verdicts else NOT_REPRODUCED if NOT_REPRODUCED in verdicts else REPRODUCED if verdicts == {REPRODUCED} else INCONCLUSIVE
    means = []
    for item in items:
        values = select(frame, item, metric, length).dropna()
        means.append(f"{_label(item)}: {values.mean():.4g}" if len(values) else f"{_label(item)}: n/a")
    return Verdict(verdict, " > ".join(_label(i) for i in items) + f" on {metric} at L={length}",
                   "; ".join(means), " | ".join(f"{p.expected}: {p.verdict} ({p.measured})" for p in pairs))


@PREDICATES.register("measure")
def measure_predicate(frame: pd.DataFrame, *, rows: list[dict[str, Any]], metric: str, lengths: list[int]) -> Verdict:
    """No verdict: report the measured values (for "which poolings keep it" questions)."""
    parts = []
    for row in rows:
        cells = []
        for length in lengths:
            interval = t_interval(select(frame, row, metric, length).dropna().to_numpy())
            cells.append(f"L={length}: {interval.mean:.3g}")
        parts.append(f"{_label(row)} ({', '.join(cells)})")
    return Verdict(MEASURED, f"{metric} reported, no prediction", "; ".join(parts))
