"""Learning curves: the validation metric against optimiser steps, one line per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ablate.analysis.plots.palette import Style, styles_for
from ablate.analysis.plots.style import metric_label, new_grid

def learning_curves(curves: pd.DataFrame, *, colour_by: str = "encoding", panel_by: str | None = None,
                    panel_order: Sequence[str] | None = None, styles: Mapping[Any, Style] | None = None) -> Figure:
    """Every run's validation curve (:func:`ablate.results.store.load_curves`), coloured by ``colour_by``.

    Args:
        curves: one row per run x check: ``run_id, step, metric, value`` and config columns.
        colour_by: the column whose value fixes a line's style (:mod:`ablate.analysis.plots.palette`).
        panel_by: a column with one panel per value, or ``None`` for one panel.
        panel_order: the panels' values in order (default: as they appear); others follow.
        styles: the report's styles; the same rules apply without them.
    """
    curves = curves.assign(**{colour_by: curves[colour_by].astype(str)})
    styles = styles_for(curves, colour_by, {str(k): v for k, v in (styles or {}).items()} or None)
    present = list(pd.unique(curves[panel_by].astype(str))) if panel_by else [None]
    panels = [p for p in panel_order or [] if p in present] + [p for p in present if p not in (panel_order or [])]
    fig, axes = new_grid(len(panels), panel_height=3.0)
    metric = str(curves["metric"].iloc[0])
    for ax, panel in zip(axes, panels):
        rows = curves if panel is None else curves[curves[panel_by].astype(str).eq(panel)]
        for (_, value), run in rows.groupby(["run_id", colour_by], sort=False):
            style = styles[value]
            ax.plot(run["step"], run["value"], color=style.color, linestyle=style.linestyle, marker=style.marker,
                    markersize=3, alpha=0.75, linewidth=1.1)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(metric_label(metric))
        if panel is not None:
            ax.set_title(f"{panel_by} = {panel}", fontsize=10)
    handles = [axes[0].plot([], [], color=s.color, marker=s.marker, linestyle=s.linestyle, label=v)[0]
               for v, s in styles.items() if v in set(curves[colour_by])]
    fig.legend(handles=handles, title=colour_by, loc="outside lower center", frameon=False, fontsize=9,
               title_fontsize=9, ncol=min(len(handles), 6))
    return fig

