"""Checks of command-line values, so a mistake is one line with a suggestion, never a traceback."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ablate.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (``--workers``, ``--threads``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value} (e.g. 1, or the number of cores)")
    return value


def _suggest(wanted: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(wanted, choices, n=1, cutoff=0.5) or [c for c in choices if c.startswith(wanted)][:1]
    return f" Did you mean {close[0]!r}?" if close else ""


def check_report_options(frame: pd.DataFrame, main_metric: str | None, baseline: Mapping[str, str] | None) -> None:
    """Raise :class:`UserError` if ``--main-metric`` or ``--baseline AXIS=VALUE`` does not fit the results."""
    import pandas as pd

    from ablate.stats.frame import column_of, grid_axes

    if main_metric is not None:
        metrics = sorted(str(m) for m in pd.unique(frame["metric"].dropna()))
        if main_metric not in metrics:
            raise UserError(f"--main-metric {main_metric!r} is not in these results.{_suggest(main_metric, metrics)} "
                            f"Metrics: {', '.join(metrics)}")
    axes = grid_axes(frame)
    for axis, value in (baseline or {}).items():
        column = column_of(axis)
        if column not in axes:
            raise UserError(f"--baseline {axis}={value}: {axis!r} is not a grid axis of these results.{_suggest(column, axes)} "
                            f"Axes: {', '.join(axes) or 'none (nothing varies)'}")
        values = [str(v) for v in pd.unique(frame[column].dropna())]
        if str(value) not in values:
            raise UserError(f"--baseline {axis}={value}: {value!r} is not a value of {column}.{_suggest(str(value), values)} "
                            f"Values: {', '.join(values)}")


def fraction(text: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1 (``--accuracy-drop 0.03`` = 3 points)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.03, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (0.03 = 3 points), got {value:g}")
    return value
