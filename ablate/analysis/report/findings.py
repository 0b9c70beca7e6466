"""The report's opening: the verdicts, the cells' learn rates, and what more seeds would decide.

* :func:`findings` - every judged comparison of :func:`ablate.analysis.stats.decisions.comparisons`
  (the report's one table of verdicts) as a forest plot and a table, decided first
  and undecided folded below with what would decide them; cells unable by
  construction, named once with the reason and left out of the comparisons; each
  cell's learn rate; the seeds each cell has in the store; the token-embedding
  convention.
* :func:`extrapolation` - the length-extrapolation curves over the seeds that learned.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

import ablate.analysis.report.formatting as fmt
from ablate.analysis.plots.forest import forest_plot, judged, row_label
from ablate.analysis.report.context import Context, dropped_runs, learned_rows
from ablate.analysis.report.document import Image, Paragraph, Section, Table
from ablate.analysis.report.sections import EXTRAPOLATION_TITLE, extrapolation as curves_section
from ablate.analysis.stats.decisions import (DID_NOT_LEARN, LEARN_COLUMNS, NOT_JUDGED, UNABLE_REASON,
                                             cells_needing_seeds)
from ablate.analysis.stats.verdict import LOOK_AHEAD, UNDECIDED

#: Where the statistics are explained at length.
STATISTICS_DOC = "docs/statistics.md"


def convention(df: pd.DataFrame) -> str:
    """One sentence: the input-embedding convention every run of these results used."""
    model = (df.attrs.get("suite_config") or {}).get("model") or {}
    scale = model.get("embedding_scale", "sqrt_d")
    std = model.get("embedding_init_std", 0.02)
    factor = "sqrt(d_model)" if scale == "sqrt_d" else f"{scale}"
    return (f"Token-embedding convention (the same for every encoding): initialised N(0, {std}²), multiplied by "
            f"{factor} before the encoding's embed hook (embedding_scale = {scale!r}).")


def _cell_text(row: Mapping[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys)


def method(table: pd.DataFrame, metric: str, threshold: float | None) -> str:
    """What a verdict means and what its error rate rests on, in one paragraph."""
    attrs = table.attrs
    estimand = "mean" if (table["estimand"] == "mean").any() else "median"
    scale = "ratio" if (table["scale"] == "ratio").all() and len(table) else "difference"
    band = fmt.margin(attrs.get("margin", 0.0), scale, metric)
    learned = (f"A seed learned when its {metric} at the train length reached {threshold:g}; comparisons past the "
               "train length use only the seeds where both cells learned. " if threshold is not None else "")
    return (f"Every comparison of {metric} with the baseline, paired by seed, at every evaluation length: "
            f"{attrs.get('family_size', 0)} judged comparisons at family-wise α = {attrs.get('alpha', 0.05)} "
            f"(Bonferroni, α = {attrs.get('each', 0.05):.2g} each). Better / worse: the treatment wins more paired "
            f"seeds than it loses (an anytime-valid interval for the share of wins, ties aside, excludes 1/2, and "
            f"the {estimand} agrees); under no difference between the cells this happens with probability at most α "
            f"whatever the distribution of outcomes (learn-or-fail, ties, zero spread). Equivalent: the "
            f"anytime-valid interval of the {estimand} {scale} lies within {band}; when the true {estimand} is at "
            f"least the margin away this happens with probability at most α, for any distribution within the "
            f"metric's range. The intervals hold at every number of seeds, so seeds added where undecided cost no "
            f"error rate. {learned}Details: {STATISTICS_DOC}.")


def findings(ctx: Context) -> Section:
    """Verdicts first (forest plot, decided, undecided folded); unable cells; learn rates; seeds per cell."""
    df, metric, threshold, table = ctx.df, ctx.metric, ctx.threshold, ctx.comparisons
    blocks: list[Any] = [Paragraph(convention(df))]
    if metric is None or ctx.cell_status is None:
        return Section("Findings", blocks + [Paragraph("No training metric: nothing to decide.")])
    if table is None:  # the preface's verdicts (a claim's predicates) are this report's only ones
        blocks.append(Paragraph("This report's verdicts are the claim's predicates above; comparisons against a "
                                "baseline are not judged here, so that no comparison carries two verdicts."))
        return Section("Findings", blocks + _learn_rates(ctx.cell_status, metric, threshold))
    blocks.append(Paragraph(method(table, metric, threshold)))
    rows = judged(table)
    if len(rows):
        blocks.append(Image("verdicts", f"Every judged comparison of {metric}: share of paired seeds won with its "
                            "interval (left; decided when it excludes 1/2) and the estimand's interval with the "
                            "margin band (right). Colour: verdict; decided comparisons on top.",
                            forest_plot(table, metric)))
    decided, undecided = rows[rows["verdict"].ne(UNDECIDED)], rows[rows["verdict"].eq(UNDECIDED)]
    blocks.append(_verdict_table(decided, metric, f"Decided: {len(decided)} of {len(rows)} judged comparisons."))
    if len(undecided):
        table_block = _verdict_table(undecided, metric, f"Undecided: {len(undecided)} (what would decide each: "
                                     "further paired seeds, if they look like the ones so far).", needed=True)
        table_block.folded = True
        blocks.append(table_block)
    blocks += _not_judged(table, ctx.cell_status)
    blocks += _learn_rates(ctx.cell_status, metric, threshold)
    blocks += _seeds_account(df, table, ctx.cell_status)
    return Section("Findings", blocks)


def _verdict_table(rows: pd.DataFrame, metric: str, caption: str, *, needed: bool = False) -> Table:
    columns = ["comparison", "verdict", "won / lost / tied", "share won", "estimate [interval]", "margin"]
    columns += ["more seeds needed"] if needed else []
    body = []
    for row in rows.to_dict("records"):
        line = [row_label(pd.Series(row)), row["verdict"], f"{_int(row['wins'])} / {_int(row['losses'])} / "
                f"{_int(row['ties'])}", fmt.share(row["win_low"], row["win_high"]),
                f"{row['estimand']} {fmt.estimate(row, metric)}", fmt.margin(row["margin"], row["scale"], metric)]
        if needed:
            line.append(_needed(row))
        body.append(line)
    numeric = [False, False, True, True, True, True] + ([True] if needed else [])
    return Table(columns, body, caption=caption, numeric=numeric)


def _int(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else str(int(value))


def _needed(row: Mapping[str, Any]) -> str:
    more = row.get("needed")
    if more is None or (isinstance(more, float) and math.isnan(more)):
        return f"none within {LOOK_AHEAD:,} seeds like these"
    return f"about {int(more)}"


def _shown_keys(status: pd.DataFrame) -> list[str]:
    """The cell columns of a learn-status table that tell its rows apart."""
    return [c for c in status.columns if c not in LEARN_COLUMNS and status[c].nunique() > 1]


def _not_judged(table: pd.DataFrame, status: pd.DataFrame) -> list[Any]:
    keys = _shown_keys(status)
    blocks: list[Any] = []
    unable = status[status["unable"].notna()]
    skipped = table[table["verdict"].eq(NOT_JUDGED)]
    by_construction = skipped["why"].str.startswith(UNABLE_REASON) if len(skipped) else pd.Series(dtype=bool)
    structural = int(by_construction.sum())
    if len(unable):
        blocks.append(Table(["cell", "why it cannot solve the task"],
                            [[_cell_text(r, keys), str(r["unable"])] for r in unable.to_dict("records")],
                            caption=f"Unable by construction (proved by invariance tests, not a learning failure): "
                                    f"the {structural} comparisons involving these cells are not judged and not in "
                                    "the family, since their outcome is known before any run."))
    other = len(skipped) - structural
    if other:
        reasons = ", ".join(f"{n} because {why}" for why, n in
                            skipped[~by_construction]["why"].value_counts().items())
        blocks.append(Paragraph(f"Not judged ({other}, still counted in the family): {reasons}."))
    return blocks


def _learn_rates(status: pd.DataFrame, metric: str, threshold: float | None) -> list[Any]:
    if threshold is None or status.empty:
        return []
    learnable = status[status["unable"].isna()]
    keys = _shown_keys(status)
    rows = [[_cell_text(r, keys), f"{int(r['learned'])} of {int(r['seeds'])}",
             fmt.share(r["rate_low"], r["rate_high"]), r["status"]]
            for r in learnable.to_dict("records")]
    failed = int(learnable["status"].eq(DID_NOT_LEARN).sum())
    return [Table(["cell", "seeds that learned", "learn rate (interval)", "status"], rows, numeric=[False, True, True,
                  False], caption=f"Learning at the train length: a seed learned when its {metric} reached "
                  f"{threshold:g}. 'did not learn': most seeds fail, decided (the interval lies below 1/2); "
                  f"'learns': the interval lies above 1/2; 'open': more seeds would tell. {failed} cell(s) did not "
                  "learn; their longer-length numbers are not extrapolation results.")]


def _seeds_account(df: pd.DataFrame, table: pd.DataFrame, status: pd.DataFrame) -> list[Any]:
    seeds = (df.attrs.get("suite_config") or {}).get("seeds")
    if not isinstance(seeds, Mapping) or status.empty:
        return []
    cap = int(seeds.get("max", 0))
    keys = [c for c in status.columns if c not in LEARN_COLUMNS]
    shown = [k for k in keys if status[k].nunique() > 1]
    needing = cells_needing_seeds(table, status)
    open_cells = {tuple(str(r[k]) for k in keys): r for r in needing.to_dict("records")}
    rows = []
    for row in status.to_dict("records"):
        entry = open_cells.get(tuple(str(row[k]) for k in keys))
        if entry is None:
            why = "nothing left that more seeds would decide"
        else:
            parts = ([f"{entry['open_comparisons']} undecided comparison(s)"] if entry["open_comparisons"] else []) \
                + (["learn rate open"] if entry["learn_open"] else [])
            why = ("at the cap: " if int(row["seeds"]) >= cap else "open: ") + ", ".join(parts)
        rows.append([_cell_text(row, shown), str(int(row["seeds"])), why])
    spent = int(status["seeds"].sum())
    return [Table(["cell", "seeds in the store", "more seeds?"], rows,
                  caption=f"Adaptive seeds, read from the store: {spent} training runs, against "
                          f"{len(status) * cap} for a fixed design at the maximum of {cap} seeds per cell.")]


def extrapolation(ctx: Context) -> Section:
    """The length-extrapolation section over the seeds that learned the task at the train length."""
    dropped = dropped_runs(ctx)
    if not dropped:
        return curves_section(ctx)
    trained = ctx.df.loc[ctx.df["kind"].eq("train"), "run_id"].nunique()
    if len(dropped) >= trained:
        return Section(EXTRAPOLATION_TITLE, [Paragraph(
            "No seed learned the task at the train length (see Findings), so no length-extrapolation result "
            "is shown: numbers past the train length of a model that never learned the task say nothing "
            "about positions.")])
    section = curves_section(dataclasses.replace(ctx, df=learned_rows(ctx)))
    section.blocks.insert(0, Paragraph(
        f"These curves use the {trained - len(dropped)} training runs that learned the task at the train length; "
        f"{len(dropped)} run(s) that did not learn, or whose cell cannot by construction, are left out: their "
        "longer-length numbers are not extrapolation results."))
    return section
