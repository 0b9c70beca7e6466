"""The report's sections, each a function of the results frame and a shared :class:`Context`.

A section with nothing to show says so in one line (a report that silently lacks
its cost section reads as "cost was fine").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ablate import stats
from ablate.metrics import higher_is_better
from ablate.plots import (
    critical_difference_diagram,
    extrapolation_curves,
    heatmap,
    metric_label,
    seed_strip,
)
import ablate.report.formatting as fmt
from ablate.report.document import Bullets, Image, Paragraph, Section, Table
from ablate.report.context import PREFERRED_METRICS, Context
from ablate.variants.frame import variant_curves

_CI_TEXT = (f"95% confidence interval over seeds: Student-t below {stats.BOOTSTRAP_MIN_N} seeds, "
            "BCa bootstrap (fixed seed) from there on")


# ------------------------------------------------------------------ helpers
def _key_of(row: Mapping[str, Any], keys: list[str]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in keys)


def _display_keys(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    """Key columns worth a table column: those that vary (kind/metric are said in the caption)."""
    return [k for k in keys if k not in ("kind", "metric", "eval_length") and frame[k].nunique(dropna=False) > 1]


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _join(values: Any) -> str:
    return ", ".join(_plain(v) for v in values)


# ------------------------------------------------------------------ sections
def overview(ctx: Context) -> Section:
    """What was run: suite, axes, seeds, runs by status, environment."""
    df = ctx.df
    config = df.attrs.get("suite_config") or {}
    suite = df.attrs.get("suite") or (_join(pd.unique(df["suite"].dropna())) if "suite" in df.columns else "unnamed")
    items = [f"Suite: {suite}" + (f" ({config['description']})" if config.get("description") else "")]
    for axis in ctx.axes:
        values = [f"{_plain(v)} (baseline)" if v == ctx.baseline.get(axis) else _plain(v)
                  for v in pd.unique(df[axis].dropna())]
        items.append(f"Grid axis {axis}: {', '.join(values)}")
    if "seed" in df.columns:
        trained = df[df["kind"].ne("measure")] if "kind" in df.columns else df
        seeds = sorted(trained["seed"].dropna().unique())
        items.append(f"Seeds: {_join(seeds)} ({len(seeds)})")
    for column, label in (("task", "Tasks"), ("train_length", "Train lengths")):
        if column in df.columns:
            items.append(f"{label}: {_join(pd.unique(df[column].dropna()))}")
    runs = df.drop_duplicates("run_id") if "run_id" in df.columns else df
    status = runs["run_status"] if "run_status" in runs.columns else _run_status(df).reindex(runs["run_id"]).values
    runs = runs.assign(_status=status)
    for kind, group in runs.groupby("kind", sort=False) if "kind" in runs.columns else [("all", runs)]:
        counts = ", ".join(f"{n} {s}" for s, n in group["_status"].value_counts(sort=False).items())
        items.append(f"{kind} runs: {len(group)} ({counts})")
    for kind, group in df[df["metric"].notna()].groupby("kind", sort=False) if "kind" in df.columns else []:
        lengths = sorted(group["eval_length"].dropna().unique())
        items.append(f"{kind} metrics: {_join(pd.unique(group['metric']))} at lengths {_join(lengths)}")
    if ctx.metric:
        direction = "higher" if higher_is_better(ctx.metric, df) else "lower"
        items.append(f"Main metric: {ctx.metric} ({direction} is better), headline length {ctx.length}")
    blocks: list[Any] = [Bullets(items)]
    env = [c for c in df.columns if str(c).startswith("env.")]
    if env:
        rows = []
        for column in sorted(env, key=lambda c: (c != "env.git_commit", c)):
            values = list(pd.unique(df[column].dropna()))
            rows.append([column.removeprefix("env."), _join(values) if values else "n/a"])
        blocks.append(Table(["environment", "value(s)"], rows, caption="Recorded environment (all runs)."))
        commits = df["env.git_commit"].dropna().unique() if "env.git_commit" in df.columns else []
        if len(commits) > 1:
            blocks.append(Paragraph(f"Warning: these results mix {len(commits)} git commits."))
    return Section("What was run", blocks)


def _run_status(df: pd.DataFrame) -> pd.Series:
    """A run is ok if any of its rows is ok, else its most common status."""
    def one(status: pd.Series) -> str:
        return "ok" if status.eq("ok").any() else str(status.value_counts().index[0])
    return df.groupby("run_id", sort=False)["status"].agg(one)


def main_results(ctx: Context) -> Section:
    """Headline table with CIs and significance marks, heatmap and per-seed strip plot."""
    if ctx.metric is None:
        return Section("Main results", [Paragraph("No training metrics in these results.")])
    metric, cells = ctx.metric, ctx.cells[ctx.cells["metric"].eq(ctx.metric)]
    keys = stats.cell_keys(ctx.df, ctx.axes)
    shown = _display_keys(cells, keys)
    lookup = {(row["axis"], _key_of(row, keys)): row for row in ctx.comparisons.to_dict("records")}
    versus = [a for a in ctx.axes if (ctx.comparisons["axis"] == a).any()]
    n_tests = int(ctx.comparisons["p_t"].notna().sum())
    columns = [*shown, "length", f"{metric_label(metric)} (mean ± CI)", "95% CI", "n", "CI"]
    columns += [f"vs {_plain(ctx.baseline[a])} ({a})" for a in versus]
    rows = []
    for cell in cells.to_dict("records"):
        row = [_plain(cell[k]) for k in shown] + [_plain(cell["eval_length"])]
        if cell["n"] == 0:
            row += [cell["status"], "n/a", f"0/{cell['n_runs']}", "none"]
        else:
            n = str(cell["n"]) if cell["n"] == cell["n_runs"] else f"{cell['n']}/{cell['n_runs']}"
            row += [fmt.mean_pm(cell["mean"], cell["ci_low"], cell["ci_high"], metric),
                    fmt.interval(cell["ci_low"], cell["ci_high"], metric), n, cell["ci_method"]]
        for axis in versus:
            match = lookup.get((axis, _key_of(cell, keys)))
            row.append("baseline" if cell[axis] == ctx.baseline[axis] else (fmt.verdict(match, metric) if match else "—"))
        rows.append(row)
    numeric = [False] * len(shown) + [True, True, True, True, False] + [False] * len(versus)
    blocks: list[Any] = [
        Paragraph(f"Mean {metric_label(metric)} over seeds ± half-width of the {_CI_TEXT} (CI column). "
                  f"A 'vs' column compares the row with the row holding that axis at its baseline, everything "
                  f"else fixed, paired by seed: ▲ significantly better, ▼ significantly worse, n.s. not significant "
                  f"(paired t-test, Holm-corrected over all {n_tests} tests of {metric}, α = {ctx.alpha}); "
                  f"the number is the mean paired difference. n counts ok seeds (ok/runs when some did not finish)."),
        Table(columns, rows, numeric=numeric),
    ]
    blocks += _main_figures(ctx)
    return Section("Main results", blocks)


def _main_figures(ctx: Context) -> list[Image]:
    metric, images = ctx.metric, []
    if not ctx.axes:
        return images
    tasks = list(pd.unique(ctx.df.loc[ctx.df["metric"].eq(metric), "task"])) if "task" in ctx.df else [None]
    for i, task in enumerate(tasks):
        where = {"task": task} if task is not None and len(tasks) > 1 else None
        suffix = f"-{i}" if len(tasks) > 1 else ""
        on = f" on {task}" if where else ""
        cols = ctx.axes[1] if len(ctx.axes) > 1 else "pooling"
        fig = heatmap(ctx.df, metric, rows=ctx.axes[0], cols=cols, eval_length=ctx.length, where=where,
                      baseline=ctx.baseline, comparisons=ctx.comparisons, alpha=ctx.alpha)
        images.append(Image(f"heatmap{suffix}", f"Mean {metric_label(metric)}{on} at length {ctx.length} "
                            f"± CI half-width; ▲/▼ significantly better/worse than {ctx.axes[0]}="
                            f"{_plain(ctx.baseline[ctx.axes[0]])} in the same column.", fig))
        fig = seed_strip(ctx.df, metric, axis=ctx.axes[0], eval_length=ctx.length, where=where, styles=ctx.styles)
        images.append(Image(f"seeds{suffix}", f"Every seed's {metric_label(metric)}{on} at length {ctx.length}; "
                            "grey lines join the runs of one seed (the pairs the tests compare), black bars are "
                            "mean and 95% CI.", fig))
    return images


def significance(ctx: Context) -> Section:
    """Every paired comparison with raw and Holm-corrected p-values and effect sizes; Friedman/Nemenyi ranks."""
    if ctx.metric is None or ctx.comparisons is None or ctx.comparisons.empty:
        return Section("Significance", [Paragraph("No paired comparisons: no grid axis with a baseline to compare.")])
    metric, comparisons = ctx.metric, ctx.comparisons
    rows = []
    for row in comparisons.to_dict("records"):
        rows.append([row["axis"], f"{_plain(row[row['axis']])} vs {_plain(row['baseline'])}", row["context"],
                     _plain(row["eval_length"]), str(row["n"]), fmt.signed(row["mean_diff"], metric),
                     fmt.pvalue(row["p_t"]), fmt.pvalue(row["p_t_holm"]), fmt.pvalue(row["p_wilcoxon"]),
                     fmt.pvalue(row["p_wilcoxon_holm"]), fmt.number(row["d_z"], 2),
                     fmt.number(row["cliffs_delta"], 2), row["verdict"]])
    columns = ["axis", "comparison", "held fixed", "length", "pairs", "mean diff", "p (t)", "p Holm (t)",
               "p (Wilcoxon)", "p Holm (W)", "d_z", "Cliff's δ", "verdict"]
    blocks: list[Any] = [
        Paragraph(f"Each row pairs runs by seed and compares {metric} of one axis value with the baseline value. "
                  f"Paired t-test (verdict) and Wilcoxon signed-rank test (no normality assumption; with fewer "
                  f"than 6 pairs its p cannot fall below 0.05); Holm-Bonferroni correction over the family of all "
                  f"{int(comparisons['p_t'].notna().sum())} comparisons of {metric}. Effect sizes: Cohen's d_z "
                  f"(mean paired difference / its SD) and Cliff's delta (P(value > baseline) - P(value < "
                  f"baseline) over all run pairs). Fewer than {stats.MIN_PAIRS} pairs: no test."),
        Table(columns, rows, numeric=[False] * 3 + [True] * 9 + [False]),
    ]
    blocks += _ranks(ctx)
    return Section("Significance", blocks)


def _ranks(ctx: Context) -> list[Any]:
    if not ctx.axes:
        return []
    axis = ctx.axes[0]
    result = stats.friedman_nemenyi(ctx.df, ctx.metric, axis=axis, eval_length=ctx.length, alpha=ctx.alpha)
    if len(result.ranks) < 2:
        return [Paragraph(f"No rank analysis of {axis}: {result.note}.")]
    friedman = (f"Friedman χ² = {fmt.number(result.statistic)}, {fmt.p_equals(result.pvalue)}"
                if np.isfinite(result.statistic) else "Friedman test not computable")
    blocks_text = " x ".join(result.blocks) if result.blocks else "one block"
    text = (f"Average rank of each {axis} by {ctx.metric} at length {ctx.length} (1 = best) over N = "
            f"{result.n_blocks} blocks ({blocks_text}), k = {len(result.ranks)}. {friedman}. Nemenyi critical "
            f"difference (α = {result.alpha}) CD = {fmt.number(result.cd)}: two {axis} values whose average ranks "
            f"differ by more than the CD differ significantly (Demsar 2006).")
    if result.note:
        text += f" Note: {result.note}."
    significant = result.pairwise[result.pairwise["significant"]] if len(result.pairwise) else result.pairwise
    pairs = ", ".join(f"{a} > {b}" for a, b in zip(significant["a"], significant["b"])) if len(significant) else "none"
    rows = [[str(name), fmt.number(rank)] for name, rank in result.ranks.items()]
    fig = critical_difference_diagram(ctx.df, ctx.metric, axis=axis, result=result, styles=ctx.styles)
    return [Paragraph(text), Table([axis, "average rank"], rows, numeric=[False, True]),
            Paragraph(f"Significantly different pairs (Nemenyi, better > worse): {pairs}."),
            Image("critical-difference", f"Critical-difference diagram of {axis} by {ctx.metric}: thick bars join "
                  "values not significantly different.", fig)]


def extrapolation(ctx: Context) -> Section:
    """Metric against evaluation length per encoding, and positions training never reached."""
    # Evaluation variants of one trained model (RoPE PI, YaRN, ...) are curves of their own.
    df, axis, styles = variant_curves(ctx.df, ctx.axes[0] if ctx.axes else "encoding", ctx.styles)
    train = df[df["kind"].eq("train")] if "kind" in df.columns else df
    tasks = list(pd.unique(train["task"].dropna())) if "task" in train.columns else [None]
    blocks: list[Any] = []
    for i, task in enumerate(tasks):
        rows = train[train["task"].eq(task)] if task is not None else train
        present = list(pd.unique(rows["metric"].dropna()))
        metric = ctx.metric if ctx.metric in present else next((m for m in PREFERRED_METRICS if m in present), None)
        if metric is None or rows.loc[rows["metric"].eq(metric), "eval_length"].nunique() < 2 or axis not in df:
            continue
        where = {"task": task} if task is not None and len(tasks) > 1 else None
        fig = extrapolation_curves(df, metric, axis=axis, where=where, styles=styles)
        on = f" on {task}" if where else ""
        blocks.append(Image(f"extrapolation-{i}", f"{metric_label(metric)}{on} against evaluation length (log2 "
                            "scale), mean and 95% CI band per "
                            f"{axis}; dashed line: train length; x: no ok result at that length.", fig))
    if not blocks:
        return Section("Length extrapolation", [Paragraph("Not evaluated at more than one length.")])
    notes = train[train["note"].notna()] if "note" in train.columns else train.iloc[:0]
    if len(notes):
        items = [f"{_plain(value)}: {note} (length {_join(sorted(group['eval_length'].unique()))})"
                 for (value, note), group in notes.groupby([axis, "note"], sort=False)]
        blocks += [Paragraph("Parameters that training never reached (results at these lengths rely on them):"),
                   Bullets(items)]
    return Section("Length extrapolation", blocks)


def failures(ctx: Context) -> Section:
    """Every run or point that is not ok, with its reason."""
    df = ctx.df
    bad = df[df["status"].ne("ok")] if "status" in df.columns else df.iloc[:0]
    if bad.empty:
        return Section("Failures, unsupported and OOM runs", [Paragraph("Every run finished ok.")])
    described = [a for a in ctx.axes if a in df.columns] + [c for c in ("measure.mode",) if c in df.columns]
    bad = bad.assign(_config=[stats.describe({c: row[c] for c in described if pd.notna(row[c])})
                              for row in bad.to_dict("records")], _reason=bad["reason"].fillna("n/a"))
    rows = []
    # one line per configuration, status and reason: seeds of the same configuration fail alike
    for (kind, config, status, reason), group in bad.groupby(["kind", "_config", "status", "_reason"], sort=False):
        metrics = group[group["metric"].notna()]
        lengths = _join(sorted(metrics["eval_length"].unique())) if len(metrics) else "(no metrics)"
        seeds = _join(sorted(group["seed"].dropna().unique())) if "seed" in group.columns else "n/a"
        ids = list(pd.unique(group["run_id"])) if "run_id" in group.columns else []
        runs = ", ".join(str(i)[:12] for i in ids) if len(ids) <= 2 else f"{len(ids)} runs"
        rows.append([str(kind), config, status, seeds, lengths, runs, reason])
    counts = ", ".join(f"{n} {s}" for s, n in bad.drop_duplicates(["run_id", "status"])["status"]
                       .value_counts(sort=False).items())
    return Section("Failures, unsupported and OOM runs", [
        Paragraph(f"Runs with a status other than ok ({counts}); lengths lists where it applies."),
        Table(["kind", "configuration", "status", "seeds", "lengths", "runs", "reason"], rows),
    ])
