"""The report's sections, each a function of the results frame and a shared :class:`Context`.

A section with nothing to show says so in one line (a report that silently lacks
its cost section reads as "cost was fine").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ablate.core import fingerprint
from ablate.analysis import stats
from ablate.core.metrics import higher_is_better
from ablate.analysis.plots import (
    critical_difference_diagram,
    extrapolation_curves,
    heatmap,
    metric_label,
    seed_strip,
)
import ablate.analysis.report.formatting as fmt
from ablate.analysis.report.document import Bullets, Image, Paragraph, Section, Table
from ablate.analysis.report.context import PREFERRED_METRICS, Context
from ablate.analysis.report.variant_curves import variant_curves

#: Blocks (seeds x tasks x other axes) a critical-difference diagram needs before it is drawn: Demšar
#: (2006) advises N > 10 for the Friedman chi-square approximation the diagram rests on.
MIN_CD_BLOCKS = 10
#: A run's bookkeeping rows, not evaluations: their notes say why training stopped.
BOOKKEEPING = ("steps_used", "criterion_met")
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
    items.append(fingerprint.describe(df))
    shared = _not_held_out(df)
    if shared:
        items.append(shared)
    items.append(_devices(df))
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


def _not_held_out(df: pd.DataFrame) -> str | None:
    """One line naming the (task, length) pairs whose validation/test data were not held out, or None."""
    if "metric" not in df.columns:
        return None
    rows = df[df["metric"].eq("held_out") & df["value"].eq(0.0)]
    if rows.empty:
        return None
    task = rows["task"] if "task" in rows.columns else pd.Series("task", index=rows.index)
    places = rows.assign(_task=task).drop_duplicates(["_task", "eval_length"]).sort_values(["_task", "eval_length"])
    return "Not held out (too few distinct inputs; validation and test drawn from the training sequences): " + \
        "; ".join(f"{t} at length {_plain(n)} ({str(note).removeprefix('not held out: ')})" for t, n, note in
                  zip(places["_task"], places["eval_length"], places["note"]))


def _devices(df: pd.DataFrame) -> str:
    """``Device: cuda:0 (NVIDIA H100 ...)``: where the runs ran, as each recorded it (``auto`` resolved)."""
    columns = [c for c in ("env.device", "env.device_name") if c in df.columns]
    if not columns:
        return "Device: not recorded (results stored before devices were)"
    pairs = df[columns].dropna(how="all").drop_duplicates().astype(str).to_numpy().tolist()
    named = [f"{pair[0]} ({pair[1]})" if len(pair) > 1 and pair[1] != pair[0] else pair[0] for pair in pairs]
    return f"Device{'s' if len(named) > 1 else ''}: {', '.join(named) or 'not recorded'}"


def _run_status(df: pd.DataFrame) -> pd.Series:
    """A run is ok if any of its rows is ok, else its most common status."""
    def one(status: pd.Series) -> str:
        return "ok" if status.eq("ok").any() else str(status.value_counts().index[0])
    return df.groupby("run_id", sort=False)["status"].agg(one)


def main_results(ctx: Context) -> Section:
    """Headline table with CIs and each row's verdict against the baseline, heatmap and per-seed strip plot."""
    if ctx.metric is None:
        return Section("Main results", [Paragraph("No training metrics in these results.")])
    metric, cells = ctx.metric, ctx.cells[ctx.cells["metric"].eq(ctx.metric)]
    keys = stats.cell_keys(ctx.df, ctx.axes)
    shown = _display_keys(cells, keys)
    table = ctx.comparisons if ctx.comparisons is not None else pd.DataFrame(columns=["axis"])
    matched = [k for k in keys if k in table.columns]
    lookup = {(row["axis"], _key_of(row, matched)): row for row in table.to_dict("records")}
    versus = [a for a in ctx.axes if (table["axis"] == a).any()]
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
            match = lookup.get((axis, _key_of(cell, matched)))
            row.append("baseline" if cell[axis] == ctx.baseline[axis] else (fmt.verdict(match, metric) if match else "—"))
        rows.append(row)
    numeric = [False] * len(shown) + [True, True, True, True, False] + [False] * len(versus)
    blocks: list[Any] = [
        Paragraph(f"Mean {metric_label(metric)} over seeds ± half-width of the {_CI_TEXT} (CI column; a "
                  f"description of the seeds, kept inside the metric's range). "
                  + ("A 'vs' column gives the row's verdict against the row holding that axis at its baseline, "
                     "everything else fixed: the same verdict as in Findings (▲ better, ▼ worse), with the "
                     "comparison's estimate. " if versus else "")
                  + "n counts ok seeds (ok/runs when some did not finish)."),
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
                      baseline=ctx.baseline, comparisons=ctx.comparisons, marks=ctx.comparisons is not None)
        images.append(Image(f"heatmap{suffix}", f"Mean {metric_label(metric)}{on} at length {ctx.length} "
                            "± CI half-width" + (f"; ▲/▼: the Findings' verdict better/worse than {ctx.axes[0]}="
                            f"{_plain(ctx.baseline[ctx.axes[0]])} in the same column." if ctx.comparisons is not None
                                                  else "."), fig))
        fig = seed_strip(ctx.df, metric, axis=ctx.axes[0], eval_length=ctx.length, where=where, styles=ctx.styles)
        images.append(Image(f"seeds{suffix}", f"Every seed's {metric_label(metric)}{on} at length {ctx.length}; "
                            "grey lines join the runs of one seed (the pairs the verdicts compare), black bars are "
                            "mean and 95% CI.", fig))
    return images


def significance(ctx: Context) -> Section:
    """Every comparison with its verdict and, as descriptions beside it, effect sizes and a Wilcoxon p."""
    table = ctx.comparisons
    if ctx.metric is not None and table is None:
        return Section("Significance", [Paragraph("No comparison is judged in this report (its verdicts are the "
                                                  "claim's predicates).")] + _ranks(ctx))
    if ctx.metric is None or table is None or table.empty:
        return Section("Significance", [Paragraph("No paired comparisons: no grid axis with a baseline to compare.")])
    metric = ctx.metric
    rows = []
    for row in table.to_dict("records"):
        rows.append([row["axis"], f"{_plain(row[row['axis']])} vs {_plain(row['baseline'])}", row["context"],
                     _plain(row["eval_length"]), str(row["n"]), row["verdict"],
                     fmt.estimate(row, metric) if row["verdict"] != "not judged" else (row["why"] or ""),
                     fmt.pvalue(row["p_wilcoxon"]), fmt.number(row["d_z"], 2), fmt.number(row["cliffs_delta"], 2)])
    columns = ["axis", "comparison", "held fixed", "length", "pairs", "verdict", "estimate [interval] / why",
               "p (Wilcoxon, description)", "d_z", "Cliff's δ"]
    blocks: list[Any] = [
        Paragraph(f"Every comparison of {metric} with its one verdict (as in Findings) and, as descriptions only, "
                  f"the Wilcoxon signed-rank p (uncorrected, not a decision), Cohen's d_z (mean paired difference / "
                  f"its SD) and Cliff's delta (P(value > baseline) - P(value < baseline) over all run pairs)."),
        Table(columns, rows, numeric=[False] * 3 + [True, True, False, True, True, True, True]),
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
    blocks = [Paragraph(text), Table([axis, "average rank"], rows, numeric=[False, True]),
              Paragraph(f"Significantly different pairs (Nemenyi, better > worse): {pairs}.")]
    if result.n_blocks < MIN_CD_BLOCKS:
        return blocks + [Paragraph(
            f"No critical-difference diagram: it would rest on N = {result.n_blocks} blocks, and is drawn only from "
            f"N = {MIN_CD_BLOCKS} on (below that the Friedman and Nemenyi approximations it draws are unreliable, "
            "Demšar 2006); the paired comparisons above are the verdicts.")]
    fig = critical_difference_diagram(ctx.df, ctx.metric, axis=axis, result=result, styles=ctx.styles)
    return blocks + [Image("critical-difference", f"Critical-difference diagram of {axis} by {ctx.metric} over "
                           f"N = {result.n_blocks} blocks: thick bars join values not significantly different.", fig)]


#: The title of the length-extrapolation section, whichever runs it shows.
EXTRAPOLATION_TITLE = "Length extrapolation"


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
        return Section(EXTRAPOLATION_TITLE, [Paragraph("Not evaluated at more than one length.")])
    blocks += _untrained(train, axis)
    return Section(EXTRAPOLATION_TITLE, blocks)


def _untrained(train: pd.DataFrame, axis: str) -> list[Any]:
    """What an encoding says it used past the train length that training never reached (its ``untrained_note``).

    Only rows of evaluation metrics past the train length carry such a note; a run's
    bookkeeping rows (``criterion_met``: why training stopped) carry other notes.
    """
    if "note" not in train.columns or axis not in train.columns:
        return []
    evaluated = train["metric"].isin([m for m in pd.unique(train["metric"].dropna()) if m not in BOOKKEEPING])
    past = train["eval_length"] > train["train_length"] if "train_length" in train.columns else True
    notes = train[evaluated & past & train["note"].notna()]
    if notes.empty:
        return []
    items = [f"{_plain(value)} at length {_join(sorted(group['eval_length'].unique()))}: {note}"
             for (value, note), group in notes.groupby([axis, "note"], sort=False)]
    return [Paragraph("Parameters that training never reached (results at these lengths rely on them):"),
            Bullets(items)]


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
