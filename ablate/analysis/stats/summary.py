"""Per-cell summaries: mean, spread and a confidence interval over seeds.

Interval method, chosen per cell and recorded in the ``ci_method`` column:

- ``"BCa"``: :func:`scipy.stats.bootstrap` (bias-corrected and accelerated) with a
  fixed seed, when the cell has at least :data:`BOOTSTRAP_MIN_N` values. Below that
  the bootstrap distribution of a mean under-covers badly (about 88% for a nominal
  95% at n=5), so
- ``"t"``: the Student-t interval ``mean +- t(n-1) * s / sqrt(n)`` is used for
  2 <= n < BOOTSTRAP_MIN_N, and whenever BCa is degenerate (e.g. few distinct values).
- ``"constant"``: every value is identical (zero-width interval).
- ``"none"``: fewer than two values; no interval.

An interval of a metric with a range (accuracy in ``[0, 1]``) is cut to that range: the
mean lies in it, so the cut interval covers whenever the uncut one does. These
intervals describe the seeds; verdicts come from :mod:`ablate.analysis.stats.verdict`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from ablate.core.metrics import METRICS, higher_is_better
from ablate.analysis.stats.frame import cell_keys

#: Smallest number of seeds for which the BCa bootstrap is used instead of the t-interval.
BOOTSTRAP_MIN_N = 10


def confidence_interval(
    values: Iterable[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    min_bootstrap_n: int = BOOTSTRAP_MIN_N,
) -> tuple[float, float, str]:
    """Confidence interval of the mean of ``values`` (NaNs dropped).

    Args:
        values: one number per seed.
        confidence: coverage, e.g. 0.95.
        n_resamples: bootstrap resamples (BCa only).
        seed: bootstrap seed; fixed so the same data give the same interval.
        min_bootstrap_n: use BCa from this many values on, the t-interval below.

    Returns:
        ``(low, high, method)`` with method ``"BCa"``, ``"t"``, ``"constant"`` or ``"none"``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    n = x.size
    if n < 2:
        return np.nan, np.nan, "none"
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0]), "constant"
    if n >= min_bootstrap_n:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate BCa returns NaN; we fall back below
            result = stats.bootstrap(
                (x,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="BCa",
                rng=np.random.default_rng(seed), vectorized=True,
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high), "BCa"
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean() - half), float(x.mean() + half), "t"


def summarize(
    df: pd.DataFrame,
    *,
    confidence: float = 0.95,
    axes: list[str] | None = None,
    n_resamples: int = 9999,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per cell (config x metric x eval_length), pooled over seeds.

    Args:
        df: the tidy results frame.
        confidence: interval coverage.
        axes: grid axes; default :func:`ablate.analysis.stats.frame.grid_axes`.
        n_resamples: bootstrap resamples for cells with enough seeds.
        seed: bootstrap seed.

    Returns:
        The cell key columns, then ``n`` (ok values), ``n_runs`` (runs of the cell, plus runs of its
        configuration that failed before producing any metric), ``mean``, ``std``,
        ``ci_low``, ``ci_high``, ``ci_method``, ``status`` (``"ok"`` if any value is
        ok, else the most common failure) and ``higher_is_better``. Cells keep the
        order in which they first appear.
    """
    rows = df[df["metric"].notna()]
    keys = cell_keys(df, axes)
    config = [k for k in keys if k not in ("metric", "eval_length")]
    # runs that died before producing any metric still count against every cell of their configuration
    silent = df[df["metric"].isna()]
    lost: dict[tuple[str, ...], int] = {}
    if len(silent) and "run_id" in df:
        for key, group in silent.groupby(config, dropna=False, sort=False):
            lost[tuple(map(str, key))] = group["run_id"].nunique()  # str: NaN keys compare equal
    out = []
    for key, group in rows.groupby(keys, dropna=False, sort=False):
        values = pd.to_numeric(group["value"], errors="coerce")
        ok = values[group["status"].eq("ok") & np.isfinite(values)] if "status" in group else values.dropna()
        low, high, method = confidence_interval(ok, confidence=confidence, n_resamples=n_resamples, seed=seed)
        metric = dict(zip(keys, key))["metric"]
        bounds = METRICS[metric].bounds if metric in METRICS else None
        if bounds is not None and np.isfinite(low):
            low, high = max(low, bounds[0]), min(high, bounds[1])
        failures = group.loc[~group.index.isin(ok.index), "status"] if "status" in group else pd.Series([])
        status = "ok" if len(ok) else (failures.value_counts().index[0] if len(failures) else "missing")
        out.append({
            **dict(zip(keys, key)),
            "n": len(ok),
            "n_runs": (int(group["run_id"].nunique()) if "run_id" in group else len(group))
            + int(lost.get(tuple(map(str, key[: len(config)])), 0)),
            "mean": float(ok.mean()) if len(ok) else np.nan,
            "std": float(ok.std(ddof=1)) if len(ok) > 1 else np.nan,
            "ci_low": low,
            "ci_high": high,
            "ci_method": method,
            "status": status,
            "higher_is_better": higher_is_better(metric, df),
        })
    columns = [*keys, "n", "n_runs", "mean", "std", "ci_low", "ci_high", "ci_method", "status", "higher_is_better"]
    return pd.DataFrame(out, columns=columns)


__all__ = ["BOOTSTRAP_MIN_N", "confidence_interval", "summarize"]
