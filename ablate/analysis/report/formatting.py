"""Numbers as report text: fixed rules, so the same frame always gives the same characters."""

from __future__ import annotations

import math
from typing import Any

from ablate.analysis.plots import metric_scale
from ablate.analysis.stats.verdict import VERDICTS

MARKS = {"better": "▲", "worse": "▼"}


def number(value: Any, digits: int = 3) -> str:
    """``digits`` significant figures; thousands separators from 10,000; ``n/a`` for NaN/None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a" if value is None or math.isnan(value) else ("∞" if value > 0 else "-∞")
    value = float(value)
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.{digits - 1}e}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def value(x: Any, metric: str) -> str:
    """A metric value in display units (bytes as MiB)."""
    return number(None if x is None else float(x) * metric_scale(metric))


def signed(x: Any, metric: str) -> str:
    """A difference with an explicit sign."""
    text = value(x, metric)
    return text if text.startswith(("-", "n/a")) else f"+{text}"


def pvalue(p: Any) -> str:
    """``<0.001`` or three decimals; ``n/a`` when no test was run."""
    if p is None or not math.isfinite(float(p)):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def interval(low: Any, high: Any, metric: str) -> str:
    """``[low, high]`` or ``n/a``."""
    if low is None or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return "n/a"
    return f"[{value(low, metric)}, {value(high, metric)}]"


def mean_pm(mean: Any, low: Any, high: Any, metric: str) -> str:
    """``mean ± half-width`` of the interval (just the mean when there is none)."""
    if mean is None or not math.isfinite(float(mean)):
        return "n/a"
    if low is None or not math.isfinite(float(low)) or not math.isfinite(float(high)):
        return value(mean, metric)
    return f"{value(mean, metric)} ± {value((float(high) - float(low)) / 2, metric)}"


def verdict(row: Any, metric: str) -> str:
    """A comparison as a table cell: ``▲ better +0.093``, ``undecided +0.01`` or ``not judged``.

    The verdict is the one of :func:`ablate.analysis.stats.decisions.comparisons`; the number its estimate.
    """
    if row["verdict"] not in VERDICTS:
        return str(row["verdict"])
    mark = MARKS.get(row["verdict"], "")
    text = f"{mark} {row['verdict']}".strip()
    return f"{text} {estimate_only(row, metric)}"


def estimate_only(row: Any, metric: str) -> str:
    """The comparison's estimate: a signed difference, or a ratio ``×0.93``."""
    if row.get("scale") == "ratio":
        value_ = row.get("estimate")
        return "n/a" if value_ is None or not math.isfinite(float(value_)) else f"×{number(value_)}"
    return signed(row.get("estimate"), metric)


def estimate(row: Any, metric: str) -> str:
    """``+0.093 [-0.12, +0.31]`` (or ``×0.93 [×0.90, ×0.97]``): the estimate with its interval."""
    low, high = row.get("low"), row.get("high")
    ratio = row.get("scale") == "ratio"
    ends = []
    for end in (low, high):
        if end is None or (isinstance(end, float) and math.isnan(end)):
            ends.append("n/a")
        elif ratio:
            ends.append(f"×{number(end)}" if math.isfinite(float(end)) else ("×∞" if end > 0 else "×0"))
        else:
            ends.append(signed(end, metric) if math.isfinite(float(end)) else ("+∞" if end > 0 else "-∞"))
    return f"{estimate_only(row, metric)} [{ends[0]}, {ends[1]}]"


def margin(value_: Any, scale: str, metric: str) -> str:
    """A margin as it reads: ``±0.02`` on a difference scale, ``×/÷1.05`` on a ratio scale."""
    if value_ is None or not math.isfinite(float(value_)):
        return "n/a"
    if scale == "ratio":
        return f"×/÷{1 + float(value_):g}"
    return f"±{float(value_) * metric_scale(metric):.3g}"


def share(low: Any, high: Any) -> str:
    """An interval of a share of seeds, ``[0.54, 1.00]``."""
    if low is None or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return "n/a"
    return f"[{float(low):.2f}, {float(high):.2f}]"


def p_equals(p: Any) -> str:
    """``p=0.012`` or ``p<0.001``."""
    text = pvalue(p)
    return f"p{text}" if text.startswith("<") else f"p={text}"
