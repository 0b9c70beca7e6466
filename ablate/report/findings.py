"""The report's opening: what is decided, what is not (and what it would take).

* :func:`findings` - the sequential verdicts of :mod:`ablate.stats.decisions`:
  better / worse / equivalent within the margin, undecided with a rough count of
  further seeds, cells unable by construction (with the reason), cells that did
  not learn at the train length, the model's token-embedding convention, and the
  seeds each cell took under adaptive seeds.
"""

from __future__ import annotations

import dataclasses

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

import ablate.report.formatting as fmt
from ablate.report.context import Context, excluded_cells, learned_rows, report_settings
from ablate.report.sections import extrapolation as curves_section
from ablate.report.document import Bullets, Paragraph, Section, Table
from ablate.stats.decisions import NOT_JUDGED, sequential_comparisons
from ablate.stats.sequential import BETTER, EQUIVALENT, UNDECIDED, WORSE


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


def findings(ctx: Context) -> Section:
    """Decided and undecided comparisons first; unable and unlearned cells; seeds per cell."""
    df, metric, threshold = ctx.df, ctx.metric, ctx.threshold
    blocks: list[Any] = [Paragraph(convention(df))]
    if metric is None or ctx.cell_status is None:
        return Section("Findings", blocks + [Paragraph("No training metric: nothing to decide.")])
    settings = report_settings(df)
    table = sequential_comparisons(df, metric, baseline=ctx.baseline, alpha=settings["alpha"],
                                   margin=settings["margin"], threshold=threshold, spending=settings["spending"],
                                   status=ctx.cell_status)
    attrs = table.attrs
    blocks.append(Paragraph(
        f"Every comparison of {metric} against the baseline at every evaluation length, paired by seed, in a "
        f"group-sequential design with looks at {', '.join(map(str, attrs.get('looks', ())))} seeds "
        f"({settings['spending']} alpha spending); family-wise α = {settings['alpha']} (Bonferroni over "
        f"{attrs.get('family_size', 0)} comparisons). Decided when the repeated confidence interval of the mean "
        f"paired difference excludes 0 (better / worse) or lies within ±{settings['margin']} (equivalent)."))
    for verdict, title in ((BETTER, "Decided: better than the baseline"), (WORSE, "Decided: worse than the baseline"),
                           (EQUIVALENT, f"Decided: equivalent within ±{settings['margin']}")):
        rows = table[table["verdict"].eq(verdict)]
        items = [_comparison(r, metric) for r in rows.to_dict("records")]
        blocks.append(Paragraph(f"{title} ({len(items)}):"))
        if items:
            blocks.append(Bullets(items))
    open_rows = table[table["verdict"].eq(UNDECIDED)]
    blocks.append(Paragraph(f"Undecided ({len(open_rows)}):"))
    if len(open_rows):
        blocks.append(Bullets([_comparison(r, metric) + _more(r) for r in open_rows.to_dict("records")]))
    skipped = table[table["verdict"].eq(NOT_JUDGED)]
    if len(skipped):
        blocks.append(Paragraph(f"Not judged ({len(skipped)}): comparisons past the train length where a cell did "
                                "not learn at the train length or cannot by construction, and comparisons of two "
                                "cells that both failed to learn."))
    blocks += _cells(ctx.cell_status, metric, threshold)
    blocks += _seeds_account(df)
    return Section("Findings", blocks)


def _comparison(row: Mapping[str, Any], metric: str) -> str:
    axis = row["axis"]
    where = f" ({row['context']})" if row.get("context") else ""
    interval = "" if not math.isfinite(row["low"]) else f" [{fmt.signed(row['low'], metric)}, {fmt.signed(row['high'], metric)}]"
    return (f"{axis}={row[axis]} vs {row['baseline']}{where} at L={row['eval_length']}: "
            f"{fmt.signed(row['mean_diff'], metric)}{interval} (better is +), n={row['n']}")


def _more(row: Mapping[str, Any]) -> str:
    more = row.get("more_needed")
    if more is None or (isinstance(more, float) and math.isnan(more)):
        return "; no estimate of the seeds needed (no difference and no spread yet)"
    return f"; roughly {int(more)} more seeds at the current mean and spread"


def _cells(status: pd.DataFrame, metric: str, threshold: float | None) -> list[Any]:
    if status.empty:
        return []
    keys = [c for c in status.columns if c not in ("train_mean", "learned", "unable") and status[c].nunique() > 1]
    unable = status[status["unable"].notna()]
    unlearned = status[status["unable"].isna() & ~status["learned"]]
    blocks: list[Any] = []
    if len(unable):
        blocks += [Paragraph("Unable by construction (not a learning failure; pinned by invariance tests):"),
                   Bullets([f"{_cell_text(r, keys)}: {r['unable']}" for r in unable.to_dict("records")])]
    criterion = f"at least {threshold}" if threshold is not None else "at the threshold"
    if len(unlearned):
        blocks += [Paragraph(f"Did not learn the task at the train length ({metric} below {threshold}); their "
                             "longer-length numbers are not extrapolation results:"),
                   Bullets([f"{_cell_text(r, keys)}: {fmt.number(r['train_mean'], 3)}"
                            for r in unlearned.to_dict("records")])]
    elif threshold is not None:
        blocks.append(Paragraph(f"Every other cell learned the task at the train length (mean {metric} "
                                f"{criterion} over its seeds)."))
    return blocks


def _seeds_account(df: pd.DataFrame) -> list[Any]:
    account = df.attrs.get("adaptive") or {}
    if not account:
        return []
    rows = [[cell, str(entry["seeds"]), entry["stop"]] for cell, entry in account.items()]
    spent = sum(int(entry["seeds"]) for entry in account.values())
    seeds = (df.attrs.get("suite_config") or {}).get("seeds") or {}
    fixed = len(account) * int(seeds.get("max", 0)) if isinstance(seeds, Mapping) else spent
    return [Table(["cell", "seeds", "why it stopped"], rows,
                  caption=f"Adaptive seeds: {spent} training runs, against {fixed} for a fixed design at the "
                          "maximum number of seeds.")]


def extrapolation(ctx: Any) -> Section:
    """The length-extrapolation section over cells that learned the task at the train length only."""
    df, metric, status = ctx.df, ctx.metric, ctx.cell_status
    if metric is None or status is None or "kind" not in df.columns:
        return curves_section(ctx)
    excluded, keys = excluded_cells(ctx)
    if excluded.empty or not keys:
        return curves_section(ctx)
    if len(excluded) == len(status):
        return Section(curves_section(ctx).title, [Paragraph(
            "No cell learned the task at the train length (see Findings), so no length-extrapolation result "
            "is shown: numbers past the train length of a model that never learned the task say nothing "
            "about positions.")])
    section = curves_section(dataclasses.replace(ctx, df=learned_rows(ctx)))
    section.blocks.insert(0, Paragraph(
        f"{len(excluded)} cell(s) are left out of these curves because they did not learn the task at the train "
        "length or cannot by construction (see Findings): their longer-length numbers are not extrapolation results."))
    return section
