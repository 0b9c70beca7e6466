"""The learning-curves section: how every run learned, in the report's styles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

import ablate.analysis.report.formatting as fmt
from ablate.analysis.plots import Style
from ablate.analysis.plots.curves import learning_curves as curves_figure
from ablate.analysis.report.document import Image, Paragraph, Section


def learning_curves(df: pd.DataFrame, curves: pd.DataFrame | None, axes: list[str],
                    styles: Mapping[Any, Style] | None = None) -> Section:
    """Validation metric against optimiser steps, one line per run, with the steps each run of ``df`` used.

    Args:
        df: the results frame (its ``steps_used`` and ``criterion_met`` rows).
        curves: :func:`ablate.results.store.load_curves`; ``None`` or empty says there are none.
        axes: the grid axes; the first colours the lines, the next present one makes panels.
        styles: the report's styles of the first axis' values.
    """
    if curves is None or curves.empty:
        return Section("Learning curves", [Paragraph("No learning curves stored with these results.")], folded=True)
    colour_by = axes[0] if axes and axes[0] in curves.columns else "encoding"
    panel_by = next((a for a in axes[1:] if a in curves.columns), None)
    used = df[df["metric"].eq("steps_used")] if "metric" in df.columns else df.iloc[:0]
    met = df[df["metric"].eq("criterion_met")] if "metric" in df.columns else df.iloc[:0]
    text = (f"{curves['run_id'].nunique()} runs; each checked its validation {', '.join(pd.unique(curves['metric']))} "
            f"on held-out batches at the train length. Optimiser steps used: median "
            f"{fmt.number(used['value'].median(), 0) if len(used) else 'n/a'}; criterion met by "
            f"{int(met['value'].sum()) if len(met) else 0} of {len(met)} runs.")
    order = [str(v) for v in pd.unique(df[panel_by].dropna())] if panel_by in df.columns else None
    figure = curves_figure(curves, colour_by=colour_by, panel_by=panel_by, panel_order=order, styles=styles)
    caption = (f"Validation metric against optimiser steps, one line per run, coloured by {colour_by}"
               + (f", one panel per {panel_by}." if panel_by else "."))
    return Section("Learning curves", [Paragraph(text), Image("learning-curves", caption, figure)], folded=True)
