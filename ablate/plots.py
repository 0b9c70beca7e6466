"""Figures from the tidy results frame. Every function returns a matplotlib ``Figure``.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot): no
global figure registry to leak, no GUI backend, and rendering through Agg. One
colour and marker per encoding (:func:`encoding_styles`, Okabe-Ito colours, safe
for the common colour-vision deficiencies) is shared by every figure of a frame.
Where a figure shows one axis, every other axis is fixed at its baseline value
(or its first value where the baseline was not run) and the title says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from matplotlib.transforms import blended_transform_factory

from ablate.metrics import METRICS
from ablate.stats import (
    RankResult,
    baseline_of,
    describe,
    fit_scaling,
    friedman_nemenyi,
    grid_axes,
    higher_is_better,
    hold_fixed,
    in_distribution_length,
    paired_comparisons,
    select,
    summarize,
)

#: Okabe & Ito (2008) colours, distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
#: Markers cycle with a different period than colours, so 24 encodings still get distinct styles.
MARKERS = ["o", "s", "^", "D", "v", "P"]
MARKS = {"better": "▲", "worse": "▼"}
_STYLE = {"axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True)
class Style:
    """How one encoding (or other axis value) is drawn in every figure."""

    color: str
    marker: str


def encoding_styles(values: pd.DataFrame | Iterable[Any], axis: str = "encoding") -> dict[Any, Style]:
    """Stable style per value: the i-th distinct value (in order of appearance) gets the i-th style.

    Args:
        values: a results frame (its ``axis`` column is used) or the values themselves.
        axis: the column to read from a frame.
    """
    if isinstance(values, pd.DataFrame):
        values = values[axis].dropna() if axis in values.columns else []
    ordered = list(dict.fromkeys(values))
    return {v: Style(OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]) for i, v in enumerate(ordered)}


def metric_scale(metric: str) -> float:
    """Factor applied to values before plotting/tabulating (bytes are shown in MiB)."""
    return 1 / 2**20 if metric in METRICS and METRICS[metric].unit == "bytes" else 1.0


def metric_label(metric: str) -> str:
    """Axis label with unit, e.g. ``"peak memory (MiB)"``."""
    if metric not in METRICS:
        return metric.replace("_", " ")
    m = METRICS[metric]
    return m.display.replace("(bytes)", "(MiB)") if m.unit == "bytes" else m.display


def save_figure(fig: Figure, path: str | Path, formats: Sequence[str] = ("png", "svg"), dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats``; same figure -> same bytes.

    The SVG id salt is fixed and the date/version metadata left out, so re-rendering
    identical data gives identical files (reports can be diffed).
    """
    stem = Path(path).with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}, "pdf": {"CreationDate": None}}
    written = []
    with mpl.rc_context({"svg.hashsalt": "ablate", "svg.fonttype": "path"}):
        for fmt in formats:
            target = stem.with_suffix(f".{fmt}")
            fig.savefig(target, format=fmt, dpi=dpi, metadata=metadata.get(fmt))
            written.append(target)
    return written


# ------------------------------------------------------------------ helpers
def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    with sns.axes_style("whitegrid", _STYLE):
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _slice(
    df: pd.DataFrame, metric: str, keep: Sequence[str], where: Mapping[str, Any] | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows of ``metric`` with every cell key outside ``keep`` fixed to one value (baseline first)."""
    rows = select(df, where)
    rows = rows[rows["metric"].eq(metric)]
    if rows.empty:
        raise ValueError(f"no {metric!r} rows to plot" + (f" where {describe(where)}" if where else ""))
    rows, fixed = hold_fixed(rows, keep, reference=df)
    for key in where or {}:
        if key not in fixed and key in rows.columns and rows[key].nunique() == 1:
            fixed[key] = rows[key].iloc[0]
    return rows, fixed


def _title(text: str, fixed: Mapping[str, Any]) -> str:
    return f"{text}\n({describe(fixed)})" if fixed else text


def _length_axis(ax: Any, lengths: Iterable[float]) -> None:
    lengths = sorted({int(v) for v in lengths if np.isfinite(v)})
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(v) for v in lengths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("evaluation length (tokens)")


def _failed_points(ax: Any, rows: pd.DataFrame, axis: str, styles: Mapping[Any, Style], status: str | None,
                   y: float, marker: str) -> bool:
    """Mark (value, length) points with no ok value at axes-fraction height ``y``; returns whether any."""
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    drawn = False
    for (value, length), group in rows.groupby([axis, "eval_length"], sort=False):
        if group["status"].eq("ok").any():
            continue
        if status is not None and not group["status"].eq(status).any():
            continue
        if status is None and group["status"].eq("oom").any():
            continue  # drawn as OOM
        ax.plot([length], [y], marker=marker, color=styles[value].color, markersize=8, linestyle="none",
                transform=transform, clip_on=False, markeredgewidth=2)
        drawn = True
    return drawn


def _missing_legend(ax: Any, rows: pd.DataFrame, axis: str, styles: Mapping[Any, Style]) -> None:
    """Legend entries for values with no ok point at all (only failure marks show their colour)."""
    ok = set(rows.loc[rows["status"].eq("ok"), axis])
    for value in pd.unique(rows[axis]):
        if value not in ok:
            ax.plot([], [], marker=styles[value].marker, color=styles[value].color, linestyle="none",
                    label=f"{value} (no ok result)")


def _styles(df: pd.DataFrame, axis: str, styles: Mapping[Any, Style] | None) -> Mapping[Any, Style]:
    return styles if styles is not None else encoding_styles(df, axis)


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
    alpha: float = 0.05,
) -> Figure:
    """Mean of ``metric`` per ``rows`` x ``cols`` cell, annotated ``mean ± CI half-width`` and a mark.

    ▲/▼: significantly better/worse than the baseline ``rows`` value in the same
    column (paired t-test by seed, Holm-corrected over all comparisons of the metric).

    Args:
        comparisons: precomputed :func:`ablate.stats.paired_comparisons` (the report passes its own).
    """
    length = eval_length if eval_length is not None else in_distribution_length(df, metric)
    keep = [rows] + ([cols] if cols in df.columns else [])
    data, fixed = _slice(df[df["eval_length"].eq(length)], metric, keep, where)
    cells = summarize(data)
    if cols not in cells.columns:
        cells = cells.assign(**{cols: "-"})
    if comparisons is None:
        comparisons = paired_comparisons(df, metric=metric, baseline=baseline, alpha=alpha)
    marks = comparisons[comparisons["axis"].eq(rows) & comparisons["eval_length"].eq(length)]
    for key, value in fixed.items():
        marks = marks[marks[key].eq(value)] if key in marks.columns else marks
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
        text = _fmt(cell["mean"] * scale)
        if np.isfinite(cell["ci_high"]) and cell["ci_high"] > cell["ci_low"]:
            text += f"\n± {_fmt((cell['ci_high'] - cell['ci_low']) / 2 * scale)}"
        match = marks[marks[rows].eq(cell[rows])]
        if cols in marks.columns:
            match = match[match[cols].eq(cell[cols])]
        if len(match):
            text += " " + MARKS.get(match["verdict"].iloc[0], "")
        labels[i, j] = text
    fig, (ax,) = _figure(1.6 + 1.5 * len(col_order), 1.2 + 0.55 * len(row_order))
    cmap = "viridis" if higher_is_better(df, metric) else "viridis_r"  # brighter is always better
    sns.heatmap(means * scale, annot=labels, fmt="", cmap=cmap, ax=ax, linewidths=0.5,
                cbar_kws={"label": metric_label(metric)}, annot_kws={"fontsize": 8})
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    ax.tick_params(axis="y", rotation=0)
    base = baseline_of(df, grid_axes(df) or [rows], baseline).get(rows)
    ax.set_title(_title(f"{metric_label(metric)} at length {length}; ▲▼ vs {base} (Holm α={alpha})", fixed),
                 fontsize=9)
    return fig


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
    length where a value has no ok result (unsupported, failed, OOM).
    """
    styles = _styles(df, axis, styles)
    data, fixed = _slice(df, metric, [axis, "eval_length"], where)
    cells = summarize(data)
    scale = metric_scale(metric)
    fig, (ax,) = _figure(7.5, 4.2)
    for value, group in cells[cells["n"] > 0].groupby(axis, sort=False):
        group = group.sort_values("eval_length")
        style = styles[value]
        ax.plot(group["eval_length"], group["mean"] * scale, color=style.color, marker=style.marker, label=str(value))
        band = group[np.isfinite(group["ci_low"])]
        ax.fill_between(band["eval_length"], band["ci_low"] * scale, band["ci_high"] * scale, color=style.color,
                        alpha=0.15, linewidth=0)
    _missing_legend(ax, data, axis, styles)
    if _failed_points(ax, data, axis, styles, None, 0.03, "x"):
        ax.plot([], [], "x", color="0.3", label="no ok result (unsupported / failed)", markeredgewidth=2)
    if _failed_points(ax, data, axis, styles, "oom", 0.97, "X"):
        ax.plot([], [], "X", color="0.3", label="out of memory")
    if "train_length" in data.columns:
        for i, length in enumerate(sorted(data["train_length"].dropna().unique())):
            ax.axvline(length, color="0.4", linestyle="--", linewidth=1, label="train length" if i == 0 else None)
    ax.margins(y=0.1)
    _length_axis(ax, data["eval_length"])
    ax.set_ylabel(metric_label(metric))
    ax.set_title(_title(f"Length extrapolation: {metric_label(metric)}", fixed), fontsize=10)
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

    Legend entries carry the fitted exponent (``∝ L^1.02``, see :func:`ablate.stats.fit_scaling`);
    ``X`` at the top marks out-of-memory lengths, ``x`` at the bottom other failures.
    """
    styles = _styles(df, axis, styles)
    present = [m for m in metrics if df["metric"].eq(m).any()]
    if not present:
        raise ValueError(f"no cost metrics to plot: none of {list(metrics)} is in the results")
    fig, axes = _figure(5.2 * len(present), 5.0, ncols=len(present))
    for ax, metric in zip(axes, present):
        data, fixed = _slice(df, metric, [axis, "eval_length"], where)
        cells = summarize(data)
        fits = fit_scaling(data, metric, by=[axis]).set_index(axis)["exponent"]
        scale = metric_scale(metric)
        for value, group in cells[cells["n"] > 0].groupby(axis, sort=False):
            group = group.sort_values("eval_length")
            exponent = fits.get(value, np.nan)
            label = f"{value} (∝ L^{exponent:.2f})" if np.isfinite(exponent) else str(value)
            ax.plot(group["eval_length"], group["mean"] * scale, color=styles[value].color,
                    marker=styles[value].marker, label=label)
        _missing_legend(ax, data, axis, styles)
        if _failed_points(ax, data, axis, styles, "oom", 0.97, "X"):
            ax.plot([], [], "X", color="0.3", label="out of memory")
        if _failed_points(ax, data, axis, styles, None, 0.03, "x"):
            ax.plot([], [], "x", color="0.3", label="unsupported / failed", markeredgewidth=2)
        ax.set_yscale("log")
        ax.margins(y=0.12)  # keep the failure marks at the edges clear of the lines
        _length_axis(ax, data["eval_length"])
        ax.set_xlabel("sequence length (tokens)")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(_title(metric_label(metric), fixed), fontsize=10)
        # below the panel: a legend inside would hide the lines it explains
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
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
        result: a precomputed :func:`ablate.stats.friedman_nemenyi` result (else computed here).
    """
    styles = _styles(df, axis, styles)
    if result is None:
        length = eval_length if eval_length is not None else in_distribution_length(df, metric)
        result = friedman_nemenyi(df, metric, axis=axis, eval_length=length, where=where, blocks=blocks, alpha=alpha)
    if len(result.ranks) < 2:
        raise ValueError(f"no critical-difference diagram: {result.note or 'fewer than 2 treatments'}")
    k = len(result.ranks)
    half = (k + 1) // 2
    cliques = result.cliques()
    top = -0.3 - 0.2 * len(cliques)  # label lines start below the clique bars
    fig, (ax,) = _figure(7.5, 1.3 + 0.3 * half + 0.15 * len(cliques))
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
    styles = _styles(df, axis, styles)
    length = eval_length if eval_length is not None else in_distribution_length(df, metric)
    data, fixed = _slice(df[df["eval_length"].eq(length)], metric, [axis], where)
    ok = data[data["status"].eq("ok")].copy()
    if ok.empty:
        raise ValueError(f"no ok {metric!r} values at length {length}")
    scale = metric_scale(metric)
    ok["shown"] = ok["value"] * scale
    ok[axis] = ok[axis].astype(str)
    order = list(dict.fromkeys(ok[axis]))
    fig, (ax,) = _figure(1.8 + 0.9 * len(order), 4.0)
    if "seed" in ok.columns:
        position = {v: i for i, v in enumerate(order)}
        for _, seed_rows in ok.groupby("seed", sort=True):
            seed_rows = seed_rows.sort_values(axis, key=lambda s: s.map(position))
            ax.plot(seed_rows[axis].map(position), seed_rows["shown"], color="0.75", linewidth=0.8, zorder=1)
    palette = {str(k): v.color for k, v in styles.items()}
    sns.stripplot(data=ok, x=axis, y="shown", hue=axis, order=order, hue_order=order, palette=palette,
                  jitter=False, size=6, legend=False, ax=ax, zorder=2)
    cells = summarize(data).assign(**{axis: lambda c: c[axis].astype(str)}).set_index(axis)
    for i, value in enumerate(order):
        cell = cells.loc[value]
        low = cell["ci_low"] if np.isfinite(cell["ci_low"]) else cell["mean"]
        high = cell["ci_high"] if np.isfinite(cell["ci_high"]) else cell["mean"]
        ax.errorbar([i + 0.22], [cell["mean"] * scale], yerr=[[(cell["mean"] - low) * scale],
                    [(high - cell["mean"]) * scale]], fmt="_", color="black", capsize=3, markersize=10, zorder=3)
    ax.set_xlabel(axis)
    ax.set_ylabel(metric_label(metric))
    ax.set_title(_title(f"Per-seed {metric_label(metric)} at length {length}", fixed), fontsize=9)
    return fig


def _fmt(value: float) -> str:
    """Compact number for annotations: 3 significant digits, thousands separators for large values."""
    if not np.isfinite(value):
        return "n/a"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 1 else f"{value:.3f}"
