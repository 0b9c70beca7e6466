"""The quality-against-cost section: the decision a user makes, as one figure (a Pareto front).

Quality is the main metric at the longest evaluation length (the extrapolation
result), over the cells that learned the task at the train length; cost is the
measured step time and peak memory of the same models at the longest measured
length. One point per value of the first grid axis, every other axis held at the
one setting where the most values have both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ablate.analysis import stats
from ablate.core.metrics import higher_is_better
from ablate.analysis.plots import metric_label
from ablate.analysis.plots.pareto import quality_cost as quality_cost_figure
from ablate.analysis.report.context import Context, learned_rows
from ablate.analysis.report.document import Image, Paragraph, Section

TITLE = "Quality against cost"
#: Cost metrics drawn against quality, one panel each, in this order.
COSTS = ("time_median_s", "peak_memory_bytes")
#: Measurement modes by preference: a training step's cost is what a training budget pays.
MODES = ("train_step", "forward")


def quality_cost(ctx: Context) -> Section:
    """Quality (y) against time and memory (x), a point per value with its intervals, and the Pareto front."""
    df = ctx.df
    measured = df[df["kind"].eq("measure") & df["metric"].isin(COSTS)] if "kind" in df.columns else df.iloc[:0]
    if ctx.metric is None or not ctx.axes or measured.empty:
        return Section(TITLE, [Paragraph("No quality-against-cost figure: it needs a training metric and cost "
                                         "measurements of the same models ([measure] with_run = true).")])
    axis = ctx.axes[0]
    quality, length = _quality_rows(ctx)
    context = _best_context(quality, measured, axis, ctx.baseline)
    quality = stats.select(quality, context)
    cost, mode, cost_length = _cost_rows(measured, context, axis)
    points = _points(quality, cost, axis)
    costs = [m for m in COSTS if m in points.columns]
    if len(points) < 2 or not costs:
        return Section(TITLE, [Paragraph(f"No quality-against-cost figure: fewer than two {axis} values have both "
                                         "a learned result and a cost measurement.")])
    held = stats.describe(context) if context else "nothing else varies"
    labels = {m: f"{metric_label(m)}, {mode.replace('_', ' ')} at L={cost_length}" for m in costs}
    better = higher_is_better(ctx.metric, df)
    figure = quality_cost_figure(points, axis=axis, quality="quality", costs=costs, higher_is_better=better,
                                 quality_label=f"{metric_label(ctx.metric)} at L={length}", cost_labels=labels,
                                 styles=ctx.styles, title=f"Quality against cost ({held})")
    caption = (f"{metric_label(ctx.metric)} at the longest evaluation length ({length}; mean and 95% CI over seeds, "
               f"{'higher' if better else 'lower'} is better) against the {mode.replace('_', ' ')} cost at "
               f"L={cost_length} (time: median with its interquartile range, or a CI over repeats); {held}. "
               "Dotted: the Pareto front, the values nothing beats on both axes. Cells that did not learn at the "
               "train length, or cannot by construction, are left out.")
    return Section(TITLE, [Image("quality-cost", caption, figure)])


def _quality_rows(ctx: Context) -> tuple[pd.DataFrame, int]:
    """Ok train rows of the main metric at the longest length reached, learned cells only."""
    rows = learned_rows(ctx)
    rows = rows[rows["kind"].eq("train") & rows["metric"].eq(ctx.metric) & rows["status"].eq("ok")]
    if rows.empty:
        return rows, 0
    length = int(rows["eval_length"].max())
    return rows[rows["eval_length"].eq(length)], length


def _best_context(quality: pd.DataFrame, measured: pd.DataFrame, axis: str,
                  baseline: dict[str, Any]) -> dict[str, Any]:
    """The setting of every other varying key where the most ``axis`` values have quality and cost.

    Ties go to the baseline's setting, then to the first seen.
    """
    others = [k for k in stats.cell_keys(quality) if k not in (axis, "metric", "eval_length")
              and quality[k].nunique(dropna=False) > 1]
    if not others or quality.empty:
        return {}
    measured_ok = measured[measured["status"].eq("ok")]
    best: tuple[int, int] = (-1, -1)
    chosen: dict[str, Any] = {}
    for key, _ in quality.groupby(others, sort=False, dropna=False):
        context = dict(zip(others, key if isinstance(key, tuple) else (key,)))
        both = set(stats.select(quality, context)[axis])
        both &= set(stats.select(measured_ok, {k: v for k, v in context.items() if k in measured.columns})[axis])
        score = (len(both), int(all(baseline.get(k) == v for k, v in context.items())))
        if score > best:
            best, chosen = score, context
    return chosen


def _cost_rows(measured: pd.DataFrame, context: dict[str, Any], axis: str) -> tuple[pd.DataFrame, str, int]:
    """Measurements in ``context`` at the preferred mode and the longest length measured for the most values."""
    rows = stats.select(measured, {k: v for k, v in context.items() if k in measured.columns})
    modes = list(pd.unique(rows["measure.mode"].dropna())) if "measure.mode" in rows.columns else []
    mode = next((m for m in MODES if m in modes), modes[0] if modes else "forward")
    if modes:
        rows = rows[rows["measure.mode"].eq(mode)]
    ok = rows[rows["status"].eq("ok")]
    if ok.empty:
        return ok, mode, 0
    # the longest length at which the most values were measured (an out-of-memory point drops one)
    counts = ok.groupby("eval_length")[axis].nunique()
    length = int(max(counts.index, key=lambda n: (counts[n], n)))
    return rows[rows["eval_length"].eq(length)], mode, length


def _points(quality: pd.DataFrame, cost: pd.DataFrame, axis: str) -> pd.DataFrame:
    """One row per ``axis`` value with quality and cost, each with its interval bounds."""
    table = _summary(quality, axis, "quality")
    spread = cost[cost["metric"].eq("time_iqr_s") & cost["status"].eq("ok")].groupby(axis)["value"].median()
    for metric in COSTS:
        rows = cost[cost["metric"].eq(metric)]
        if rows.empty:
            continue
        summary = _summary(rows, axis, metric)
        if metric == "time_median_s":  # one timing: its samples' interquartile range is the interval
            single = summary[f"{metric}_low"].isna()
            iqr = summary[axis].map(spread)
            summary.loc[single, f"{metric}_low"] = summary[metric] - iqr / 2
            summary.loc[single, f"{metric}_high"] = summary[metric] + iqr / 2
        table = table.merge(summary, on=axis, how="inner")
    return table


def _summary(rows: pd.DataFrame, axis: str, name: str) -> pd.DataFrame:
    """Mean and CI per ``axis`` value (one cell each once the other keys are held fixed)."""
    records = []
    for value, group in rows.groupby(axis, sort=False):
        values = pd.to_numeric(group.loc[group["status"].eq("ok"), "value"], errors="coerce").dropna()
        if values.empty:
            continue
        low, high, _ = stats.confidence_interval(values)
        records.append({axis: value, name: float(values.mean()), f"{name}_low": low, f"{name}_high": high})
    frame = pd.DataFrame.from_records(records, columns=[axis, name, f"{name}_low", f"{name}_high"])
    return frame.astype({f"{name}_low": float, f"{name}_high": float}).replace({np.inf: np.nan})
