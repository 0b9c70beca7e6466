"""Descriptions of paired samples: effect sizes and classical tests shown beside a verdict, never instead of it.

Verdicts come from :mod:`ablate.analysis.stats.verdict` alone. What is here describes the
same pairs for a reader used to them: Cohen's d_z, Cliff's delta, the paired t and
Wilcoxon signed-rank p-values (fixed-sample, uncorrected: not valid after seeds
were added adaptively, so never a decision), and Holm's adjustment for tables of
fixed-sample p-values.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

#: Fewest pairs for which a fixed-sample test is described (``ablate compare``).
MIN_PAIRS = 3


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    NaN entries are not tests: they stay NaN and do not count towards the family size.
    """
    p = np.asarray(list(pvalues), dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = valid.size
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    # the i-th smallest p is multiplied by (m - i); the running max keeps the order of the p-values
    scaled = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted


def cohens_dz(differences: Iterable[float]) -> float:
    """Cohen's d_z: mean of the paired differences over their standard deviation (ddof=1)."""
    d = np.asarray(list(differences), dtype=float)
    if d.size < 2:
        return np.nan
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if d.mean() == 0 else float(np.sign(d.mean()) * np.inf)
    return float(d.mean() / sd)


def cliffs_delta(x: Iterable[float], y: Iterable[float]) -> float:
    """Cliff's delta: P(X > Y) - P(X < Y) over all pairs of an ``x`` and a ``y`` value, in [-1, 1]."""
    a, b = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if a.size == 0 or b.size == 0:
        return np.nan
    sign = np.sign(a[:, None] - b[None, :])
    return float(sign.mean())


def paired_test(treatment: Sequence[float], baseline: Sequence[float]) -> dict[str, float]:
    """Paired t and Wilcoxon tests and effect sizes of ``treatment - baseline`` (same order = same pair).

    Returns:
        ``n, mean_diff, t, p_t, p_wilcoxon, d_z, cliffs_delta``. With identical
        pairs both p-values are 1; with a constant non-zero difference the t-test's p is 0.
    """
    x, y = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    d = x - y
    out = {"n": int(d.size), "mean_diff": float(d.mean()) if d.size else np.nan, "t": np.nan, "p_t": np.nan,
           "p_wilcoxon": np.nan, "d_z": cohens_dz(d), "cliffs_delta": cliffs_delta(x, y)}
    if d.size < 2:
        return out
    if np.all(d == 0):  # identical results: no evidence of a difference (scipy would return NaN)
        return {**out, "t": 0.0, "p_t": 1.0, "p_wilcoxon": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-identical data; the result is still right
        t = stats.ttest_rel(x, y)
        # Zeros or ties make scipy's 'auto' run a permutation test, too slow for a description.
        tied = np.any(d == 0) or np.unique(np.abs(d)).size < d.size
        w = stats.wilcoxon(d, method="asymptotic" if tied else "auto")
    return {**out, "t": float(t.statistic), "p_t": float(t.pvalue), "p_wilcoxon": float(w.pvalue)}
