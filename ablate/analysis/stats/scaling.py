"""How cost grows with sequence length: log-log exponents and ratios to a baseline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ablate.analysis.stats.frame import baseline_of, cell_keys, grid_axes, ok_rows


@dataclass(frozen=True)
class PowerLaw:
    """``log(value) = intercept + exponent * log(length)``: how a cost grows with length.

    An exponent near 1 is linear in the length, near 2 quadratic (materialised
    ``L x L`` scores or biases).

    Attributes:
        exponent: fitted slope on log-log axes.
        ci_low, ci_high: the slope's t-interval (``n - 2`` degrees of freedom; NaN with fewer than 3 points).
        intercept: ``log(c)`` (natural log).
        r_squared: coefficient of determination on log-log axes.
        n_points: points used (positive, finite lengths and values).
    """

    exponent: float
    ci_low: float
    ci_high: float
    intercept: float
    r_squared: float
    n_points: int

    def predict(self, length: float) -> float:
        """``exp(intercept) * length ** exponent``."""
        return math.exp(self.intercept) * length**self.exponent


def fit_power_law(lengths: Sequence[float], values: Sequence[float], *, confidence: float = 0.95) -> PowerLaw:
    """Fit ``value = c * length ** exponent`` to one series of points by least squares on log-log axes.

    Non-positive or non-finite points are dropped (a log needs a positive number).
    With fewer than two distinct lengths every field but ``n_points`` is NaN.
    """
    if np.shape(lengths) != np.shape(values):
        raise ValueError(f"lengths and values differ in size: {np.shape(lengths)} vs {np.shape(values)}")
    x, y = np.asarray(lengths, dtype=float), np.asarray(values, dtype=float)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    x, y = np.log(x[keep]), np.log(y[keep])
    if np.unique(x).size < 2:
        return PowerLaw(np.nan, np.nan, np.nan, np.nan, np.nan, int(x.size))
    fit = stats.linregress(x, y)
    low = high = np.nan
    if x.size >= 3:
        half = stats.t.ppf((1 + confidence) / 2, x.size - 2) * fit.stderr
        low, high = float(fit.slope - half), float(fit.slope + half)
    return PowerLaw(float(fit.slope), low, high, float(fit.intercept), float(fit.rvalue**2), int(x.size))


def scaling_exponents(
    df: pd.DataFrame,
    metric: str,
    *,
    by: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Scaling exponent of ``metric`` against ``eval_length`` per configuration (:func:`fit_power_law` per group).

    Every ok row (every seed/repeat) is a point; non-positive values are skipped.

    Args:
        df: the tidy results frame.
        metric: e.g. ``"time_median_s"`` (exponent ~1 linear, ~2 quadratic) or ``"peak_memory_bytes"``.
        by: group columns; default every cell key except ``eval_length`` (so forward and
            train-step measurements are never mixed).
        confidence: coverage of the exponent's interval.

    Returns:
        The ``by`` columns, then ``exponent, ci_low, ci_high, intercept, r_squared, n_points, n_lengths``.
    """
    rows = ok_rows(df, metric)
    by = list(by) if by is not None else [k for k in cell_keys(df, grid_axes(df)) if k != "eval_length"]
    out = []
    for key, group in rows.groupby(by, dropna=False, sort=False) if by else [((), rows)]:
        fit = fit_power_law(group["eval_length"], group["value"], confidence=confidence)
        out.append({**dict(zip(by, key)), **asdict(fit), "n_lengths": int(group["eval_length"].nunique())})
    columns = [*by, "exponent", "ci_low", "ci_high", "intercept", "r_squared", "n_points", "n_lengths"]
    return pd.DataFrame(out, columns=columns)


def cost_ratios(
    df: pd.DataFrame,
    metric: str,
    *,
    axis: str = "encoding",
    baseline: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Mean of ``metric`` in each cell divided by the baseline ``axis`` value's mean, other keys fixed.

    Returns:
        The cell key columns, ``mean``, ``baseline_mean`` and ``ratio`` (NaN where the
        baseline cell has no ok value).
    """
    axes = grid_axes(df)
    if axis not in df.columns:
        raise ValueError(f"cannot take ratios over {axis!r}: not a column of the results")
    reference = baseline_of(df, axes if axis in axes else [*axes, axis], baseline)[axis]
    rows = df[df["metric"].eq(metric)]
    keys = cell_keys(rows, axes)
    others = [k for k in keys if k != axis]
    means = ok_rows(rows).groupby(keys, dropna=False, sort=False)["value"].mean().rename("mean").reset_index()
    base = means[means[axis].eq(reference)].drop(columns=axis).rename(columns={"mean": "baseline_mean"})
    merged = means.merge(base, on=others, how="left")  # merge matches NaN keys (measure.* on train rows)
    merged["ratio"] = merged["mean"] / merged["baseline_mean"]
    return merged
