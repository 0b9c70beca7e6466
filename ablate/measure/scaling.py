"""How a cost grows with length: ``value = c * length ** exponent`` fitted on log-log axes.

An exponent near 1 is linear in the length, near 2 quadratic (materialised
``L x L`` attention scores or biases). The interval is the 95% t-interval of the
least-squares slope (``n - 2`` degrees of freedom), so it needs three lengths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Default grouping of :func:`fit_scaling_frame` (those present in the frame are used).
GROUP_COLUMNS = ("encoding", "pooling", "measure.mode", "measure.batch_size", "measure.dtype", "metric")


@dataclass(frozen=True)
class ScalingFit:
    """``log(value) = intercept + exponent * log(length)``.

    Attributes:
        exponent: fitted slope on log-log axes.
        ci_low, ci_high: the slope's confidence interval (NaN with fewer than 3 points).
        intercept: ``log(c)`` (natural log).
        r2: coefficient of determination on log-log axes.
        n: points used (positive, finite lengths and values).
    """

    exponent: float
    ci_low: float
    ci_high: float
    intercept: float
    r2: float
    n: int

    def predict(self, length: float) -> float:
        """``exp(intercept) * length ** exponent``."""
        return math.exp(self.intercept) * length**self.exponent


def fit_scaling(lengths: Sequence[float], values: Sequence[float], *, confidence: float = 0.95) -> ScalingFit:
    """Least-squares power law of ``values`` against ``lengths``.

    Non-positive or non-finite points are dropped (a log needs a positive number).
    With fewer than two distinct lengths every field but ``n`` is NaN.
    """
    x, y = np.asarray(lengths, dtype=float), np.asarray(values, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"lengths and values differ in size: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = np.log(x[keep]), np.log(y[keep])
    n = int(x.size)
    if np.unique(x).size < 2:
        return ScalingFit(math.nan, math.nan, math.nan, math.nan, math.nan, n)
    fit = stats.linregress(x, y)
    low = high = math.nan
    if n >= 3:
        half = float(stats.t.ppf((1 + confidence) / 2, n - 2) * fit.stderr)
        low, high = float(fit.slope) - half, float(fit.slope) + half
    r2 = float(fit.rvalue**2) if np.isfinite(fit.rvalue) else math.nan
    return ScalingFit(float(fit.slope), low, high, float(fit.intercept), r2, n)


def fit_scaling_frame(
    df: pd.DataFrame,
    *,
    by: Sequence[str] | None = None,
    length_column: str = "eval_length",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """:func:`fit_scaling` per group of a tidy frame, ignoring rows whose status is not ``ok``.

    Args:
        df: rows with ``eval_length``, ``metric``, ``value``, ``status`` and the ``by`` columns.
        by: group columns; default those of :data:`GROUP_COLUMNS` present in ``df``
            (so forward and train-step costs, or two metrics, are never mixed).
        length_column: the length column.
        confidence: coverage of the exponent's interval.

    Returns:
        One row per group: the ``by`` columns, then ``exponent, ci_low, ci_high, intercept, r2, n``.
    """
    by = [c for c in GROUP_COLUMNS if c in df.columns] if by is None else list(by)
    missing = [c for c in [*by, length_column, "value", "status"] if c not in df.columns]
    if missing:
        raise ValueError(f"the frame has no column(s) {missing}")
    rows = df[df["status"].eq("ok")]
    fields = list(ScalingFit.__dataclass_fields__)
    out = []
    groups = rows.groupby(by, dropna=False, sort=True) if by else [((), rows)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        fit = fit_scaling(group[length_column], group["value"], confidence=confidence)
        out.append({**dict(zip(by, key)), **asdict(fit)})
    return pd.DataFrame(out, columns=[*by, *fields])
