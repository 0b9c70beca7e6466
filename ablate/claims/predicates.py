"""Executable predicates over a results frame, each giving a verdict with its evidence.

A predicate reads per-seed values and decides with the same anytime-valid
intervals as the report (:mod:`ablate.analysis.stats.confidence`), at the level ``alpha``
its claim gives it (the claim's α divided over its tests, :func:`decisions_of`):

* ``value`` / ``ratio`` - the *median* seed (``statistic = "median"``, the default):
  the share of seeds on the claimed side of the threshold, with an interval; the
  predicate is reproduced when that share is shown to exceed 1/2, not reproduced
  when it is shown to fall below 1/2. A metric with a range may ask for the
  ``mean`` instead (a distribution-free interval that needs more seeds). Learn-or-fail
  seeds make the median the honest statistic: "in most seeds".
* ``better`` / ``order`` - :func:`ablate.analysis.stats.verdict.judge`, the report's verdict:
  better is reproduced; worse or equivalent is not reproduced; undecided is inconclusive.
* ``measure`` - no verdict: the values, reported.

Past the train length a predicate reads only the seeds whose model learned the
task at the train length (:func:`ablate.analysis.stats.decisions.learned_by_seed`); when a
cell did not learn (decided), the predicate cannot be judged and says so.
Thresholds live in the claim files, fixed before any run (the file's hash is
recorded with its results); they are never tuned to make a verdict come out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from ablate.analysis.feasibility import learned_threshold
from ablate.core.metrics import METRICS, higher_is_better
from ablate.core.registry import Registry
from ablate.analysis.stats.confidence import mean_interval, quantile_interval, rate_interval
from ablate.analysis.stats.decisions import DID_NOT_LEARN, learn_status, learned_by_seed, metric_spec
from ablate.analysis.stats.verdict import BETTER, UNDECIDED, judge
from ablate.results.rounds_table import load_rounds, paired

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, MEASURED = "reproduced", "not reproduced", "inconclusive", "measured"
STATISTICS = ("median", "mean")
OPS = ("<=", ">=")


@dataclass
class Verdict:
    """One predicate's outcome: the verdict, what was expected and measured, and a sentence of evidence."""

    verdict: str
    expected: str
    measured: str
    details: str = ""


#: ``predicate(frame, *, alpha, **params) -> Verdict``; registered below.
PREDICATES: Registry[Callable[..., Verdict]] = Registry("predicate")


def decisions_of(expectation: Mapping[str, Any]) -> int:
    """How many decisions an ``[[expect]]`` entry makes (the claim divides its α over them)."""
    name = expectation.get("predicate")
    if name == "measure":
        return 0
    if name == "order":
        return max(1, len(expectation.get("items", [])) - 1)
    return 1


def _label(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in where.items())


def _matching(frame: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    rows = frame
    for column, value in where.items():
        if column not in rows.columns:
            raise ValueError(f"claim predicate: no column {column!r} in the results")
        rows = rows[rows[column].astype(str) == str(value)]
    return rows


def select(frame: pd.DataFrame, where: Mapping[str, Any], metric: str, length: int | None) -> pd.Series:
    """Per-seed values of ``metric`` for rows matching ``where`` (column -> value) at ``length``.

    Several matching rows per seed (e.g. two tasks) are averaged; non-ok rows are NaN.
    """
    rows = _matching(frame[frame["metric"] == metric], where)
    if length is not None:
        rows = rows[rows["eval_length"] == length]
    values = rows.assign(value=rows["value"].where(rows["status"] == "ok"))
    return values.groupby("seed")["value"].mean()


def _threshold(frame: pd.DataFrame, metric: str) -> float | None:
    configured = ((frame.attrs.get("suite_config") or {}).get("report") or {}).get("learned_threshold")
    return learned_threshold(metric, configured)


def _train_length(frame: pd.DataFrame, where: Mapping[str, Any], metric: str) -> int | None:
    rows = _matching(frame[frame["metric"] == metric], where)
    lengths = rows["train_length"].dropna().unique() if "train_length" in rows.columns else []
    return int(lengths[0]) if len(lengths) == 1 else None


def learned_seeds(frame: pd.DataFrame, where: Mapping[str, Any], metric: str, length: int | None,
                  alpha: float) -> tuple[set[Any] | None, str | None]:
    """``(seeds to read, why not judged)`` for a predicate on ``where`` at ``length``.

    At the train length (or without a learned threshold) every seed is read (``None``).
    Past it only the seeds that learned; a cell that did not learn (decided) gives a reason instead.
    """
    threshold = _threshold(frame, metric)
    train_length = _train_length(frame, where, metric)
    if threshold is None or train_length is None or length is None or length == train_length:
        return None, None
    cell = _matching(frame, where)
    seeds = learned_by_seed(cell, metric, threshold)
    status = learn_status(cell, metric, threshold, alpha)
    if len(status) and status["status"].eq(DID_NOT_LEARN).all():
        count = f"{int(seeds['learned'].sum())} of {len(seeds)} seeds learned"
        return set(), f"{_label(where)} did not learn the task at the train length ({count}): not an extrapolation result"
    return set(seeds.loc[seeds["learned"], "seed"]), None


def _restrict(values: pd.Series, seeds: set[Any] | None) -> pd.Series:
    return values if seeds is None else values[values.index.isin(seeds)]


def _share_verdict(values: np.ndarray, threshold: float, op: str, alpha: float) -> tuple[str, str]:
    """Median predicate: is the share of seeds on the claimed side shown above (or below) 1/2?"""
    side = values >= threshold if op == ">=" else values <= threshold
    low, high = rate_interval(int(side.sum()), int(values.size), alpha)
    verdict = REPRODUCED if low > 0.5 else NOT_REPRODUCED if high < 0.5 else INCONCLUSIVE
    median = f"{np.median(values):.4g}" if values.size else "n/a"
    return verdict, (f"median {median}; {int(side.sum())} of {values.size} seeds {op} {threshold:g} "
                     f"(share [{low:.2f}, {high:.2f}])")


def _mean_verdict(values: np.ndarray, metric: str, threshold: float, op: str, alpha: float) -> tuple[str, str]:
    bounds = METRICS[metric].bounds if metric in METRICS else None
    if bounds is None:
        raise ValueError(f"statistic 'mean' needs a metric with a range; {metric!r} has none: use 'median'")
    low, high = mean_interval(values, bounds[0], bounds[1], alpha)
    claimed, other = (low >= threshold, high < threshold) if op == ">=" else (high <= threshold, low > threshold)
    verdict = REPRODUCED if claimed and values.size else NOT_REPRODUCED if other and values.size else INCONCLUSIVE
    mean = f"{values.mean():.4g}" if values.size else "n/a"
    return verdict, f"mean {mean} [{low:.4g}, {high:.4g}] (n={values.size})"


def _decide(values: np.ndarray, metric: str, threshold: float, op: str, statistic: str,
            alpha: float) -> tuple[str, str]:
    if op not in OPS:
        raise ValueError(f"claim predicate: op must be '<=' or '>=', got {op!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"claim predicate: statistic must be 'median' or 'mean', got {statistic!r}")
    values = values[np.isfinite(values)]
    if statistic == "mean":
        return _mean_verdict(values, metric, threshold, op, alpha)
    return _share_verdict(values, threshold, op, alpha)


@PREDICATES.register("value")
def value_predicate(frame: pd.DataFrame, *, alpha: float, where: dict[str, Any], metric: str, length: int, op: str,
                    threshold: float, statistic: str = "median") -> Verdict:
    """The ``statistic`` (median seed, or mean) of ``metric`` at ``length`` is ``op`` ``threshold``."""
    expected = f"{statistic} {metric} of {_label(where)} at L={length} {op} {threshold:g}"
    seeds, why = learned_seeds(frame, where, metric, length, alpha)
    if why:
        return Verdict(INCONCLUSIVE, expected, "not judged", why)
    values = _restrict(select(frame, where, metric, length), seeds).dropna().to_numpy()
    verdict, measured = _decide(values, metric, threshold, op, statistic, alpha)
    details = "seeds that learned at the train length only" if seeds is not None else ""
    return Verdict(verdict, expected, measured, details)


@PREDICATES.register("ratio")
def ratio_predicate(frame: pd.DataFrame, *, alpha: float, where: dict[str, Any], metric: str, length: int,
                    reference_length: int, op: str, threshold: float, other: dict[str, Any] | None = None) -> Verdict:
    """Per seed, ``metric`` at ``length`` divided by ``metric`` at ``reference_length`` (of ``other`` when given,
    e.g. the same length for a baseline encoding); the median seed's ratio is ``op`` ``threshold``."""
    denominator = f"{_label(other)} at L={reference_length}" if other else f"L={reference_length}"
    expected = f"median {metric} of {_label(where)} at L={length} / {denominator} {op} {threshold:g}"
    seeds, why = learned_seeds(frame, where, metric, length, alpha)
    if not why and other:
        other_seeds, why = learned_seeds(frame, other, metric, length, alpha)
        seeds = other_seeds if seeds is None else (seeds if other_seeds is None else seeds & other_seeds)
    if why:
        return Verdict(INCONCLUSIVE, expected, "not judged", why)
    numerator = select(frame, where, metric, length)
    denominator = select(frame, other or where, metric, reference_length)
    paired = numerator.index.intersection(denominator.index)  # a seed run for one side only is no pair, not a failure
    ratio = numerator[paired] / denominator[paired]
    ratio = _restrict(ratio.replace([np.inf, -np.inf], np.nan), seeds)
    missing = int(ratio.isna().sum())
    verdict, measured = _decide(ratio.dropna().to_numpy(), metric, threshold, op, "median", alpha)
    details = f"{missing} seed(s) without a value (unsupported/failed)" if missing else ""
    return Verdict(verdict, expected, f"ratio {measured}", details)


@PREDICATES.register("cost")
def cost_predicate(frame: pd.DataFrame, *, alpha: float, where: dict[str, Any], other: dict[str, Any], metric: str,
                   length: int, op: str, threshold: float) -> Verdict:
    """The cost ``metric`` of ``where`` relative to ``other`` at ``length`` is ``op`` ``threshold``: the median
    paired ratio over the measurement rounds (round ``i`` of one model with round ``i`` of the other, measured
    together), reproduced when its whole confidence sequence lies on the claimed side, not reproduced when it
    lies on the other side."""
    if op not in OPS:
        raise ValueError(f"claim predicate: op must be '<=' or '>=', got {op!r}")
    expected = f"median paired ratio of {metric} of {_label(where)} to {_label(other)} at L={length} {op} {threshold:g}"
    rounds = load_rounds(frame.attrs["results_path"]) if frame.attrs.get("results_path") else None
    t, b = _cost_rounds(frame, rounds, where, metric, length), _cost_rounds(frame, rounds, other, metric, length)
    ratio_t, ratio_b = paired(t, b) if len(t) and len(b) else ([], [])
    q = np.log(np.asarray(ratio_t, dtype=float)) - np.log(np.asarray(ratio_b, dtype=float))
    low, high = (np.exp(v) for v in quantile_interval(q, 0.5, alpha))
    if op == ">=":
        verdict = REPRODUCED if low >= threshold else NOT_REPRODUCED if high < threshold else INCONCLUSIVE
    else:
        verdict = REPRODUCED if high <= threshold else NOT_REPRODUCED if low > threshold else INCONCLUSIVE
    estimate = f"{np.exp(np.median(q)):.3f}" if q.size else "n/a"
    return Verdict(verdict, expected, f"ratio {estimate} [{low:.3f}, {high:.3f}] over {q.size} paired rounds")


def _cost_rounds(frame: pd.DataFrame, rounds: pd.DataFrame | None, where: dict[str, Any], metric: str,
                 length: int) -> pd.DataFrame:
    """The stored rounds of the measurement run of ``where`` at ``length`` (empty when none)."""
    runs = _matching(frame[frame["kind"].eq("measure") & frame["metric"].eq(metric)], where)
    if rounds is None or runs.empty:
        return pd.DataFrame(columns=["session", "round", "value"])
    mine = rounds[rounds["run_id"].isin(set(runs["run_id"])) & rounds["metric"].eq(metric)
                  & rounds["eval_length"].eq(length)]
    return mine


@PREDICATES.register("better")
def better_predicate(frame: pd.DataFrame, *, alpha: float, a: dict[str, Any], b: dict[str, Any], metric: str,
                     length: int, margin: float | None = None) -> Verdict:
    """``a`` is better than ``b`` on ``metric`` at ``length``: the report's verdict (:func:`ablate.analysis.stats.verdict.judge`)
    on seeds paired between them; ``margin`` is the equivalence margin (default: the metric's)."""
    expected = f"{_label(a)} better than {_label(b)} on {metric} at L={length}"
    seeds, why = learned_seeds(frame, a, metric, length, alpha)
    if not why:
        b_seeds, why = learned_seeds(frame, b, metric, length, alpha)
        seeds = b_seeds if seeds is None else (seeds if b_seeds is None else seeds & b_seeds)
    if why:
        return Verdict(INCONCLUSIVE, expected, "not judged", why)
    pairs = pd.concat([select(frame, a, metric, length).rename("a"), select(frame, b, metric, length).rename("b")],
                      axis=1, join="inner")
    pairs = pairs[pairs.index.isin(seeds)] if seeds is not None else pairs
    spec = metric_spec(metric, frame)
    v = judge(pairs["a"].to_numpy(), pairs["b"].to_numpy(), metric=spec, alpha=alpha, margin=margin)
    verdict = REPRODUCED if v.verdict == BETTER else INCONCLUSIVE if v.verdict == UNDECIDED else NOT_REPRODUCED
    what = "ratio" if v.scale == "ratio" else "difference"
    measured = (f"{v.verdict}: wins {v.wins}, losses {v.losses}, ties {v.ties} (share won [{v.win_low:.2f}, "
                f"{v.win_high:.2f}]); {v.estimand} {what} {v.estimate:.4g} [{v.low:.4g}, {v.high:.4g}]")
    return Verdict(verdict, expected, measured, "")


@PREDICATES.register("order")
def order_predicate(frame: pd.DataFrame, *, alpha: float, items: list[dict[str, Any]], metric: str, length: int,
                    margin: float | None = None) -> Verdict:
    """``items[0]`` better than ``items[1]`` better than ... (each adjacent pair a ``better`` predicate)."""
    pairs = [better_predicate(frame, alpha=alpha, a=a, b=b, metric=metric, length=length, margin=margin)
             for a, b in zip(items, items[1:])]
    verdicts = {p.verdict for p in pairs}
    verdict = NOT_REPRODUCED if NOT_REPRODUCED in verdicts else REPRODUCED if verdicts == {REPRODUCED} else INCONCLUSIVE
    direction = "higher" if higher_is_better(metric, frame) else "lower"
    medians = []
    for item in items:
        values = select(frame, item, metric, length).dropna()
        medians.append(f"{_label(item)}: {values.median():.4g}" if len(values) else f"{_label(item)}: n/a")
    return Verdict(verdict, " > ".join(_label(i) for i in items) + f" on {metric} at L={length} ({direction} is better)",
                   "medians " + "; ".join(medians), " | ".join(f"{p.expected}: {p.verdict} ({p.measured})" for p in pairs))


@PREDICATES.register("measure")
def measure_predicate(frame: pd.DataFrame, *, alpha: float, rows: list[dict[str, Any]], metric: str,
                      lengths: list[int]) -> Verdict:
    """No verdict: the median over seeds of each row at each length (for "which poolings keep it" questions)."""
    parts = []
    for row in rows:
        cells = []
        for length in lengths:
            values = select(frame, row, metric, length).dropna()
            cells.append(f"L={length}: {values.median():.3g}" if len(values) else f"L={length}: n/a")
        parts.append(f"{_label(row)} ({', '.join(cells)})")
    return Verdict(MEASURED, f"{metric} reported, no prediction", "; ".join(parts))


def cells_of(expectation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``where``-style cell selectors a predicate reads (``where``, ``other``, ``a``, ``b``, ``items``, ``rows``)."""
    cells = [expectation[k] for k in ("where", "other", "a", "b") if isinstance(expectation.get(k), dict)]
    for key in ("items", "rows"):
        cells += [item for item in expectation.get(key, []) if isinstance(item, dict)]
    return cells


def is_open(verdict: str) -> bool:
    """Whether more seeds could still change a predicate's verdict."""
    return verdict == INCONCLUSIVE


__all__ = ["INCONCLUSIVE", "MEASURED", "NOT_REPRODUCED", "OPS", "PREDICATES", "REPRODUCED", "STATISTICS", "Verdict",
           "cells_of", "is_open", "learned_seeds", "select", "decisions_of"]

