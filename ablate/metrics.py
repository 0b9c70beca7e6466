"""Metric names and their direction, so "better" is never guessed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ablate.registry import UnknownNameError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction and unit (for tables and axis labels)."""

    name: str
    higher_is_better: bool
    unit: str = ""
    label: str = ""

    @property
    def display(self) -> str:
        """Axis/table label, e.g. ``"peak memory (MiB)"``."""
        text = self.label or self.name.replace("_", " ")
        return f"{text} ({self.unit})" if self.unit else text


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", True, label="accuracy"),
        Metric("token_accuracy", True, label="per-token accuracy"),
        Metric("exact_match", True, label="exact match"),
        Metric("loss", False, "nats/token", "loss"),
        Metric("perplexity", False, label="perplexity"),
        Metric("bits_per_char", False, "bits/char", "bits per character"),
        Metric("train_loss", False, "nats/token", "final training loss"),
        Metric("finetune_loss", False, "nats/token", "final loss of a variant's fine-tune"),
        Metric("train_time_s", False, "s", "training time"),
        Metric("steps_used", False, "steps", "optimiser steps used"),
        Metric("criterion_met", True, label="training criterion met (1/0)"),
        Metric("held_out", True, label="validation/test held out from training (1/0)"),
        Metric("eval_time_s", False, "s", "evaluation time"),
        Metric("tokens_per_s", True, "tokens/s", "throughput"),
        Metric("time_median_s", False, "s", "median step time"),
        Metric("time_iqr_s", False, "s", "step time IQR"),
        Metric("peak_memory_bytes", False, "bytes", "peak memory"),
        Metric("peak_reserved_bytes", False, "bytes", "peak reserved memory"),
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
    raise ValueError(f"direction of metric {name!r} is unknown: add it to ablate.metrics.METRICS")
