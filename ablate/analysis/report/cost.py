"""The report's cost section: each model's cost as a ratio to its baseline, with its interval and one verdict.

Cost is measured in interleaved rounds (:mod:`ablate.measure.group`): round ``i`` of a
model and round ``i`` of its baseline (the model that differs in the compared axis
alone, set to its baseline value) were measured moments apart in the same session.
A ratio here is the *median paired ratio* over those rounds, its interval the
anytime-valid confidence sequence of that median, and its verdict
:func:`ablate.analysis.stats.verdict.judge`'s with ``by="interval"``: worse or better only
when the whole interval lies beyond the metric's margin, equivalent when it lies
inside it, undecided otherwise. A family is the comparisons of one metric at one
length and measure point (one session's), each at ``alpha / m`` (Bonferroni).

Results stored without rounds (older ones) pair by repeat (``seed``) instead, and
say so. Time per call is judged, not tokens/s: it is the same measurement, and one
comparison gets one verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

import ablate.analysis.report.formatting as fmt
from ablate.analysis import stats
from ablate.results.rounds_table import paired
from ablate.core.metrics import METRICS
from ablate.analysis.plots import cost_curves, metric_label
from ablate.analysis.report.context import Context
from ablate.analysis.report.document import Image, Paragraph, Section, Table
from ablate.analysis.stats.verdict import BETTER, EQUIVALENT, WORSE, judge, margin_of

#: Cost metrics of measurement runs, in the order the section shows them.
COST_METRICS = ("tokens_per_s", "time_median_s", "instructions", "peak_memory_bytes", "peak_reserved_bytes")
#: The costs that get a ratio and a verdict (tokens/s is time's reciprocal).
JUDGED = ("time_median_s", "instructions", "peak_memory_bytes", "peak_reserved_bytes")
MARKS = {WORSE: "▼ worse", BETTER: "▲ better", EQUIVALENT: "≈ same", "undecided": "? undecided"}
#: Columns of :func:`cost_verdicts` after the cell keys.
VERDICT_COLUMNS = ["metric", "eval_length", "baseline", "n", "estimate", "low", "high", "verdict", "margin",
                   "paired_by", "family"]


def suite_margins(df: pd.DataFrame) -> dict[str, float]:
    """The suite's ``[report] margins`` (metric -> margin), if it has any."""
    report = ((df.attrs.get("suite_config") or {}).get("report") or {})
    return dict(report.get("margins") or {})


def cost_verdicts(df: pd.DataFrame, rounds: pd.DataFrame | None, *, axis: str, baseline: Mapping[str, Any],
                  alpha: float = 0.05, margins: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Each measured model against the model at ``baseline[axis]`` (everything else equal), per cost and length.

    Args:
        df: the tidy results frame (measurement rows are used).
        rounds: :func:`ablate.results.rounds_table.load_rounds` of the same results (``None``: pair by seed).
        axis: the compared grid axis (a frame column, e.g. ``encoding``).
        baseline: ``{axis: value}``; ``baseline[axis]`` is the reference.
        alpha: error rate of a family (one metric, length and measure point) of comparisons.
        margins: metric -> margin overrides (default: each metric's own).

    Returns:
        The cell key columns and :data:`VERDICT_COLUMNS`: ``estimate``, ``low``, ``high`` are ratios
        (treatment / baseline), ``paired_by`` is ``rounds`` or ``seeds``, ``family`` its size.
    """
    rows = df[df["metric"].isin(JUDGED)]
    if rows.empty or axis not in rows.columns or axis not in baseline:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    keys = [k for k in stats.cell_keys(rows, stats.grid_axes(df)) if k not in ("metric", "eval_length", "kind")]
    ok = stats.ok_rows(rows)
    reference = str(baseline[axis])
    runs = {(*_key(row, keys), row["metric"], row["eval_length"]): {} for row in ok.to_dict("records")}
    for row in ok.to_dict("records"):
        runs[(*_key(row, keys), row["metric"], row["eval_length"])][row.get("seed", 0)] = (row["run_id"], row["value"])
    by_run = dict(iter(rounds.groupby(["run_id", "metric", "eval_length"]))) if rounds is not None and len(rounds) \
        else {}
    where = keys.index(axis)
    records = []
    for cell, seeds in runs.items():
        if cell[where] == reference:
            continue
        partner = runs.get((*cell[:where], reference, *cell[where + 1:]))
        if partner is None:
            continue
        t, b, by = _pairs(seeds, partner, by_run, cell[-2], cell[-1])
        records.append({**dict(zip(keys, cell[:-2])), "metric": cell[-2], "eval_length": cell[-1],
                        "baseline": reference, "_t": t, "_b": b, "paired_by": by})
    if not records:
        return pd.DataFrame(columns=[*keys, *VERDICT_COLUMNS])
    out = pd.DataFrame.from_records(records)
    family_keys = ["metric", "eval_length", *[k for k in keys if str(k).startswith("measure.")]]
    out["family"] = out.groupby(family_keys, dropna=False)["metric"].transform("size")
    judged = [_judge(r, alpha, margins) for r in out.to_dict("records")]
    out = out.drop(columns=["_t", "_b"]).assign(**{k: [j[k] for j in judged] for k in judged[0]})
    return out[[*keys, *VERDICT_COLUMNS]]


def _key(row: Mapping[str, Any], keys: list[str]) -> tuple[Any, ...]:
    return tuple(str(row[k]) if k != "eval_length" else row[k] for k in keys)


def _pairs(seeds: dict[Any, tuple[str, float]], partner: dict[Any, tuple[str, float]],
           by_run: Mapping[tuple[str, str, int], pd.DataFrame], metric: str, length: int
           ) -> tuple[list[float], list[float], str]:
    """Paired values: by round within each repeat's session where rounds were stored, else by repeat."""
    t_all, b_all, by = [], [], "rounds"
    for seed in sorted(set(seeds) & set(partner), key=str):
        (run, value), (base_run, base_value) = seeds[seed], partner[seed]
        mine, theirs = by_run.get((run, metric, length)), by_run.get((base_run, metric, length))
        if mine is None or theirs is None:
            t_all.append(value)
            b_all.append(base_value)
            by = "seeds"
            continue
        t, b = paired(mine, theirs)
        t_all += t
        b_all += b
    return t_all, b_all, by


def _judge(record: Mapping[str, Any], alpha: float, margins: Mapping[str, float] | None) -> dict[str, Any]:
    metric = record["metric"]
    margin = margin_of(metric, dict(margins or {}))
    verdict = judge(record["_t"], record["_b"], metric=metric, alpha=alpha / record["family"], margin=margin,
                    by="interval")
    return {"n": verdict.n, "estimate": verdict.estimate, "low": verdict.low, "high": verdict.high,
            "verdict": verdict.verdict, "margin": margin}


def ratio_text(row: Mapping[str, Any], *, verdict: bool = True) -> str:
    """``1.31× [1.22, 1.40] ▼ worse``: a ratio, its interval and (``verdict``) its verdict."""
    if not row["n"] or not math.isfinite(row["estimate"]):
        return "n/a"
    bounds = (f"[{row['low']:.2f}, {row['high']:.2f}]" if row["low"] > 0 and math.isfinite(row["high"])
              else "[not yet bounded]")
    return f"{row['estimate']:.2f}× {bounds}" + (f" {MARKS[row['verdict']]}" if verdict else "")


# ------------------------------------------------------------------ the section
def cost(ctx: Context, rounds: pd.DataFrame | None = None) -> Section:
    """Cost ratios to the baseline with intervals and verdicts, scaling exponents, cost curves."""
    df = ctx.df
    present = [m for m in COST_METRICS if df["metric"].eq(m).any()]
    if not present or not ctx.axes:
        return Section("Cost", [Paragraph("No cost measurements in these results.")])
    axis = ctx.axes[0]
    verdicts = cost_verdicts(df, rounds, axis=axis, baseline=ctx.baseline, alpha=ctx.alpha, margins=suite_margins(df))
    blocks: list[Any] = [Paragraph(
        f"Each model's cost relative to the model with {axis} = {_plain(ctx.baseline[axis])} and everything else "
        "equal, at the same length: the median paired ratio over interleaved rounds (each round measured every "
        "model once, in a shuffled order; round i of a model is paired with round i of its baseline), with its "
        f"anytime-valid confidence sequence at α = {ctx.alpha} per family (one metric, length and measure point; "
        "Bonferroni). "
        + ("▼ worse / ▲ better: the whole interval lies beyond the metric's margin; ≈ same: it lies inside the "
           "margin; ? undecided: neither (more rounds, or a quieter machine, would decide). Time is judged per "
           "call; tokens/s is the same measurement and gets no verdict of its own." if ctx.verdicts else
           "No verdict here: this report's verdicts are the claim's predicates."))]
    for metric in [m for m in JUDGED if m in present]:
        blocks.append(_ratio_table(ctx, verdicts[verdicts["metric"].eq(metric)], metric, axis))
    rows_all, fixed = stats.hold_fixed(df[df["metric"].isin(present)],
                                       [axis, *[c for c in df.columns if str(c).startswith("measure.")]],
                                       reference=df, baseline=ctx.baseline)
    blocks.append(_exponent_table(ctx, rows_all, present, axis))
    modes = list(pd.unique(rows_all["measure.mode"].dropna())) if "measure.mode" in rows_all.columns else [None]
    plotted = [m for m in ("tokens_per_s", "instructions", "peak_memory_bytes") if m in present] or present[:1]
    for i, mode in enumerate(modes or [None]):
        where = {**fixed, **({"measure.mode": mode} if mode is not None else {})}
        fig = cost_curves(df, plotted[:2], axis=axis, where=where, styles=ctx.styles)
        blocks.append(Image(f"cost-{i}", f"Cost against sequence length{f' ({mode})' if mode else ''}, log-log; "
                            "legend: fitted exponent; X: out of memory; x: unsupported or failed.", fig))
    return Section("Cost", blocks)


def _ratio_table(ctx: Context, verdicts: pd.DataFrame, metric: str, axis: str) -> Table:
    rows = ctx.df[ctx.df["metric"].eq(metric)]
    keys = [k for k in stats.cell_keys(rows, ctx.axes) if k not in ("eval_length", "metric", "kind")]
    shown = [k for k in keys if rows[k].nunique(dropna=False) > 1] or [axis]
    lengths = sorted(rows["eval_length"].dropna().unique())
    table: dict[tuple[str, ...], list[str]] = {}
    for cell in stats.summarize(rows).to_dict("records"):
        entry = table.setdefault(_key(cell, shown), [_plain(cell[k]) for k in shown] + ["n/a"] * len(lengths))
        text = "baseline" if str(cell[axis]) == str(ctx.baseline[axis]) else "no baseline measured"
        entry[len(shown) + lengths.index(cell["eval_length"])] = cell["status"] if cell["n"] == 0 else text
    for row in verdicts.to_dict("records"):
        if _key(row, shown) in table:
            table[_key(row, shown)][len(shown) + lengths.index(row["eval_length"])] = ratio_text(
                row, verdict=ctx.verdicts)
    margin = verdicts["margin"].iloc[0] if len(verdicts) else margin_of(metric, suite_margins(ctx.df))
    by = ", ".join(sorted(set(verdicts["paired_by"]))) if len(verdicts) else "rounds"
    label = METRICS[metric].label if metric in METRICS else metric
    return Table([*shown, *(f"L={_plain(n)}" for n in lengths)], list(table.values()),
                 caption=f"{label} relative to {axis} = {_plain(ctx.baseline[axis])}: median paired ratio "
                         f"[confidence sequence], paired by {by}; margin ±{100 * margin:g}% (below 1× is better).",
                 numeric=[False] * len(shown) + [True] * len(lengths))


def _exponent_table(ctx: Context, rows: pd.DataFrame, metrics: list[str], axis: str) -> Table:
    fits = {m: stats.scaling_exponents(rows, m, by=None) for m in metrics}
    keys = [k for k in stats.cell_keys(ctx.df, ctx.axes) if k not in ("eval_length", "metric")]
    shown = [k for k in keys if k not in ("kind",) and rows[k].nunique(dropna=False) > 1] or [axis]
    table: dict[tuple[str, ...], list[str]] = {}
    for metric, fit in fits.items():
        for row in fit.to_dict("records"):
            entry = table.setdefault(_key(row, shown), [_plain(row[k]) for k in shown] + ["n/a"] * len(metrics))
            text = fmt.number(row["exponent"], 3)
            if np.isfinite(row["ci_low"]):
                text += f" [{fmt.number(row['ci_low'], 3)}, {fmt.number(row['ci_high'], 3)}]"
            entry[len(shown) + metrics.index(metric)] = text
    columns = [*shown, *(f"{metric_label(m)}: exponent" for m in metrics)]
    caption = ("Exponent b of a least-squares fit value ∝ length^b on log-log axes over every ok measurement, with "
               "its 95% t-interval (b ≈ 1: linear, b ≈ 2: quadratic; throughput falls as b < 0).")
    return Table(columns, list(table.values()), caption=caption, numeric=[False] * len(shown) + [True] * len(metrics))


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
