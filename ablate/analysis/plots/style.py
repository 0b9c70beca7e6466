"""What every figure shares: metric labels, slicing, failure marks, saving.

Styles (one colour and marker per value) are :mod:`ablate.analysis.plots.palette`'s. Where a
figure shows one axis, every other axis is fixed at its baseline value (or its first
value where the baseline was not run) and the title says so.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullLocator
from matplotlib.transforms import blended_transform_factory

from ablate.core.metrics import METRICS
from ablate.analysis.plots.palette import Style
from ablate.analysis.stats import describe, hold_fixed, select


MARKS = {"better": "▲", "worse": "▼"}
_STYLE = {"axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}


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
def new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    with sns.axes_style("whitegrid", _STYLE):
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


#: A figure's width in inches: at the report's 110 dpi it fills a 1280 px page's column and
#: shrinks to at most 0.85x in an 800 px window, so 8-point text stays readable.
PAGE_WIDTH = 7.0
#: Panels side by side at most; more wrap onto further rows, so a figure never outgrows the page.
MAX_COLUMNS = 2


def new_grid(count: int, *, panel_height: float, columns: int = MAX_COLUMNS,
             width: float = PAGE_WIDTH) -> tuple[Figure, list[Any]]:
    """``count`` panels in rows of at most ``columns``, ``width`` inches wide; unused panels are hidden."""
    ncols = max(1, min(count, columns))
    nrows = max(1, math.ceil(count / ncols))
    fig = Figure(figsize=(width, panel_height * nrows + 0.6), layout="constrained")
    with sns.axes_style("whitegrid", _STYLE):
        axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


class _PlainLogFormatter(LogFormatter):
    """Matplotlib's choice of which log ticks to label, written as plain numbers (``3``, ``20,000``)."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return format_number(x)


def plain_log_labels(axis: Any) -> None:
    """Plain numbers instead of ``3 x 10^0`` on a log axis; minor ticks labelled only where few decades show."""
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def slice_frame(
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


def title_with(text: str, fixed: Mapping[str, Any], width: float | None = None, fontsize: float = 9) -> str:
    """``text``, then what is held fixed in brackets; wrapped to ``width`` inches when given, so it is never cut."""
    title = f"{text}\n({describe(fixed)})" if fixed else text
    if width is None:
        return title
    characters = max(20, int(width * 72 / (0.6 * fontsize)))  # a DejaVu Sans character is about 0.6 em wide
    return "\n".join(textwrap.fill(line, characters) for line in title.splitlines())


def length_axis(ax: Any, lengths: Iterable[float]) -> None:
    lengths = sorted({int(v) for v in lengths if np.isfinite(v)})
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(v) for v in lengths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("evaluation length (tokens)")


def failed_points(ax: Any, rows: pd.DataFrame, axis: str, styles: Mapping[Any, Style], status: str | None,
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


def missing_legend(ax: Any, rows: pd.DataFrame, axis: str, styles: Mapping[Any, Style]) -> None:
    """Legend entries for values with no ok point at all (only failure marks show their colour)."""
    ok = set(rows.loc[rows["status"].eq("ok"), axis])
    for value in pd.unique(rows[axis]):
        if value not in ok:
            ax.plot([], [], marker=styles[value].marker, color=styles[value].color, linestyle="none",
                    label=f"{value} (no ok result)")


#: More values than this and a figure's legend goes below the axes (beside them it would squeeze the plot).
LEGEND_BESIDE = 6
#: A ratio-scale metric whose plotted values span more than this factor is drawn on a log axis.
LOG_SPAN = 3.0
#: Legend labels longer than this wrap at their commas.
LABEL_WIDTH = 34


def log_worthy(metric: str, values: pd.Series) -> bool:
    """Whether ``metric``'s plotted ``values`` want a log axis: a ratio-scale metric (perplexity, time,
    memory) spanning more than :data:`LOG_SPAN`, where a linear axis would crush the flat curves together."""
    finite = values[np.isfinite(values) & (values > 0)]
    ratio_scale = metric in METRICS and METRICS[metric].scale == "ratio"
    return bool(ratio_scale and len(finite) and finite.max() / finite.min() > LOG_SPAN)


def legend_below(ax: Any, columns: int = 2) -> None:
    """The axes' legend below them, in ``columns``, long labels (``randomized[base=rope,...]``) wrapped at commas."""
    handles, labels = ax.get_legend_handles_labels()
    wrapped = [textwrap.fill(label.replace(",", ", "), LABEL_WIDTH).replace(", ", ",") for label in labels]
    ax.legend(handles, wrapped, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns, fontsize=8,
              frameon=False)


def scored_tokens(rows: pd.DataFrame) -> str:
    """`` of the final N tokens`` when every row scored the same final ``eval.score_last`` tokens, else ``""``."""
    column = "eval.score_last"
    values = pd.unique(rows[column].dropna()) if column in rows.columns else []
    return f" of the final {int(values[0])} tokens" if len(values) == 1 else ""


def format_number(value: float) -> str:
    """Compact number for annotations: 3 significant digits, thousands separators for large values."""
    if not np.isfinite(value):
        return "n/a"
    if abs(value) >= 1e3:  # never 1e+03
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 1 else f"{value:.3f}"
