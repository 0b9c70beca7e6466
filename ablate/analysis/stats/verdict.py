"""One verdict for one paired comparison: better, worse, equivalent within a margin, or undecided.

:func:`judge` is the one function that decides every comparison ablate reports:
the findings, the heatmap and significance marks, ``comparisons.csv``, which cells
get more seeds, and the claims' ``better``/``order`` predicates all call it. Runs
are paired by seed; ``q`` is the paired difference (``treatment - baseline``, or
``log(treatment / baseline)`` on a ratio scale), oriented so that positive is better.

* **better / worse** - the treatment wins more paired seeds than it loses (ties set
  aside), shown by a confidence sequence for the win rate
  (:func:`~ablate.analysis.stats.confidence.rate_interval`) that excludes 1/2, and the
  average difference points the same way. *Guarantee*: when the compared axis
  makes no difference (the two runs of a seed are exchangeable - in particular two
  cells with the same distribution of outcomes, whatever that distribution is:
  learn-or-fail mixtures, ties, zero spread, skew), a better/worse verdict is
  reached with probability at most ``alpha``, at any number of seeds, however they
  were added.
* **equivalent** - the interval of the comparison's estimand lies inside
  ``±margin``: the *mean* difference for a metric with a range (accuracy: a
  betting confidence sequence, valid for any distribution within the range), the
  *median* difference for a metric without one (loss, time: no finite number of
  seeds bounds the mean of an unbounded variable). *Guarantee*: when the true
  estimand is at least the margin away from 0, equivalence is reached with
  probability at most ``alpha``, at any number of seeds. On a metric with a range this
  needs many seeds unless the data are tight, because a failure mode that a
  handful of seeds did not show cannot be ruled out by them.
* **undecided** - neither; :func:`pairs_needed` says roughly how many more
  pairs would decide it if the seeds to come look like the ones so far.

A family of ``m`` comparisons calls :func:`judge` with ``alpha / m`` each (Bonferroni:
valid under any dependence and any stopping rule).

Repeated measurements of a cost (interleaved timing rounds, ``by="interval"``) have
no learn-or-fail structure and plenty of repeats; there a difference is called only
when the estimand's whole interval lies beyond the margin (a cost ratio outside
``[1/(1+m), 1+m]``), so that noise-sized differences are never a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ablate.core.metrics import METRICS, Metric
from ablate.analysis.stats.confidence import mean_interval, quantile_interval, rate_interval

BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"
VERDICTS = (BETTER, WORSE, EQUIVALENT, UNDECIDED)
#: Largest number of pairs :func:`pairs_needed` looks ahead to.
LOOK_AHEAD = 1_000


@dataclass(frozen=True)
class Verdict:
    """A decided (or undecided) paired comparison and its evidence.

    ``estimate``, ``low`` and ``high`` are on the metric's own scale, not oriented:
    ``treatment - baseline`` (difference) or ``treatment / baseline`` (ratio).
    """

    verdict: str
    #: Pairs with a value on both sides.
    n: int
    wins: int
    losses: int
    ties: int
    #: Confidence sequence of P(win | not a tie).
    win_low: float
    win_high: float
    #: "mean" or "median" of the paired difference or ratio.
    estimand: str
    estimate: float
    low: float
    high: float
    scale: str
    margin: float

    @property
    def decided(self) -> bool:
        return self.verdict != UNDECIDED


def margin_of(metric: str, margins: dict[str, float] | None = None) -> float:
    """The equivalence margin of ``metric``: the suite's ``[report.margins]`` entry, else the metric's default."""
    if margins and metric in margins:
        return float(margins[metric])
    return METRICS[metric].margin if metric in METRICS else 0.05


def judge(treatment: Sequence[float], baseline: Sequence[float], *, metric: str | Metric, alpha: float,
          margin: float | None = None, by: str = "wins") -> Verdict:
    """The verdict on paired runs (``treatment[i]`` and ``baseline[i]`` share seed ``i``).

    Args:
        treatment, baseline: per-seed values; a pair with a missing (NaN) side is dropped.
        metric: a metric name or :class:`~ablate.core.metrics.Metric` (direction, scale, range).
        alpha: the error rate of this one comparison (a family passes ``alpha / m``).
        margin: equivalence margin in the scale's terms (default: the metric's).
        by: ``"wins"`` (seeds: better/worse from the win rate) or ``"interval"`` (repeated measurements:
            better/worse only when the whole interval lies beyond the margin).

    Raises:
        ValueError: unequal lengths, a non-positive value on a ratio scale, or a value outside the metric's range.
    """
    if by not in ("wins", "interval"):
        raise ValueError(f"by must be 'wins' or 'interval', got {by!r}")
    spec = metric if isinstance(metric, Metric) else _metric(metric)
    margin = spec.margin if margin is None else float(margin)
    t, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if t.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {t.size} vs {b.size}")
    keep = np.isfinite(t) & np.isfinite(b)
    q = _paired(t[keep], b[keep], spec)
    d = _decide(q, spec, alpha, margin, by)
    return Verdict(d.verdict, int(q.size), d.wins, d.losses, int(q.size) - d.wins - d.losses, d.win_low,
                   d.win_high, d.estimand, _shown(d.estimate, spec), _shown(d.low, spec), _shown(d.high, spec),
                   spec.scale, margin)


@dataclass(frozen=True)
class _Decision:
    """Everything :func:`judge` decides from, on the inference scale (differences or log ratios)."""

    verdict: str
    wins: int
    losses: int
    win_low: float
    win_high: float
    estimand: str
    estimate: float
    low: float
    high: float


def _decide(q: np.ndarray, spec: Metric, alpha: float, margin: float, by: str) -> _Decision:
    """The verdict on paired quantities ``q`` (``(n,)``, unoriented) and the intervals it rests on."""
    sign = 1.0 if spec.higher_is_better else -1.0
    oriented = sign * q
    wins, losses = int((oriented > 0).sum()), int((oriented < 0).sum())
    win_low, win_high = rate_interval(wins, wins + losses, alpha)
    estimand, low, high, estimate = _estimand_interval(q, spec, alpha)
    interval = (low, high) if sign > 0 else (-high, -low)
    verdict = _verdict(oriented, (win_low, win_high), interval, _log_margin(margin, spec), by)
    return _Decision(verdict, wins, losses, win_low, win_high, estimand, estimate, low, high)


def pairs_needed(treatment: Sequence[float], baseline: Sequence[float], *, metric: str | Metric, alpha: float,
                 margin: float | None = None, by: str = "wins") -> int | None:
    """Roughly how many more pairs would decide an undecided comparison, if they repeat the ones so far
    in proportion (``None``: none within :data:`LOOK_AHEAD` pairs, e.g. wins and losses balanced)."""
    spec = metric if isinstance(metric, Metric) else _metric(metric)
    margin = spec.margin if margin is None else float(margin)
    t, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    keep = np.isfinite(t) & np.isfinite(b)
    return _needed(_paired(t[keep], b[keep], spec), spec, alpha, margin, by)


def _verdict(oriented: np.ndarray, wins: tuple[float, float], interval: tuple[float, float], bound: float,
             by: str) -> str:
    """The verdict from the win rate's and the (oriented) estimand's intervals; see the module docstring."""
    if oriented.size == 0:
        return UNDECIDED
    low, high = interval
    if by == "interval":
        return BETTER if low > bound else WORSE if high < -bound else EQUIVALENT if -bound < low and high < bound \
            else UNDECIDED
    centre = float(oriented.mean())
    if wins[0] > 0.5 and centre > 0:
        return BETTER
    if wins[1] < 0.5 and centre < 0:
        return WORSE
    return EQUIVALENT if -bound < low and high < bound else UNDECIDED


def _metric(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"judge: metric {name!r} has no known direction, scale or range; pass a Metric")
    return METRICS[name]


def _paired(t: np.ndarray, b: np.ndarray, spec: Metric) -> np.ndarray:
    """``(n,)`` paired quantity on the inference scale: differences, or log ratios."""
    if spec.scale == "difference":
        return t - b
    if t.size and (t.min() <= 0 or b.min() <= 0):
        raise ValueError(f"metric {spec.name!r} is compared as a ratio and needs positive values")
    return np.log(t) - np.log(b)


def _log_margin(margin: float, spec: Metric) -> float:
    """The margin on the inference scale (a ratio margin of 5% is log 1.05)."""
    return math.log1p(margin) if spec.scale == "ratio" else margin


def _shown(value: float, spec: Metric) -> float:
    """Back on the metric's own scale: a log ratio becomes a ratio."""
    return math.exp(value) if spec.scale == "ratio" else value


def _estimand_interval(q: np.ndarray, spec: Metric, alpha: float) -> tuple[str, float, float, float]:
    """``(estimand, low, high, estimate)`` on the inference scale (differences or log ratios)."""
    if spec.bounds is not None and spec.scale == "difference":
        lo, hi = spec.bounds
        low, high = mean_interval(q, lo - hi, hi - lo, alpha)
        return "mean", low, high, float(q.mean()) if q.size else math.nan
    low, high = quantile_interval(q, 0.5, alpha)
    return "median", low, high, float(np.median(q)) if q.size else math.nan


def _needed(q: np.ndarray, spec: Metric, alpha: float, margin: float, by: str) -> int | None:
    """Further pairs until a verdict, if the pairs to come repeat the ones so far in proportion."""
    if q.size == 0:
        return None
    limit = max(1, LOOK_AHEAD // q.size)

    def decides(k: int) -> bool:
        return _decide(np.tile(q, k), spec, alpha, margin, by).verdict != UNDECIDED

    k = 2
    while k <= limit and not decides(k):
        k *= 2
    if k > limit:
        return None
    lo = k // 2 + 1  # the doubling overshot at most by a factor of two: bisect back
    while lo < k:
        middle = (lo + k) // 2
        if decides(middle):
            k = middle
        else:
            lo = middle + 1
    return int(k * q.size - q.size)
