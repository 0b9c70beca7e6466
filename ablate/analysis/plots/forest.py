"""The forest plot of verdicts: one row per judged comparison, its two intervals and its verdict.

Left panel: the share of paired seeds the treatment wins (ties set aside) with its
confidence sequence; better/worse is decided when it excludes 1/2. Right panel: the
comparison's estimand (mean or median difference, or ratio) with its confidence
sequence and the margin band; equivalence is decided when it lies inside the band.
Rows are the rows of :func:`ablate.analysis.stats.decisions.comparisons`, decided ones first.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ablate.analysis.plots.style import metric_label, metric_scale, new_figure
from ablate.analysis.stats.verdict import BETTER, EQUIVALENT, UNDECIDED, VERDICTS, WORSE

#: Colour of each verdict (Okabe-Ito: bluish green, vermillion, blue, grey).
VERDICT_COLORS = {BETTER: "#009E73", WORSE: "#D55E00", EQUIVALENT: "#0072B2", UNDECIDED: "#8c8c8c"}
ORDER = VERDICTS


def judged(table: pd.DataFrame) -> pd.DataFrame:
    """The judged rows of a comparisons table, decided ones first (better, worse, equivalent, undecided)."""
    rows = table[table["verdict"].isin(ORDER)].copy()
    rows["_order"] = rows["verdict"].map({v: i for i, v in enumerate(ORDER)})
    return rows.sort_values(["_order", "axis"], kind="stable").drop(columns="_order")


def row_label(row: pd.Series) -> str:
    """``rope vs sinusoidal · pooling=mean · L=64``."""
    parts = [f"{row[row['axis']]} vs {row['baseline']}"]
    if isinstance(row.get("context"), str) and row["context"]:
        parts.append(row["context"])
    if "eval_length" in row and pd.notna(row["eval_length"]):
        parts.append(f"L={int(row['eval_length'])}")
    return " · ".join(parts)


def forest_plot(table: pd.DataFrame, metric: str) -> Figure:
    """Win share and estimand intervals of every judged row of ``table`` (``comparisons(...)``).

    Raises:
        ValueError: no judged row.
    """
    rows = judged(table)
    if rows.empty:
        raise ValueError("no judged comparison to plot")
    labels = [row_label(r) for _, r in rows.iterrows()]
    height = 1.0 + 0.28 * len(rows)
    width = 6.2 + 0.055 * max(len(label) for label in labels)
    fig, (wins_ax, effect_ax) = new_figure(width, height, ncols=2)
    y = np.arange(len(rows))[::-1]
    colors = [VERDICT_COLORS[v] for v in rows["verdict"]]
    decided = sum(v != UNDECIDED for v in rows["verdict"])
    _wins_panel(wins_ax, rows, y, colors, labels, decided)
    _effect_panel(effect_ax, rows, y, colors, metric, decided)
    for verdict in ORDER:
        effect_ax.plot([], [], "o", color=VERDICT_COLORS[verdict], label=verdict)
    effect_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


def _wins_panel(ax, rows: pd.DataFrame, y: np.ndarray, colors: list[str], labels: list[str], decided: int) -> None:
    total = (rows["wins"] + rows["losses"]).to_numpy(dtype=float)
    share = np.divide(rows["wins"].to_numpy(dtype=float), total, out=np.full(len(rows), np.nan), where=total > 0)
    for i in range(len(rows)):
        ax.plot([rows["win_low"].iloc[i], rows["win_high"].iloc[i]], [y[i], y[i]], color=colors[i], linewidth=2)
        if np.isfinite(share[i]):
            ax.plot([share[i]], [y[i]], "o", color=colors[i], markersize=4)
    ax.axvline(0.5, color="0.3", linewidth=0.8, linestyle="--")
    _separator(ax, y, decided)
    ax.set_xlim(-0.02, 1.02)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("share of paired seeds won\n(ties aside)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def _effect_panel(ax, rows: pd.DataFrame, y: np.ndarray, colors: list[str], metric: str, decided: int) -> None:
    ratio = (rows["scale"] == "ratio").all()
    scale = 1.0 if ratio else metric_scale(metric)
    margin = float(rows["margin"].iloc[0])
    low, high = rows["low"].to_numpy(dtype=float) * scale, rows["high"].to_numpy(dtype=float) * scale
    estimate = rows["estimate"].to_numpy(dtype=float) * scale
    finite = np.concatenate([v[np.isfinite(v)] for v in (low, high, estimate)])
    if ratio:  # a ratio's interval can reach 0 (a log-ratio bound of -inf), which a log axis cannot show
        finite = finite[finite > 0]
        low = np.where(low > 0, low, -np.inf)
        ax.set_xscale("log")
        band = (1 / (1 + margin), 1 + margin)
        lo_edge, hi_edge = (finite.min() if finite.size else 0.5), (finite.max() if finite.size else 2.0)
        lo_edge, hi_edge = min(lo_edge, band[0]) / 1.1, max(hi_edge, band[1]) * 1.1
        centre = 1.0
    else:
        band = (-margin * scale, margin * scale)
        lo_edge, hi_edge = (finite.min() if finite.size else -1), (finite.max() if finite.size else 1)
        pad = 0.05 * max(hi_edge - lo_edge, 4 * band[1])
        lo_edge, hi_edge = min(lo_edge, band[0]) - pad, max(hi_edge, band[1]) + pad
        centre = 0.0
    ax.axvspan(*band, color="#0072B2", alpha=0.12, linewidth=0)
    ax.axvline(centre, color="0.3", linewidth=0.8, linestyle="--")
    for i in range(len(rows)):
        left = low[i] if math.isfinite(low[i]) else lo_edge
        right = high[i] if math.isfinite(high[i]) else hi_edge
        ax.plot([left, right], [y[i], y[i]], color=colors[i], linewidth=2)
        if math.isfinite(estimate[i]):
            ax.plot([estimate[i]], [y[i]], "o", color=colors[i], markersize=4)
    _separator(ax, y, decided)
    ax.set_xlim(lo_edge, hi_edge)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_yticks(y, [""] * len(rows))
    estimand = str(rows["estimand"].dropna().iloc[0]) if rows["estimand"].notna().any() else "mean"
    what = "ratio to the baseline" if ratio else "difference from the baseline"
    ax.set_xlabel(f"{estimand} {what}\n({metric_label(metric)}; band: ±margin)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def _separator(ax, y: np.ndarray, decided: int) -> None:
    """A line between the decided rows (on top) and the undecided ones."""
    if 0 < decided < len(y):
        ax.axhline(y[decided - 1] - 0.5, color="0.6", linewidth=0.6)
