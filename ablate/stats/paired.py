"""Paired comparisons against a baseline, with Holm-Bonferroni correction.

For every grid axis, each non-baseline value is compared with the baseline value
while every other cell key (other axes, task, metric, eval_length, ...) is held
fixed. Runs are paired by seed (``pair_by``): the same seed means the same data
order and initialisation, so the paired difference removes that shared noise.

Per comparison: the paired t-test (the primary test; it has power at the 3-10
seeds ablations can afford), the Wilcoxon signed-rank test (no normality
assumption, but with n < 6 pairs its exact two-sided p can never fall below
0.05), Cohen's d_z, Cliff's delta, and Holm-corrected p-values over the family
(by default all comparisons of one metric). ``verdict`` is oriented by the
metric's direction: ``"better"``/``"worse"`` when the Holm-corrected paired t
p-value is below ``alpha``, else ``"n.s."``, or ``"not enough seeds (n=2)"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ablate.metrics import higher_is_better
from ablate.stats.frame import baseline_of, cell_keys, describe, grid_axes, ok_rows

#: Fewest pairs for which a test is run; fewer gives "not enough seeds (n=...)".
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
        w = stats.wilcoxon(d)
    return {**out, "t": float(t.statistic), "p_t": float(t.pvalue), "p_wilcoxon": float(w.pvalue)}


def paired_comparisons(
    df: pd.DataFrame,
    *,
    metric: str | None = None,
    baseline: Mapping[str, Any] | None = None,
    axes: list[str] | None = None,
    pair_by: Sequence[str] = ("seed",),
    family: Sequence[str] = ("metric",),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every non-baseline axis value against the baseline, other cell keys fixed, paired by seed.

    Args:
        df: the tidy results frame.
        metric: only this metric (default: all metrics).
        baseline: ``{axis: value}`` overrides; default ``df.attrs["baseline"]``, then each axis's first value.
        axes: grid axes; default :func:`ablate.stats.frame.grid_axes`.
        pair_by: columns matching a treatment run with its baseline run. ``("task", "seed")``
            pools the tasks into one comparison (pairs are then task x seed).
        family: columns whose groups form one Holm family.
        alpha: significance level for ``verdict``.

    Returns:
        One row per comparison: the cell key columns (the axis column holding the
        treatment value), ``axis``, ``baseline``, ``context`` (the fixed values as
        text), ``n``, ``mean``, ``baseline_mean``, ``mean_diff``, ``t``, ``p_t``,
        ``p_wilcoxon``, ``d_z``, ``cliffs_delta``, ``p_t_holm``, ``p_wilcoxon_holm``,
        ``verdict``.
    """
    if "seed" in pair_by and "seed" not in df.columns:
        raise ValueError("paired comparisons need a 'seed' column to pair runs by")
    axes = axes if axes is not None else grid_axes(df)
    base = baseline_of(df, axes, baseline)
    keys = cell_keys(df, axes)
    rows = ok_rows(df, metric)
    varying = {k for k in keys if df[k].nunique(dropna=False) > 1}  # the context names only what varies
    records: list[dict[str, Any]] = []
    for axis in axes:
        pairs = [c for c in pair_by if c in rows.columns and c != axis]
        held = [k for k in keys if k != axis and k not in pairs]
        for fixed, group in rows.groupby(held, dropna=False, sort=False):
            fixed = dict(zip(held, fixed))
            reference = group[group[axis].eq(base[axis])]
            if reference.empty:
                continue
            reference_values = reference.groupby(pairs, dropna=False)["value"].mean()
            for value in pd.unique(group[axis]):
                if value == base[axis]:
                    continue
                treated = group[group[axis].eq(value)].groupby(pairs, dropna=False)["value"].mean()
                joined = pd.concat([treated.rename("x"), reference_values.rename("y")], axis=1, join="inner")
                result = paired_test(joined["x"], joined["y"])
                context = {k: v for k, v in fixed.items() if k in varying and k not in ("metric", "eval_length", "kind")}
                records.append({
                    **fixed, axis: value, "axis": axis, "baseline": base[axis], "context": describe(context),
                    "mean": float(joined["x"].mean()), "baseline_mean": float(joined["y"].mean()), **result,
                })
    columns = [*keys, "axis", "baseline", "context", "n", "mean", "baseline_mean", "mean_diff", "t", "p_t",
               "p_wilcoxon", "d_z", "cliffs_delta"]
    out = pd.DataFrame.from_records(records, columns=columns)
    for column in ("p_t", "p_wilcoxon"):
        out.loc[out["n"] < MIN_PAIRS, column] = np.nan  # too few pairs: not a test, not in the family
    out["p_t_holm"] = np.nan
    out["p_wilcoxon_holm"] = np.nan
    groups = [c for c in family if c in out.columns]
    for _, members in (out.groupby(groups, dropna=False, sort=False) if groups else [(None, out)]):
        index = members.index
        out.loc[index, "p_t_holm"] = holm(out.loc[index, "p_t"])
        out.loc[index, "p_wilcoxon_holm"] = holm(out.loc[index, "p_wilcoxon"])
    out["verdict"] = [_verdict(row, df, alpha) for row in out.itertuples(index=False)]
    return out


def _verdict(row: Any, df: pd.DataFrame, alpha: float) -> str:
    if row.n < MIN_PAIRS:
        return f"not enough seeds (n={row.n})"
    if not row.p_t_holm < alpha:
        return "n.s."
    return "better" if (row.mean_diff > 0) == higher_is_better(row.metric, df) else "worse"
