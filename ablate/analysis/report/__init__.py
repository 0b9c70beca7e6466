"""The ablation report: statistics and figures of a results frame as HTML and Markdown.

``write_report`` is a pure function of the frame (no clock, no host lookups), so
the same results give byte-identical Markdown, figures and HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

import ablate.analysis.report.by_position as by_position
import ablate.analysis.report.context as context
import ablate.analysis.report.cost as cost
import ablate.analysis.report.findings as findings
import ablate.analysis.report.learning as learning
import ablate.analysis.report.sections as sections
import ablate.analysis.report.tradeoffs as tradeoffs
from ablate.analysis.report.compare import compare_results, write_comparison
from ablate.analysis.report.document import Section, render
from ablate.analysis.report.tables import write_tables


def write_report(
    df: pd.DataFrame,
    out_dir: str | Path,
    *,
    title: str | None = None,
    main_metric: str | None = None,
    baseline: Mapping[str, Any] | None = None,
    alpha: float | None = None,
    curves: pd.DataFrame | None = None,
    positions: pd.DataFrame | None = None,
    rounds: pd.DataFrame | None = None,
    preface: Section | None = None,
    verdicts: bool = True,
) -> dict[str, Path]:
    """Write ``report.html`` (self-contained), ``report.md``, ``figures/*.png`` and the tables as CSV into ``out_dir``.

    Args:
        df: the tidy results frame (:func:`ablate.results.store.load_results`).
        out_dir: output folder, created if needed.
        title: report title; default ``"Ablation report: <suite>"``.
        main_metric: headline metric; default the suite's ``[report] main_metric``, else accuracy-like.
        baseline: ``{axis: value}`` overriding the suite's baseline for every comparison.
        alpha: family-wise error rate of the verdicts; default the suite's ``[report] alpha``.
        curves: the learning curves (:func:`ablate.results.store.load_curves`), plotted when given.
        positions: loss and accuracy by token position (:func:`ablate.results.positions.frame.load_positions`).
        rounds: every measurement round (:func:`ablate.results.rounds_table.load_rounds`): cost ratios
            pair by round when given, else by repeat.
        preface: a section to open the report with (a claim's verdict and predicates).
        verdicts: judge every comparison against the baseline (Findings, the marks of the tables and
            figures, ``comparisons.csv``); ``False`` where the preface's verdicts are the report's own
            (a claim), so that no comparison carries two verdicts.

    Returns:
        ``{"html": path, "markdown": path, "figures": folder, "summary table": path, "comparisons table": path}``.

    Raises:
        ValueError: an empty frame, or a ``main_metric``/``baseline`` not in the results.
    """
    if df.empty or "metric" not in df.columns:
        raise ValueError("no results to report: the frame is empty (did the suite run?)")
    metric = context.choose_main_metric(df, main_metric)
    ctx = context.build_context(df, metric, baseline, alpha, verdicts=verdicts)
    suite = df.attrs.get("suite") or (str(df["suite"].iloc[0]) if "suite" in df.columns else "results")
    tables = [sections.overview(ctx), sections.main_results(ctx), sections.significance(ctx)]
    for section in tables:
        section.folded = True  # the findings lead; the full tables follow, folded
    parts = [*([preface] if preface is not None else []), findings.findings(ctx), *tables, findings.extrapolation(ctx),
             by_position.by_position(ctx, positions), cost.cost(ctx, rounds), tradeoffs.quality_cost(ctx),
             learning.learning_curves(df, curves, ctx.axes, ctx.styles), sections.failures(ctx)]
    paths = render(parts, out_dir, title=title or f"Ablation report: {suite}")
    return {**paths, **write_tables(ctx, out_dir)}


__all__ = ["compare_results", "write_comparison", "write_report"]
