"""Quality against cost: one point per value with its intervals, and the Pareto front."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ablate.analysis.plots.palette import Style, styles_for
from ablate.analysis.plots.style import metric_label, metric_scale, new_grid

FRONT_COLOUR = "0.45"


def pareto_front(cost: Sequence[float], quality: Sequence[float], *, higher_is_better: bool = True) -> list[int]:
    """Indices of the points no other point beats on both axes, cheapest first.

    A point is on the front when every cheaper (or equally cheap) point has worse
    quality: nothing both costs no more and is at least as good. Ties in both
    keep the first.

    Args:
        cost: one cost per point (lower is better).
        quality: one quality per point; ``higher_is_better`` says its direction.
    """
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -sign * quality[i], i))
    front, best = [], -np.inf
    for i in order:
        if np.isfinite(cost[i]) and np.isfinite(quality[i]) and sign * quality[i] > best:
            front.append(i)
            best = sign * quality[i]
    return front


def quality_cost(points: pd.DataFrame, *, axis: str, quality: str, costs: Sequence[str], higher_is_better: bool,
                 quality_label: str | None = None, cost_labels: Mapping[str, str] | None = None,
                 styles: Mapping[Any, Style] | None = None, title: str = "") -> Figure:
    """One panel per cost metric: ``quality`` (y) against the cost (x), a point per ``axis`` value.

    Args:
        points: one row per ``axis`` value: ``quality``, ``quality_low``, ``quality_high`` and, for
            each cost metric ``m``, ``m``, ``m_low``, ``m_high`` (NaN bounds: no interval).
        costs: cost metrics (lower is better), one panel each.
        higher_is_better: the direction of ``quality``.
        quality_label, cost_labels: axis labels (default: the metrics' labels).
    """
    styles = styles_for(points, axis, styles)
    fig, axes = new_grid(len(costs), panel_height=3.4)
    y_scale = metric_scale(quality)
    for ax, metric in zip(axes, costs):
        x_scale = metric_scale(metric)
        rows = points[np.isfinite(points[metric]) & np.isfinite(points["quality"])]
        for row in rows.to_dict("records"):
            style = styles[row[axis]]
            ax.errorbar([row[metric] * x_scale], [row["quality"] * y_scale], xerr=_error(row, metric, x_scale),
                        yerr=_error(row, "quality", y_scale), fmt=style.marker, color=style.color, markersize=7,
                        capsize=2, elinewidth=1, label=str(row[axis]))
        front = [rows.index[i] for i in pareto_front(list(rows[metric]), list(rows["quality"]),
                                                     higher_is_better=higher_is_better)]
        if front:
            edge = rows.loc[front]
            ax.plot(edge[metric] * x_scale, edge["quality"] * y_scale, color=FRONT_COLOUR, linestyle=":",
                    linewidth=1.2, drawstyle="steps-post", zorder=0)
            ax.plot(edge[metric] * x_scale, edge["quality"] * y_scale, linestyle="none", marker="o", markersize=14,
                    markerfacecolor="none", markeredgecolor=FRONT_COLOUR, zorder=0)
        ax.set_xlabel((cost_labels or {}).get(metric, metric_label(metric)), fontsize=9)
        ax.set_ylabel(quality_label or metric_label(quality), fontsize=9)
        ax.margins(0.12)
    handles = [axes[0].plot([], [], color=s.color, marker=s.marker, linestyle="none", label=str(v))[0]
               for v, s in styles.items() if v in set(points[axis])]
    handles.append(axes[0].plot([], [], color=FRONT_COLOUR, linestyle=":", marker="o", markersize=9,
                                markerfacecolor="none", label="Pareto front")[0])
    fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=9, ncol=min(len(handles), 5))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _error(row: Mapping[str, Any], column: str, scale: float) -> list[list[float]] | None:
    """Matplotlib's ``[[below], [above]]`` from a row's ``column_low``/``column_high``, or ``None``."""
    low, high, value = row.get(f"{column}_low"), row.get(f"{column}_high"), row[column]
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return None
    return [[max(value - low, 0.0) * scale], [max(high - value, 0.0) * scale]]
