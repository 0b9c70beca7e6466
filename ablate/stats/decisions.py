"""Sequential verdicts on a results frame: every comparison against the baseline, decided or not.

The family is every comparison of the main metric against the baseline (each grid
axis, every other key held fixed, paired by seed) at every evaluation length of the
training runs; each uses ``alpha / m`` (Bonferroni over the ``m`` comparisons) in
the group-sequential design of :mod:`ablate.stats.sequential`. Comparisons past the
train length involving a cell that did not learn the task at the train length, or
cannot by construction, are not judged (an extrapolation verdict on such a cell says
nothing about positions), and neither is a comparison of two cells that both failed to
learn (at any length); they still count in ``m``, so the family is fixed before the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ablate.feasibility import has_learned, unable
from ablate.metrics import higher_is_better
from ablate.stats.frame import baseline_of, cell_keys, describe, grid_axes, ok_rows
from ablate.stats.sequential import UNDECIDED, Design, decide, design

NOT_JUDGED = "not judged"


def looks_of(seeds: Any) -> tuple[int, ...]:
    """Planned looks of a suite's ``seeds``: a list is one look; ``{min, max, step}`` a look per step."""
    if isinstance(seeds, Mapping):
        low, high = int(seeds["min"]), int(seeds["max"])
        step = int(seeds.get("step") or low)
        looks = list(range(low, high + 1, step))
        return tuple(looks if looks[-1] == high else [*looks, high])
    return (max(2, len(seeds) if seeds else 2),)


def cell_status(df: pd.DataFrame, metric: str, threshold: float | None) -> pd.DataFrame:
    """Per cell (keys without ``eval_length``): ``learned`` (mean at the train length reaches ``threshold``)
    and ``unable`` (the reason, when the cell cannot solve its task by construction)."""
    keys = [k for k in cell_keys(df, grid_axes(df)) if k not in ("eval_length", "metric")]
    rows = ok_rows(df, metric)
    at_train = rows[rows["eval_length"].eq(rows["train_length"])] if "train_length" in rows else rows.iloc[:0]
    means = at_train.groupby(keys, dropna=False)["value"].mean() if keys else at_train["value"].agg(["mean"])
    records = []
    for key, group in df[df["metric"].eq(metric)].groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean = means.get(key, np.nan) if keys else np.nan
        config = _config_of(group)
        rule = unable(config) if config is not None else None
        records.append({**dict(zip(keys, key)), "train_mean": mean,
                        "learned": bool(np.isfinite(mean) and has_learned(mean, metric, threshold)),
                        "unable": None if rule is None else f"{rule.name}: {rule.reason}"})
    return pd.DataFrame.from_records(records, columns=[*keys, "train_mean", "learned", "unable"])


def _config_of(group: pd.DataFrame) -> dict[str, Any] | None:
    row = group.iloc[0]
    if "encoding" not in group or "pooling" not in group or "task" not in group:
        return None
    causal = row.get("model.causal", False)
    return {"task": str(row["task"]).split("[")[0],
            "model": {"encoding": str(row["encoding"]).split("[")[0], "pooling": str(row["pooling"]).split("[")[0],
                      "causal": bool(causal) if pd.notna(causal) else False}}


def sequential_comparisons(df: pd.DataFrame, metric: str, *, baseline: Mapping[str, Any] | None = None,
                           alpha: float = 0.05, margin: float = 0.02, threshold: float | None = None,
                           looks: tuple[int, ...] | None = None, spending: str = "pocock",
                           status: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per comparison: keys, ``axis``, ``baseline``, ``context``, ``n``, ``mean_diff`` (oriented:
    positive is better), repeated-CI ``low``/``high``, ``verdict`` (better / worse / equivalent /
    undecided / not judged), ``why`` and ``more_needed``. ``df.attrs["family_size"]`` is ``m``.
    ``status``: the train runs' :func:`cell_status` at ``threshold`` when the caller has it already."""
    axes = grid_axes(df)
    base = baseline_of(df, axes, baseline)
    keys = cell_keys(df, axes)
    train = df[df["kind"].eq("train")] if "kind" in df.columns else df
    seeds = (df.attrs.get("suite_config") or {}).get("seeds") or list(pd.unique(train["seed"].dropna()))
    looks = looks or looks_of(seeds)
    rows = ok_rows(train, metric)
    status = cell_status(train, metric, threshold) if status is None else status
    status_keys = [k for k in keys if k not in ("eval_length", "metric")]
    lookup = {tuple(str(r[k]) for k in status_keys): r for r in status.to_dict("records")}
    sign = 1.0 if higher_is_better(metric, df) else -1.0
    records: list[dict[str, Any]] = []
    for axis in axes:
        held = [k for k in keys if k != axis]
        for fixed, group in rows.groupby(held, dropna=False, sort=False):
            fixed = dict(zip(held, fixed))
            reference = group[group[axis].eq(base[axis])].groupby("seed")["value"].mean()
            if reference.empty:
                continue
            for value in pd.unique(group[axis]):
                if value == base[axis]:
                    continue
                treated = group[group[axis].eq(value)].groupby("seed")["value"].mean()
                joined = pd.concat([treated.rename("x"), reference.rename("y")], axis=1, join="inner")
                cell = {**fixed, axis: value}
                mine = lookup.get(tuple(str(cell[k]) for k in status_keys), {})
                theirs = lookup.get(tuple(str({**fixed, axis: base[axis]}[k]) for k in status_keys), {})
                records.append({**cell, "axis": axis, "baseline": base[axis], "context": describe(
                    {k: v for k, v in fixed.items() if k not in ("metric", "eval_length", "kind")
                     and df[k].nunique() > 1}), "differences": (joined["x"] - joined["y"]).to_numpy() * sign,
                    "why": _not_judged(fixed.get("eval_length"), _train_length(group), mine, theirs)})
    family = max(1, len(records))
    plan = design(looks, alpha / family, spending)
    out = [_row(record, plan, margin) for record in records]
    frame = pd.DataFrame.from_records(out, columns=[*keys, "axis", "baseline", "context", "n", "mean_diff", "low",
                                                    "high", "verdict", "why", "more_needed"])
    frame.attrs.update(family_size=family, looks=looks, alpha=alpha, margin=margin, boundaries=plan.boundaries)
    return frame


def _train_length(group: pd.DataFrame) -> Any:
    lengths = pd.unique(group["train_length"].dropna()) if "train_length" in group else []
    return lengths[0] if len(lengths) == 1 else None


def _learned(cell: Mapping[str, Any]) -> bool:
    return not isinstance(cell.get("unable"), str) and bool(cell.get("learned", True))


def _not_judged(length: Any, train_length: Any, mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> str | None:
    if mine and theirs and not _learned(mine) and not _learned(theirs):
        return "neither cell learned the task at the train length"
    if length is None or train_length is None or length == train_length:
        return None
    for cell in (mine, theirs):
        if isinstance(cell.get("unable"), str):
            return "a cell cannot solve the task by construction"
        if cell and not cell.get("learned", True):
            return "a cell did not learn the task at the train length"
    return None


def _row(record: dict[str, Any], plan: Design, margin: float) -> dict[str, Any]:
    differences = record.pop("differences")
    decision = decide(differences, plan, margin)
    if record["why"] is not None:
        return {**record, "n": decision.n, "mean_diff": decision.mean, "low": np.nan, "high": np.nan,
                "verdict": NOT_JUDGED, "more_needed": None}
    why = {UNDECIDED: "interval straddles 0 and the margin"}.get(decision.verdict, "repeated interval decides")
    return {**record, "n": decision.n, "mean_diff": decision.mean, "low": decision.low, "high": decision.high,
            "verdict": decision.verdict, "why": why, "more_needed": decision.more_needed}
