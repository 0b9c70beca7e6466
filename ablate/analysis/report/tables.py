"""The report's tables as data: ``summary.csv`` and ``comparisons.csv`` beside the HTML.

The HTML and Markdown show rounded, formatted numbers; these files hold the same
statistics unrounded, one row per cell (mean, std, n, confidence interval) and one
row per paired comparison against the baseline, for a spreadsheet or a script.
"""

from __future__ import annotations

from pathlib import Path

from ablate.analysis.report.context import Context


def write_tables(ctx: Context, out_dir: str | Path) -> dict[str, Path]:
    """Write the context's cell summary and paired comparisons as CSV; returns ``{name: path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, table in (("summary", ctx.cells), ("comparisons", ctx.comparisons)):
        if table is None:
            continue
        path = out / f"{name}.csv"
        table.to_csv(path, index=False)
        written[f"{name} table"] = path
    return written
