"""The figures: heatmap, extrapolation curves, cost curves, critical-difference diagram, seed strip.

Every function takes the tidy results frame and returns a matplotlib ``Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ablate.analysis.feasibility import learned_threshold
from ablate.core.metrics import higher_is_better
from ablate.analysis.plots.palette import Style, styles_for
from ablate.analysis.stats.decisions import comparisons as comparisons_table
from ablate.analysis.plots.style import (
    MARKS,
    LEGEND_BESIDE,
    LOG_SPAN,
    failed_points,
    format_number,
    legend_below,
    length_axis,
    log_worthy,
    metric_label,
    metric_scale,
    missing_legend,
    new_figure,
    new_grid,
    plain_log_labels,
    scored_tokens,
    slice_frame,
    title_with,
)
from ablate.analysis.stats import (
    RankResult,
    baseline_of,
    friedman_nemenyi,
    grid_axes,
    in_distribution_length,
    scaling_exponents,
    summarize,
)


# ------------------------------------------------------------------ figures
def heatmap(
    df: pd.DataFrame,
    metric: str,
    *,
    rows: str = "encoding",
    cols: str = "pooling",
    eval_length: int | None = None,
    where: Mapping[str, Any] | None = None,
    baseline: Mapping[str, Any] | None = None,
    comparisons: pd.DataFrame | None = None,
    marks: bool = True,
) -> Figure:
    """Mean of ``metric`` per ``rows`` x ``cols`` cell, annotated ``mean ± CI half-width`` and a mark.

    ▲/▼: the verdict better/worse than the baseline ``rows`` value in the same column,
    from :func:`ablate.analysis.stats.decisions.comparisons` (the report's one table of verdicts).

    Args:
        comparisons: that table (default: computed from ``df`` with the suite's settings).
        marks: draw the verdicts' marks (``False``: means only).
    """
    length = eval_length if eval_length is not None else in_distribution_length(df, metric)
    keep = [rows] + ([cols] if cols in df.columns else [])
    data, fixed = slice_frame(df[df["eval_length"].eq(length)], metric, keep, where)
    cells = summarize(data)
    if cols not in cells.columns:
        cells = cells.assign(**{cols: "-"})
    if comparisons is None and marks:
        comparisons = _verdicts(df, metric, baseline)
    verdicts = comparisons if marks else pd.DataFrame(columns=["axis", "eval_length", "verdict", rows])
    shown = verdicts[verdicts["axis"].eq(rows) & verdicts["eval_length"].eq(length)]
    for key, value in fixed.items():
        shown = shown[shown[key].eq(value)] if key in shown.columns else shown
    row_order, col_order = list(pd.unique(cells[rows])), list(pd.unique(cells[cols]))
    means = cells.pivot_table(index=rows, columns=cols, values="mean", aggfunc="first", dropna=False, sort=False)
    means = means.reindex(index=row_order, columns=col_order)
    scale = metric_scale(metric)
    labels = np.full(means.shape, "", dtype=object)
    for cell in cells.to_dict("records"):
        i, j = row_order.index(cell[rows]), col_order.index(cell[cols])
        if cell["n"] == 0:
            labels[i, j] = cell["status"]
            continue
        text = format_number(cell["mean"] * scale)
        if np.isfinite(cell["ci_high"]) and cell["ci_high"] > cell["ci_low"]:
            text += f"\n± {format_number((cell['ci_high'] - cell['ci_low']) / 2 * scale)}"
        match = shown[shown[rows].eq(cell[rows])]
        if cols in shown.columns:
            match = match[match[cols].eq(cell[cols])]
        if len(match):
            text += " " + MARKS.get(match["verdict"].iloc[0], "")
        labels[i, j] = text
    width = max(3.6, 1.6 + 1.5 * len(col_order))
    fig, (ax,) = new_figure(width, 1.2 + 0.55 * len(row_order))
    cmap = "viridis" if higher_is_better(metric, df) else "viridis_r"  # brighter is always better
    sns.heatmap(means * scale, annot=labels, fmt="", cmap=cmap, ax=ax, linewidths=0.5,
                cbar_kws={"label": metric_label(metric)}, annot_kws={"fontsize": 8})
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    ax.tick_params(axis="y", rotation=0)
    base = baseline_of(df, grid_axes(df) or [rows], baseline).get(rows)
    title = f"{metric_label(metric)} at length {length}"
    if marks:
        title += f"; ▲▼ verdict vs {base} (family α={verdicts.attrs.get('alpha', 0.05):g})"
    fig.suptitle(title_with(title, fixed, width=width), fontsize=9)
    return fig


def _verdicts(df: pd.DataFrame, metric: str, baseline: Mapping[str, Any] | None) -> pd.DataFrame:
    """The comparisons table with the suite's ``[report]`` settings (what the report computes once)."""
    report = (df.attrs.get("suite_config") or {}).get("report") or {}
    return comparisons_table(df, metric, baseline=baseline, alpha=report.get("alpha", 0.05),
                             margins=report.get("margins"),
                             threshold=learned_threshold(metric, report.get("learned_threshold")))


def extrapolation_curves(
    df: pd.DataFrame,
    metric: str,
    *,
    axis: str = "encoding",
    where: Mapping[str, Any] | None = None,
    styles: Mapping[Any, Style] | None = None,
) -> Figure:
    """``metric`` against evaluation length (log2 x), one line per ``axis`` value with its CI band.

    A dashed vertical line marks the train length; an ``x`` at the bottom marks a
    length where a value has no ok result (unsupported, failed, OOM). A ratio-scale
    metric whose curves span more than :data:`LOG_SPAN` (a perplexity that blows up
    past the train length) is drawn on a log axis, so the curves that stay flat stay
    apart; with many values the legend goes below the axes.
    """
    styles = styles_for(df, axis, styles)
    data, fixed = slice_frame(df, metric, [axis, "eval_length"], where)
    cells = summarize(data)
    scale = metric_scale(metric)
    drawn = cells[cells["n"] > 0]
    many = data[axis].nunique() > LEGEND_BESIDE
    fig, (ax,) = new_figure(7.0, 5.6 if many else 3.8)
    log = log_worthy(metric, drawn["mean"] * scale)
    for value, group in drawn.groupby(axis, sort=False):
        group = group.sort_values("eval_length")
        style = styles[value]
        ax.plot(group["eval_length"], group["mean"] * scale, color=style.color, marker=style.marker,
                linestyle=style.linestyle, label=str(value))
        band = group[np.isfinite(group["ci_low"])]
        low = band["ci_low"] * scale
        if log:  # a t-interval of a few seeds can reach below 0; on a log axis it runs to the bottom edge
            low = low.clip(lower=float((drawn["mean"] * scale).min()) / LOG_SPAN)
        ax.fill_between(band["eval_length"], low, band["ci_high"] * scale, color=style.color,
                        alpha=0.15, linewidth=0)
    missing_legend(ax, data, axis, styles)
    if failed_points(ax, data, axis, styles, None, 0.03, "x"):
        ax.plot([], [], "x", color="0.3", label="no ok result (unsupported / failed)", markeredgewidth=2)
    if failed_points(ax, data, axis, styles, "oom", 0.97, "X"):
        ax.plot([], [], "X", color="0.3", label="out of memory")
    if "train_length" in data.columns:
        for i, length in enumerate(sorted(data["train_length"].dropna().unique())):
            ax.axvline(length, color="0.4", linestyle="--", linewidth=1, label="train length" if i == 0 else None)
    if log:
        ax.set_yscale("log")
        plain_log_labels(ax.yaxis)
    ax.margins(y=0.1)
    length_axis(ax, data["eval_length"])
    ax.set_ylabel(metric_label(metric) + (" (log scale)" if log else ""))
    ax.set_title(title_with(f"Length extrapolation: {metric_label(metric)}{scored_tokens(data)}", fixed),
                 fontsize=10)
    if many:
        legend_below(ax)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def cost_curves(
    df: pd.DataFrame,
    metrics: Sequence[str] = ("tokens_per_s", "peak_memory_bytes"),
    *,
    axis: str = "encoding",
    where: Mapping[str, Any] | None = None,
    styles: Mapping[Any, Style] | None = None,
) -> Figure:
    """Cost against sequence length on log-log axes, one panel per metric, one line per ``axis`` value.

    Legend entries carry the fitted exponent (``∝ L^1.02``, see :func:`ablate.analysis.stats.scaling_exponents`);
    ``X`` at the top marks out-of-memory lengths, ``x`` at the bottom other failures.
    """
    styles = styles_for(df, axis, styles)
    present = [m for m in metrics if df["metric"].eq(m).any()]
    if not present:
        raise ValueError(f"no cost metrics to plot: none of {list(metrics)} is in the results")
    fig, axes = new_grid(len(present), panel_height=3.3, columns=1)  # one above the other: legends stay legible
    for ax, metric in zip(axes, present):
        data, fixed = slice_frame(df, metric, [axis, "eval_length"], where)
        cells = summarize(data)
        fits = scaling_exponents(data, metric, by=[axis]).set_index(axis)["exponent"]
        scale = metric_scale(metric)
        for value, group in cells[cells["n"] > 0].groupby(axis, sort=False):
            group = group.sort_values("eval_length")
            exponent = fits.get(value, np.nan)
            label = f"{value} (∝ L^{exponent:.2f})" if np.isfinite(exponent) else str(value)
            ax.plot(group["eval_length"], group["mean"] * scale, color=styles[value].color,
                    marker=styles[value].marker, linestyle=styles[value].linestyle, label=label)
        missing_legend(ax, data, axis, styles)
        if failed_points(ax, data, axis, styles, "oom", 0.97, "X"):
            ax.plot([], [], "X", color="0.3", label="out of memory")
        if failed_points(ax, data, axis, styles, None, 0.03, "x"):
            ax.plot([], [], "x", color="0.3", label="unsupported / failed", markeredgewidth=2)
        ax.set_yscale("log")
        plain_log_labels(ax.yaxis)
        ax.margins(y=0.12)  # keep the failure marks at the edges clear of the lines
        length_axis(ax, data["eval_length"])
        ax.set_xlabel("sequence length (tokens)")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(title_with(metric_label(metric), fixed), fontsize=10)
        # beside the panel: a legend inside would hide the lines it explains
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def critical_difference_diagram(
    df: pd.DataFrame,
    metric: str,
    *,
    axis: str = "encoding",
    eval_length: int | None = None,
    where: Mapping[str, Any] | None = None,
    blocks: Sequence[str] | None = None,
    alpha: float = 0.05,
    result: RankResult | None = None,
    styles: Mapping[Any, Style] | None = None,
) -> Figure:
    """Demsar's critical-difference diagram: average ranks, CD bar, and bars joining indistinguishable values.

    Args:
        result: a precomputed :func:`ablate.analysis.stats.friedman_nemenyi` result (else computed here).
    """
    styles = styles_for(df, axis, styles)
    if result is None:
        length = eval_length if eval_length is not None else in_distribution_length(df, metric)
        result = friedman_nemenyi(df, metric, axis=axis, eval_length=length, where=where, blocks=blocks, alpha=alpha)
    if len(result.ranks) < 2:
        raise ValueError(f"no critical-difference diagram: {result.note or 'fewer than 2 treatments'}")
    k = len(result.ranks)
    half = (k + 1) // 2
    cliques = result.cliques()
    top = -0.3 - 0.2 * len(cliques)  # label lines start below the clique bars
    fig, (ax,) = new_figure(7.0, 1.3 + 0.3 * half + 0.15 * len(cliques))
    ax.grid(False)
    ax.set_axis_off()
    ax.set_xlim(0.2 - 0.15 * k, k + 0.8 + 0.15 * k)
    ax.set_ylim(top - 0.5 * half - 0.2, 1.6)
    ax.plot([1, k], [0, 0], color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.12], color="black", linewidth=1)
        ax.text(r, 0.22, str(r), ha="center", va="bottom", fontsize=8)
    for i, (name, rank) in enumerate(result.ranks.items()):
        left = i < half  # best half labelled on the left (best on top), worst half on the right (worst on top)
        y = top - 0.5 * (i if left else k - 1 - i)
        x_end = 0.6 if left else k + 0.4
        ax.plot([rank, rank, x_end], [0, y, y], color=styles.get(name, Style("black", "o")).color, linewidth=1.2)
        ax.text(x_end + (-0.05 if left else 0.05), y, f"{name} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=8)
    if np.isfinite(result.cd):
        ax.plot([1, 1 + result.cd], [1.1, 1.1], color="black", linewidth=2)
        ax.text(1 + result.cd / 2, 1.2, f"CD = {result.cd:.2f}", ha="center", va="bottom", fontsize=8)
    for j, clique in enumerate(cliques):
        y = -0.25 - 0.2 * j
        ax.plot([result.ranks[clique[0]] - 0.03, result.ranks[clique[-1]] + 0.03], [y, y], color="black",
                linewidth=3, solid_capstyle="butt")
    p = f"Friedman p = {result.pvalue:.3g}" if np.isfinite(result.pvalue) else "Friedman test n/a"
    ax.set_title(f"Average rank of {axis} by {metric_label(metric)} (1 = best), N = {result.n_blocks} blocks; {p}",
                 fontsize=9)
    return fig


def seed_strip(
    df: pd.DataFrame,
    metric: str,
    *,
    axis: str = "encoding",
    eval_length: int | None = None,
    where: Mapping[str, Any] | None = None,
    styles: Mapping[Any, Style] | None = None,
) -> Figure:
    """One point per seed for each ``axis`` value, grey lines joining a seed's points (the pairs the tests use)
    and the mean with its CI in black."""
    styles = styles_for(df, axis, styles)
    length = eval_length if eval_length is not None else in_distribution_length(df, metric)
    data, fixed = slice_frame(df[df["eval_length"].eq(length)], metric, [axis], where)
    ok = data[data["status"].eq("ok")].copy()
    if ok.empty:
        raise ValueError(f"no ok {metric!r} values at length {length}")
    scale = metric_scale(metric)
    ok["shown"] = ok["value"] * scale
    ok[axis] = ok[axis].astype(str)
    order = list(dict.fromkeys(ok[axis]))
    width = max(3.6, 1.8 + 0.9 * len(order))
    fig, (ax,) = new_figure(width, 4.0)
    if "seed" in ok.columns:
        position = {v: i for i, v in enumerate(order)}
        for _, seed_rows in ok.groupby("seed", sort=True):
            seed_rows = seed_rows.sort_values(axis, key=lambda s: s.map(position))
            ax.plot(seed_rows[axis].map(position), seed_rows["shown"], color="0.75", linewidth=0.8, zorder=1)
    by_label = {str(k): v for k, v in styles.items()}
    for i, value in enumerate(order):
        shown = ok.loc[ok[axis].eq(value), "shown"]
        ax.scatter([i] * len(shown), shown, color=by_label[value].color, marker=by_label[value].marker, s=36, zorder=2)
    ax.set_xticks(range(len(order)), order)
    cells = summarize(data).assign(**{axis: lambda c: c[axis].astype(str)}).set_index(axis)
    for i, value in enumerate(order):
        cell = cells.loc[value]
        low = cell["ci_low"] if np.isfinite(cell["ci_low"]) else cell["mean"]
        high = cell["ci_high"] if np.isfinite(cell["ci_high"]) else cell["mean"]
        ax.errorbar([i + 0.22], [cell["mean"] * scale], yerr=[[(cell["mean"] - low) * scale],
                    [(high - cell["mean"]) * scale]], fmt="_", color="black", capsize=3, markersize=10, zorder=3)
    ax.set_xlabel(axis)
    ax.set_ylabel(metric_label(metric))
    ax.set_title(title_with(f"Per-seed {metric_label(metric)} at length {length}", fixed, width=width - 0.8),
                 fontsize=9)
    return fig
