"""What every report section needs, computed once per report: :class:`Context` and the headline metric."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ablate import stats
from ablate.feasibility import learned_threshold
from ablate.plots import Style, value_styles
from ablate.stats.decisions import cell_status

#: Headline metric when neither the caller nor the suite's ``[report]`` names one (first present wins).
PREFERRED_METRICS = ("accuracy", "exact_match", "token_accuracy", "bits_per_char", "loss", "perplexity")


@dataclass
class Context:
    """What every section needs, computed once."""

    df: pd.DataFrame
    axes: list[str]
    baseline: dict[str, Any]
    metric: str | None
    length: int | None
    cells: pd.DataFrame
    comparisons: pd.DataFrame
    styles: Mapping[Any, Style]
    alpha: float
    #: The train-length value a cell must reach to count as having learned (``None``: no threshold).
    threshold: float | None = None
    #: Per cell of the train runs: learned at the train length, unable by construction
    #: (:func:`ablate.stats.decisions.cell_status`); ``None`` without a metric.
    cell_status: pd.DataFrame | None = None


def report_settings(df: pd.DataFrame) -> dict[str, Any]:
    """The suite's ``[report]`` settings the findings use, with the schema's defaults for old results."""
    report = ((df.attrs.get("suite_config") or {}).get("report") or {})
    return {"alpha": report.get("alpha", 0.05), "margin": report.get("margin", 0.02),
            "learned_threshold": report.get("learned_threshold"), "spending": report.get("spending", "pocock")}


def choose_main_metric(df: pd.DataFrame, requested: str | None = None) -> str | None:
    """The headline metric: ``requested``, else the suite's ``report.main_metric``, else a preferred one.

    Raises:
        ValueError: ``requested`` is not in the results.
    """
    present = [m for m in pd.unique(df["metric"].dropna())]
    if requested is not None:
        if requested not in present:
            raise ValueError(f"main metric {requested!r} is not in the results; present: {', '.join(present)}")
        return requested
    configured = ((df.attrs.get("suite_config") or {}).get("report") or {}).get("main_metric")
    if configured in present:
        return configured
    for name in PREFERRED_METRICS:
        if name in present:
            return name
    train = df.loc[df["kind"].eq("train"), "metric"].dropna() if "kind" in df.columns else pd.Series([], dtype=str)
    return str(train.iloc[0]) if len(train) else None


def build_context(df: pd.DataFrame, metric: str | None, baseline: Mapping[str, Any] | None,
                  alpha: float) -> Context:
    axes = stats.grid_axes(df)
    base = stats.baseline_of(df, axes, baseline)
    cells = stats.summarize(df)
    comparisons = stats.paired_comparisons(df, metric=metric, baseline=base, alpha=alpha) if metric else None
    length = stats.in_distribution_length(df, metric) if metric else None
    styles = value_styles(df, axes[0] if axes else "encoding")
    threshold, status = None, None
    if metric:
        threshold = learned_threshold(metric, report_settings(df)["learned_threshold"])
        train = df[df["kind"].eq("train")] if "kind" in df.columns else df
        status = cell_status(train, metric, threshold)  # once: the findings and the extrapolation share it
    return Context(df, axes, base, metric, length, cells, comparisons, styles, alpha, threshold, status)


def excluded_cells(ctx: Context) -> tuple[pd.DataFrame, list[str]]:
    """The cells whose numbers past the train length are no extrapolation result, and the keys naming a cell.

    A cell is excluded when it cannot solve the task by construction or did not learn it
    at the train length (:attr:`Context.cell_status`); none without a status.
    """
    status = ctx.cell_status
    if status is None or status.empty:
        return pd.DataFrame(), []
    keys = [c for c in status.columns if c not in ("train_mean", "learned", "unable")]
    return status[status["unable"].notna() | ~status["learned"]], keys


def learned_rows(ctx: Context, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame`` (default ``ctx.df``) without the training rows of :func:`excluded_cells` (measurements stay)."""
    frame = ctx.df if frame is None else frame
    excluded, keys = excluded_cells(ctx)
    if excluded.empty or not keys or "kind" not in frame.columns or not set(keys) <= set(frame.columns):
        return frame
    marks = set(map(tuple, excluded[keys].astype(str).to_numpy()))
    drop = frame["kind"].eq("train") & frame[keys].astype(str).apply(tuple, axis=1).isin(marks)
    return frame[~drop]
