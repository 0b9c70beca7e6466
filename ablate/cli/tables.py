"""What ``ablate bench`` prints: the measurements, and each cost's ratio to its baseline with its verdict."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.markup import escape
from rich.table import Table

from ablate.results.rounds_table import load_rounds
from ablate.analysis.report.context import report_settings
from ablate.analysis.report.cost import cost_verdicts, ratio_text, suite_margins
from ablate.analysis.stats import baseline_of, grid_axes

#: The keys of one measured point.
POINT = ["encoding", "pooling", "measure.mode", "measure.batch_size", "measure.dtype", "eval_length"]


def bench_table(frame: pd.DataFrame) -> Table:
    """The measurements of ``frame`` (measure rows), one line per point: median over repeats."""
    wide = frame.pivot_table(index=POINT, columns="metric", values="value", aggfunc="median", dropna=False)
    status = frame.groupby(POINT)["status"].first()
    table = Table(title="ablate bench")
    for column in ("encoding", "pooling", "mode", "batch", "dtype", "length", "tokens/s", "median ms", "IQR ms",
                   "peak MiB", "status"):
        table.add_column(column)
    for key, row in wide.iterrows():
        table.add_row(*[escape(str(k)) for k in key], _shown(row.get("tokens_per_s"), 1, 0),
                      _shown(row.get("time_median_s"), 1e3, 2), _shown(row.get("time_iqr_s"), 1e3, 2),
                      _shown(row.get("peak_memory_bytes"), 2**-20, 1), str(status[key]))
    return table


def _shown(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "" if value is None or pd.isna(value) else f"{value * scale:,.{digits}f}"


def cost_verdict_table(frame: pd.DataFrame, results_dir: Path) -> Table | None:
    """Each cost as a ratio to its baseline, with its interval and verdict (the report's cost section)."""
    axes = grid_axes(frame)
    if frame.empty or not axes:
        return None
    baseline = baseline_of(frame, axes)
    verdicts = cost_verdicts(frame, load_rounds(results_dir), axis=axes[0], baseline=baseline,
                             alpha=report_settings(frame)["alpha"], margins=suite_margins(frame))
    if verdicts.empty:
        return None
    shown = [a for a in axes if a in verdicts.columns] + [c for c in ("measure.mode",) if c in verdicts.columns]
    table = Table(title=escape(f"cost relative to {axes[0]} = {baseline[axes[0]]}: median paired ratio [interval] "
                               "and verdict (the report's cost section)"))
    for column in (*shown, "length", "metric", "ratio", "pairs"):
        table.add_column(column)
    for row in verdicts.to_dict("records"):
        table.add_row(*[escape(str(row[c])) for c in shown], str(row["eval_length"]), row["metric"], ratio_text(row),
                      f"{row['n']} {row['paired_by']}")
    return table
