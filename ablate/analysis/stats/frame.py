"""Reading the tidy results frame: grid axes, baselines, cells and directions.

Every statistic groups rows into *cells*: one configuration (all grid axes and any
other config column that varies), one metric, one evaluation length, pooled over
seeds. The helpers here decide what a cell is, so that summaries, paired tests,
plots and the report all agree on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd


#: Columns of the tidy frame that describe a result, not a configuration.
RESULT_COLUMNS = frozenset(
    {"run_id", "suite", "kind", "status", "run_status", "reason", "note", "metric", "value", "eval_length",
     "higher_is_better", "wall_s", "work_s", "started_at", "attempts"}
)
#: Config paths whose tidy column has a short name (mirrors ``ablate.results.store.AXIS_COLUMNS``).
_AXIS_ALIASES = {"model.encoding": "encoding", "model.pooling": "pooling", "train.length": "train_length"}
#: Inferred axes come in this order first, then the remaining columns in frame order.
_PREFERRED_AXES = ("encoding", "pooling", "task", "train_length")


def column_of(axis: str) -> str:
    """The frame column of a grid axis path (``model.encoding`` -> ``encoding``)."""
    return _AXIS_ALIASES.get(axis, axis)


def config_columns(df: pd.DataFrame) -> list[str]:
    """Flattened configuration columns (everything but results, ``env.*`` and ``run_id``)."""
    return [c for c in df.columns if c not in RESULT_COLUMNS and not str(c).startswith("env.")]


def grid_axes(df: pd.DataFrame) -> list[str]:
    """Grid axis columns: ``df.attrs["axes"]`` when present, else inferred.

    Inferred axes are the config columns with more than one distinct value,
    excluding ``seed``, ``measure.*`` (how a cost was measured, not what was
    ablated) and columns that merely repeat an earlier axis (``train.length``
    beside ``train_length``).
    """
    declared = [column_of(str(a)) for a in df.attrs.get("axes") or []]
    declared = [a for a in dict.fromkeys(declared) if a in df.columns and a != "seed"]
    if declared:
        return declared
    candidates = [c for c in config_columns(df) if c != "seed" and not str(c).startswith("measure.")]
    candidates.sort(key=lambda c: _PREFERRED_AXES.index(c) if c in _PREFERRED_AXES else len(_PREFERRED_AXES))
    axes: list[str] = []
    for column in candidates:
        if df[column].nunique(dropna=True) > 1 and not (axes and _determined(df, axes, column)):
            axes.append(column)
    return axes


def baseline_of(
    df: pd.DataFrame, axes: Iterable[str] | None = None, override: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Baseline value of each axis: ``override``, then ``df.attrs["baseline"]``, then the first value seen.

    Raises:
        ValueError: an override names an axis value that is not in the frame.
    """
    axes = list(axes) if axes is not None else grid_axes(df)
    # The stored baseline is the suite's; a slice of its results (cells that did not learn
    # left out, say) may lack it, and then the first value stands in. An override must exist.
    stored = {column_of(str(k)): v for k, v in (df.attrs.get("baseline") or {}).items()}
    wanted = {k: v for k, v in stored.items() if k in df.columns and _present(df[k], v)}
    for key, value in (override or {}).items():
        if column_of(str(key)) not in df.columns:
            raise ValueError(f"baseline names {key!r}, which is not a column of the results; axes are {axes}")
        wanted[column_of(str(key))] = value
    baseline: dict[str, Any] = {}
    for axis in dict.fromkeys([*axes, *wanted]):
        if axis not in df.columns:
            continue
        present = list(pd.unique(df[axis].dropna()))
        if not present:
            continue
        if axis not in wanted:
            baseline[axis] = present[0]
            continue
        match = [v for v in present if v == wanted[axis]] or [v for v in present if str(v) == str(wanted[axis])]
        if not match:
            raise ValueError(
                f"baseline {axis}={wanted[axis]!r} is not in the results; "
                f"{axis} takes the values {', '.join(map(str, present))}"
            )
        baseline[axis] = match[0]
    return baseline


def _present(column: pd.Series, value: Any) -> bool:
    return bool(column.eq(value).any() or column.astype(str).eq(str(value)).any())


def cell_keys(df: pd.DataFrame, axes: Iterable[str] | None = None) -> list[str]:
    """Columns that identify a cell: kind, task, axes, other varying config, metric, eval_length.

    Any config column (other than ``seed``) that still varies once the axes are
    fixed is added, so a cell never mixes two configurations, e.g. the
    ``measure.mode`` of cost rows.
    """
    axes = list(axes) if axes is not None else grid_axes(df)
    keys = [c for c in dict.fromkeys(["kind", "task", *axes]) if c in df.columns]
    tail = [c for c in ("metric", "eval_length") if c in df.columns]
    for column in config_columns(df):
        if column not in keys and column != "seed" and not _determined(df, keys + tail, column):
            keys.append(column)
    return keys + tail


def _determined(df: pd.DataFrame, keys: list[str], column: str) -> bool:
    """Whether ``column`` takes one value (NaN counts as one) within every group of ``keys``."""
    if not keys:
        return df[column].nunique(dropna=False) <= 1
    counts = df.groupby(keys, dropna=False, sort=False)[column].nunique(dropna=False)
    return bool(counts.max() <= 1) if len(counts) else True


def ok_rows(df: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Rows with ``status == "ok"`` and a finite value (optionally of one metric)."""
    mask = df["metric"].notna() & np.isfinite(pd.to_numeric(df["value"], errors="coerce"))
    if "status" in df.columns:
        mask &= df["status"].eq("ok")
    if metric is not None:
        mask &= df["metric"].eq(metric)
    return df[mask]


def select(df: pd.DataFrame, where: Mapping[str, Any] | None) -> pd.DataFrame:
    """Rows matching every ``column == value`` in ``where``; unknown columns raise ``ValueError``."""
    mask = pd.Series(True, index=df.index)
    for column, value in (where or {}).items():
        column = column_of(column)
        if column not in df.columns:
            raise ValueError(f"cannot select on {column!r}: not a column of the results")
        mask &= df[column].eq(value) | df[column].astype(str).eq(str(value))
    return df[mask]


def describe(values: Mapping[str, Any]) -> str:
    """``"pooling=mean, task=order"``: a compact label for a group of fixed values."""
    return ", ".join(f"{k}={_plain(v)}" for k, v in values.items())


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def in_distribution_length(df: pd.DataFrame, metric: str) -> int:
    """The evaluation length to headline ``metric`` at: the train length when it was evaluated, else the shortest.

    Raises:
        ValueError: ``metric`` has no rows.
    """
    rows = df[df["metric"].eq(metric)]
    if rows.empty:
        raise ValueError(f"no rows of metric {metric!r}; metrics present: {sorted(df['metric'].dropna().unique())}")
    if "train_length" in rows.columns:
        at_train = rows.loc[rows["eval_length"].eq(rows["train_length"]), "eval_length"]
        if len(at_train):
            return int(at_train.value_counts(sort=True).index[0])
    return int(rows["eval_length"].min())


def hold_fixed(
    rows: pd.DataFrame,
    keep: Iterable[str],
    *,
    reference: pd.DataFrame | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fix every cell key outside ``keep`` to one value, so ``rows`` vary only along ``keep``.

    The value is the baseline where it was run, else the first value seen; the
    returned dict says what was fixed (figure titles and table captions print it).

    Args:
        rows: the rows to narrow (e.g. one metric).
        keep: columns left free (``metric``, ``eval_length`` and ``kind`` always are).
        reference: the full frame whose axes, baseline and cell keys apply (default ``rows``).
        baseline: ``{axis: value}`` overrides.
    """
    reference = rows if reference is None else reference
    axes = grid_axes(reference)
    base = baseline_of(reference, axes, baseline)
    keep = {*keep, "metric", "eval_length", "kind"}
    fixed: dict[str, Any] = {}
    for key in cell_keys(reference, axes):
        if key in keep or key not in rows.columns:
            continue
        values = list(pd.unique(rows[key]))
        if len(values) > 1:
            chosen = base[key] if key in base and base[key] in values else values[0]
            rows = rows[rows[key].eq(chosen)]
            fixed[key] = chosen
    return rows, fixed
