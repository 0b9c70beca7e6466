"""The by-position section: loss or accuracy at each token position of the longest evaluation length."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ablate.analysis import stats
from ablate.analysis.plots.positions import by_position as by_position_figure
from ablate.analysis.report.context import Context, learned_rows
from ablate.analysis.report.document import Image, Paragraph, Section

TITLE = "By position"
#: Main metrics read as a loss: the figure then shows loss by position, else accuracy.
LOSS_METRICS = ("loss", "perplexity", "bits_per_char")


def by_position(ctx: Context, positions: pd.DataFrame | None) -> Section:
    """A figure per task: the main metric's kind (loss or accuracy) against token position, a line per value.

    Args:
        ctx: the report's context (axes, baseline, styles, which cells learned).
        positions: :func:`ablate.results.positions.frame.load_positions`; ``None`` or empty says there are none.
    """
    if positions is None or positions.empty or not ctx.axes or ctx.axes[0] not in positions.columns:
        return Section(TITLE, [Paragraph(
            "No by-position results: language-modelling and sequence tasks store loss and accuracy at every token "
            "position (results stored before ablate did so have none); a classification task has one label per "
            "sequence.")])
    axis = ctx.axes[0]
    value = "loss" if ctx.metric in LOSS_METRICS else "accuracy"
    rows = learned_rows(ctx, positions.assign(kind="train"))
    blocks: list[Any] = []
    tasks = list(pd.unique(rows["task"])) if "task" in rows.columns else [None]
    for i, task in enumerate(tasks):
        one = rows[rows["task"].eq(task)] if task is not None else rows
        if one.empty:
            continue
        length = int(one["eval_length"].max())
        one, fixed = stats.hold_fixed(one[one["eval_length"].eq(length)].assign(metric=value), [axis, "position"],
                                      reference=ctx.df, baseline=ctx.baseline)
        train_length = one["train_length"].dropna().min() if "train_length" in one.columns else None
        held = f" ({stats.describe(fixed)})" if fixed else ""
        on = f" on {task}" if len(tasks) > 1 else ""
        figure = by_position_figure(one, axis=axis, value=value, train_length=train_length, styles=ctx.styles,
                                    title=f"{value.capitalize()} by position at length {length}{on}{held}")
        blocks.append(Image(f"by-position-{i}", f"{value.capitalize()} at each token position{on} of the longest "
                            f"evaluation length ({length}), mean over seeds with a 95% band, positions pooled into "
                            "bins of equal width; dashed: the train length, past which no position was trained. "
                            "Cells that did not learn at the train length, or cannot by construction, are left out.",
                            figure))
    if not blocks:
        return Section(TITLE, [Paragraph("No by-position figure: no cell that learned the task stored positions.")])
    return Section(TITLE, blocks)
