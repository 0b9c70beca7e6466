"""Metric names, their direction, range and equivalence margin, so "better" is never guessed.

A metric's *scale* says how two runs are compared: ``difference`` (accuracy points,
nats) or ``ratio`` (perplexity, time, memory: ``treatment / baseline``). Its *range*
(accuracy in ``[0, 1]``) is what makes a distribution-free interval for its mean
possible; a metric without one (a loss, a time) is compared through its median.
The default margin is the smallest difference worth a verdict, in the scale's
terms: 0.02 is two points of accuracy, 0.05 on a ratio scale is 5%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ablate.core.registry import UnknownNameError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction and unit (for tables and axis labels)."""

    name: str
    higher_is_better: bool
    unit: str = ""
    label: str = ""
    #: The values a run can take (``None``: unbounded); intervals are kept inside it.
    bounds: tuple[float, float] | None = None
    #: ``"difference"`` (``treatment - baseline``) or ``"ratio"`` (``treatment / baseline``).
    scale: str = "difference"
    #: Default equivalence margin: points on a difference scale, a relative amount on a ratio scale.
    margin: float = 0.05

    def __post_init__(self) -> None:
        if self.scale not in ("difference", "ratio"):
            raise ValueError(f"metric {self.name!r}: scale must be 'difference' or 'ratio', got {self.scale!r}")
        if self.margin <= 0:
            raise ValueError(f"metric {self.name!r}: margin must be > 0, got {self.margin}")

    @property
    def display(self) -> str:
        """Axis/table label, e.g. ``"peak memory (MiB)"``."""
        text = self.label or self.name.replace("_", " ")
        return f"{text} ({self.unit})" if self.unit else text


UNIT = (0.0, 1.0)
PERPLEXITY_5_PERCENT = math.log(1.05)

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", True, label="accuracy", bounds=UNIT, margin=0.02),
        Metric("token_accuracy", True, label="per-token accuracy", bounds=UNIT, margin=0.02),
        Metric("exact_match", True, label="exact match", bounds=UNIT, margin=0.02),
        # Loss differences in nats are log perplexity ratios: the margin is a 5% perplexity ratio.
        Metric("loss", False, "nats/token", "loss", margin=PERPLEXITY_5_PERCENT),
        Metric("perplexity", False, label="perplexity", scale="ratio"),
        Metric("bits_per_char", False, "bits/char", "bits per character", margin=PERPLEXITY_5_PERCENT / math.log(2)),
        Metric("train_loss", False, "nats/token", "final training loss", margin=PERPLEXITY_5_PERCENT),
        Metric("finetune_loss", False, "nats/token", "final loss of a variant's fine-tune", margin=PERPLEXITY_5_PERCENT),
        Metric("train_time_s", False, "s", "training time", scale="ratio"),
        Metric("steps_used", False, "steps", "optimiser steps used", scale="ratio"),
        Metric("criterion_met", True, label="training criterion met (1/0)", bounds=UNIT, margin=0.1),
        Metric("held_out", True, label="validation/test held out from training (1/0)", bounds=UNIT, margin=0.1),
        Metric("eval_time_s", False, "s", "evaluation time", scale="ratio"),
        Metric("tokens_per_s", True, "tokens/s", "throughput", scale="ratio"),
        Metric("time_median_s", False, "s", "median step time", scale="ratio"),
        Metric("time_iqr_s", False, "s", "step time IQR", scale="ratio"),
        Metric("instructions", False, "instructions", "instructions per step (callgrind)", scale="ratio"),
        Metric("peak_memory_bytes", False, "bytes", "peak memory", scale="ratio"),
        Metric("peak_reserved_bytes", False, "bytes", "peak reserved memory", scale="ratio"),
    ]
}


def metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``; unknown names raise with a suggestion."""
    if name not in METRICS:
        raise UnknownNameError("metric", name, list(METRICS))
    return METRICS[name]


def higher_is_better(name: str, df: pd.DataFrame | None = None) -> bool:
    """Direction of metric ``name``: from :data:`METRICS`, else from ``df``'s ``higher_is_better`` column.

    The one place a metric's direction is decided; a results frame carries the
    direction of metrics this version does not know (stored by another version).
    """
    if name in METRICS or df is None or "higher_is_better" not in df.columns:
        return metric(name).higher_is_better
    known = df.loc[df["metric"].eq(name), "higher_is_better"].dropna()
    if len(known):
        return bool(known.iloc[0])
    raise ValueError(f"direction of metric {name!r} is unknown: add it to ablate.core.metrics.METRICS")
