"""Loss or accuracy by token position at one evaluation length: where along the sequence a model breaks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ablate.analysis.plots.palette import Style, styles_for
from ablate.analysis.plots.style import new_figure

#: Positions are pooled into at most this many bins of equal width, so long windows stay legible.
MAX_BINS = 32
LABELS = {"loss": "loss (nats per token)", "accuracy": "next-token accuracy"}


def binned(rows: pd.DataFrame, value: str, max_bins: int = MAX_BINS) -> pd.DataFrame:
    """Token-weighted mean of ``value`` per run and bin of positions.

    Args:
        rows: one row per run x position: ``run_id, position, tokens`` and ``value``.

    Returns:
        ``run_id, start, centre, value``: each bin's first position, its middle, and the mean.
    """
    width = max(1, int(np.ceil((rows["position"].max() + 1) / max_bins)))
    frame = rows.assign(start=rows["position"] // width * width, weighted=rows[value] * rows["tokens"])
    sums = frame.groupby(["run_id", "start"], sort=True)[["weighted", "tokens"]].sum().reset_index()
    return sums.assign(centre=sums["start"] + (width - 1) / 2, value=sums["weighted"] / sums["tokens"])[
        ["run_id", "start", "centre", "value"]]


def by_position(rows: pd.DataFrame, *, axis: str, value: str, train_length: float | None = None,
                styles: Mapping[Any, Style] | None = None, title: str = "") -> Figure:
    """``value`` (``loss`` or ``accuracy``) against token position, a line per ``axis`` value with a 95% band.

    Args:
        rows: :func:`ablate.results.positions.frame.load_positions` rows of one evaluation length and task.
        train_length: drawn as a dashed line: positions right of it were never trained at.
    """
    styles = styles_for(rows, axis, styles)
    fig, (ax,) = new_figure(7.0, 3.6)
    present = set(rows[axis])
    for key in [k for k in styles if k in present]:  # the report's order, as in its other figures
        bins = binned(rows[rows[axis].eq(key)], value)
        stats = bins.groupby("centre")["value"].agg(["mean", "std", "count"])
        half = 1.96 * stats["std"].fillna(0) / np.sqrt(stats["count"])
        style = styles[key]
        ax.plot(stats.index, stats["mean"], color=style.color, linestyle=style.linestyle, marker=style.marker,
                markersize=3, markevery=max(1, len(stats) // 12), label=str(key))
        ax.fill_between(stats.index, stats["mean"] - half, stats["mean"] + half, color=style.color, alpha=0.15,
                        linewidth=0)
    if train_length is not None:
        ax.axvline(train_length - 0.5, color="0.4", linestyle="--", linewidth=1, label="train length")
    ax.set_xlabel("token position")
    ax.set_ylabel(LABELS.get(value, value))
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
