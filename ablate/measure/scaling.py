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

from ablate.stats.scaling import fit_power_law

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
    """Least-squares power law of ``values`` against ``lengths`` (:func:`ablate.stats.fit_power_law`).

    Non-positive or non-finite points are dropped (a log needs a positive number).
    With fewer than two distinct lengths every field but ``n`` is NaN.
    """
    if np.shape(lengths) != np.shape(values):
        raise ValueError(f"lengths and values differ in size: {np.shape(lengths)} vs {np.shape(values)}")
    fit = fit_power_law(lengths, values, confidence=confidence)
    return ScalingFit(fit["exponent"], fit["ci_low"], fit["ci_high"], fit["intercept"], fit["r_squared"],
                      fit["n_points"])


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
