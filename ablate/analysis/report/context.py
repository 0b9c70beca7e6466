"""What every report section needs, computed once per report: :class:`Context` and the headline metric."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ablate.analysis import stats
from ablate.analysis.feasibility import learned_threshold
from ablate.analysis.plots import Style, value_styles
from ablate.analysis.stats.decisions import LEARN_COLUMNS, comparisons, learn_status, learned_by_seed

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
    #: The one table of verdicts of the main metric (:func:`ablate.analysis.stats.decisions.comparisons`);
    #: every section that shows a verdict reads it. ``None`` without a metric.
    comparisons: pd.DataFrame | None
    styles: Mapping[Any, Style]
    alpha: float
    #: The train-length value a seed must reach to count as having learned (``None``: no threshold).
    threshold: float | None = None
    #: Per cell of the train runs: learn rate and status, unable by construction
    #: (:func:`ablate.analysis.stats.decisions.learn_status`); ``None`` without a metric.
    cell_status: pd.DataFrame | None = None
    #: ``{metric: margin}`` of the suite's ``[report.margins]``.
    margins: Mapping[str, float] | None = None
    #: Whether this report judges comparisons (``False``: a claim's report, whose predicates are its verdicts).
    verdicts: bool = True
    #: Training runs whose numbers past the train length are no extrapolation result (:func:`dropped_runs`).
    dropped: frozenset[str] = frozenset()


def report_settings(df: pd.DataFrame) -> dict[str, Any]:
    """The suite's ``[report]`` settings the verdicts use, with the schema's defaults for old results."""
    report = ((df.attrs.get("suite_config") or {}).get("report") or {})
    return {"alpha": report.get("alpha", 0.05), "margins": dict(report.get("margins") or {}),
            "learned_threshold": report.get("learned_threshold")}


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
                  alpha: float | None = None, *, verdicts: bool = True) -> Context:
    """Everything the sections share; ``alpha`` overrides the suite's ``[report] alpha``; without
    ``verdicts`` no comparison is judged (the table is ``None``)."""
    settings = report_settings(df)
    alpha = settings["alpha"] if alpha is None else alpha
    axes = stats.grid_axes(df)
    base = stats.baseline_of(df, axes, baseline)
    cells = stats.summarize(df)
    length = stats.in_distribution_length(df, metric) if metric else None
    styles = value_styles(df, axes[0] if axes else "encoding")
    threshold, status, table = None, None, None
    if metric:
        threshold = learned_threshold(metric, settings["learned_threshold"])
        status = learn_status(df, metric, threshold, alpha)  # once: every section shares it
        table = comparisons(df, metric, baseline=base, alpha=alpha, margins=settings["margins"], threshold=threshold,
                            status=status) if verdicts else None
    return Context(df, axes, base, metric, length, cells, table, styles, alpha, threshold, status,
                   settings["margins"], verdicts, _dropped(df, metric, threshold, status))


def dropped_runs(ctx: Context) -> set[str]:
    """Training runs whose numbers past the train length are no extrapolation result: the seeds that did
    not learn the task at the train length, and every run of a cell that cannot by construction."""
    return set(ctx.dropped)


def _dropped(df: pd.DataFrame, metric: str | None, threshold: float | None,
             status: pd.DataFrame | None) -> frozenset[str]:
    """:func:`dropped_runs`, computed once when the context is built."""
    if metric is None or status is None or status.empty or "kind" not in df.columns:
        return frozenset()
    keys = [c for c in status.columns if c not in LEARN_COLUMNS]
    seeds = learned_by_seed(df, metric, threshold)
    unable = set(map(tuple, status.loc[status["unable"].notna(), keys].astype(str).to_numpy()))
    cells = map(tuple, seeds[keys].astype(str).to_numpy())
    return frozenset(run for run, learned, cell in zip(seeds["run_id"], seeds["learned"], cells)
                     if not learned or cell in unable)


def learned_rows(ctx: Context, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame`` (default ``ctx.df``) without the training rows of :func:`dropped_runs` (measurements stay)."""
    frame = ctx.df if frame is None else frame
    dropped = dropped_runs(ctx)
    if not dropped or "kind" not in frame.columns or "run_id" not in frame.columns:
        return frame
    kept = frame[~(frame["kind"].eq("train") & frame["run_id"].isin(dropped))]
    kept.attrs = {**frame.attrs, "axes": ctx.axes}  # the whole grid's axes, even where a slice no longer varies
    return kept
