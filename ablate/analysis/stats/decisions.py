"""Every comparison of a results frame against its baseline, with one verdict each, and each cell's learn rate.

:func:`comparisons` is the one table of verdicts: the report's findings, heatmap,
significance table and ``comparisons.csv``, and the adaptive seeds
(:func:`ablate.run.adaptive.undecided_comparisons`) all read it. Its rows compare each
non-baseline value of each grid axis with the baseline value, every other key held
fixed, paired by seed, at every evaluation length of the training runs, and each
row's verdict comes from :func:`ablate.analysis.stats.verdict.judge` at ``alpha / m``
(Bonferroni over the ``m`` judged comparisons).

Learning is its own binary outcome per seed: a run *learned* when its metric at
the train length reaches the threshold (a run that failed or diverged did not).
:func:`learn_status` gives each cell's learn rate with a confidence sequence; a
cell "did not learn" only when the whole interval lies below 1/2 (most seeds fail,
decided), "learns" when it lies above, and is "open" otherwise. Comparisons:

* involving a cell *unable by construction* (:mod:`ablate.analysis.feasibility`) are not
  judged and not in the family: the outcome is known before any run;
* past the train length use only the seeds where both cells learned (an
  extrapolation result needs a model that learned the task), and are not judged
  when either cell did not learn;
* of two cells that both did not learn are not judged at any length.

Not-judged rows of learned-dependent reasons stay in ``m``: the family is fixed by
the grid, not by the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ablate.analysis.feasibility import has_learned, unable
from ablate.core.metrics import METRICS, Metric, higher_is_better
from ablate.analysis.stats.confidence import rate_interval
from ablate.analysis.stats.frame import baseline_of, cell_keys, describe, grid_axes, ok_rows
from ablate.analysis.stats.paired import paired_test
from ablate.analysis.stats.verdict import UNDECIDED, judge, margin_of, pairs_needed

NOT_JUDGED = "not judged"
#: What each verdict rests on, for the table's ``why`` column.
WHY = {"better": "wins more paired seeds than it loses", "worse": "loses more paired seeds than it wins",
       "equivalent": "the interval lies inside the margin",
       "undecided": "the share of wins and the interval leave both sides open"}
LEARNS, DID_NOT_LEARN, OPEN, NO_THRESHOLD = "learns", "did not learn", "open", "no threshold"
#: Columns of :func:`learn_status` besides the cell keys.
LEARN_COLUMNS = ["seeds", "learned", "rate_low", "rate_high", "status", "train_mean", "unable"]
#: Columns of :func:`comparisons` besides the cell keys.
COLUMNS = ["axis", "baseline", "context", "n", "wins", "losses", "ties", "win_low", "win_high", "estimand",
           "estimate", "low", "high", "scale", "margin", "verdict", "why", "needed", "p_wilcoxon", "d_z",
           "cliffs_delta"]


def metric_spec(metric: str, df: pd.DataFrame | None = None) -> Metric:
    """The :class:`~ablate.core.metrics.Metric` of ``metric``; one stored by another version gets no range."""
    if metric in METRICS:
        return METRICS[metric]
    return Metric(metric, higher_is_better(metric, df))


def _train(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["kind"].eq("train")] if "kind" in df.columns else df


def _status_keys(train: pd.DataFrame) -> list[str]:
    """The keys of a cell of training runs (everything but the metric and the evaluation length)."""
    return [k for k in cell_keys(train, grid_axes(train)) if k not in ("eval_length", "metric")]


def learned_by_seed(df: pd.DataFrame, metric: str, threshold: float | None) -> pd.DataFrame:
    """One row per training run: its cell keys, ``seed`` and ``learned`` (reached ``threshold`` at the train length)."""
    train = _train(df)
    keys = _status_keys(train)
    runs = train[train["metric"].eq(metric) | train["metric"].isna()].drop_duplicates("run_id")
    rows = ok_rows(train, metric)
    if "train_length" in rows.columns:
        rows = rows[rows["eval_length"].eq(rows["train_length"])]
    value = rows.groupby("run_id")["value"].mean()
    learned = [bool(run in value.index and has_learned(float(value[run]), metric, threshold))
               for run in runs["run_id"]]
    return runs[[*keys, "seed", "run_id"]].assign(learned=learned).reset_index(drop=True)


def learn_status(df: pd.DataFrame, metric: str, threshold: float | None, alpha: float = 0.05) -> pd.DataFrame:
    """Per cell: ``seeds``, ``learned`` (count), ``rate_low``/``rate_high`` (a confidence sequence at ``alpha``
    over the cells, Bonferroni), ``status`` (learns / did not learn / open / no threshold), ``train_mean``
    and ``unable`` (the reason a cell cannot solve its task by construction, else ``None``)."""
    train = _train(df)
    keys = _status_keys(train)
    columns = [*keys, *LEARN_COLUMNS]
    seeds = learned_by_seed(train, metric, threshold)
    if seeds.empty:
        return pd.DataFrame(columns=columns)
    rows = ok_rows(train, metric)
    at_train = rows[rows["eval_length"].eq(rows["train_length"])] if "train_length" in rows else rows.iloc[:0]
    means = at_train.groupby(keys, dropna=False)["value"].mean() if keys else None
    groups = list(seeds.groupby(keys, dropna=False, sort=False)) if keys else [((), seeds)]
    per_cell = alpha / max(1, len(groups))
    records = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        count, learned = len(group), int(group["learned"].sum())
        low, high = rate_interval(learned, count, per_cell)
        if threshold is None:
            status = NO_THRESHOLD
        else:
            status = LEARNS if low > 0.5 else DID_NOT_LEARN if high < 0.5 else OPEN
        config = _config_of(train[train["run_id"].isin(group["run_id"])])
        rule = unable(config) if config is not None else None
        mean = means.get(key, np.nan) if means is not None else np.nan
        records.append({**dict(zip(keys, key)), "seeds": count, "learned": learned, "rate_low": low,
                        "rate_high": high, "status": status, "train_mean": mean,
                        "unable": None if rule is None else f"{rule.name}: {rule.reason}"})
    return pd.DataFrame.from_records(records, columns=columns)


def _config_of(group: pd.DataFrame) -> dict[str, Any] | None:
    if group.empty or "encoding" not in group or "pooling" not in group or "task" not in group:
        return None
    row = group.iloc[0]
    causal = row.get("model.causal", False)
    return {"task": str(row["task"]).split("[")[0],
            "model": {"encoding": str(row["encoding"]).split("[")[0], "pooling": str(row["pooling"]).split("[")[0],
                      "causal": bool(causal) if pd.notna(causal) else False}}


def comparisons(df: pd.DataFrame, metric: str, *, baseline: Mapping[str, Any] | None = None, alpha: float = 0.05,
                margins: Mapping[str, float] | None = None, threshold: float | None = None,
                status: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per comparison of the training runs' ``metric`` against the baseline (see the module docstring).

    Args:
        df: the tidy results frame.
        metric: the compared metric.
        baseline: ``{axis: value}`` overrides of the suite's baseline.
        alpha: family-wise error rate; each judged comparison gets ``alpha / m``.
        margins: ``{metric: margin}`` (the suite's ``[report.margins]``); default the metric's own.
        threshold: the train-length value a seed must reach to count as learned (``None``: every seed learned).
        status: :func:`learn_status` when the caller has it already.

    Returns:
        The cell keys plus :data:`COLUMNS`; ``attrs``: ``family_size``, ``alpha``, ``margin``, ``metric``.
    """
    if "seed" not in df.columns:
        raise ValueError("comparisons need a 'seed' column to pair runs by")
    train = _train(df)
    axes = grid_axes(train)
    base = baseline_of(train, axes, baseline)
    keys = cell_keys(train, axes)
    spec = metric_spec(metric, df)
    margin = margin_of(metric, dict(margins or {}))
    status = learn_status(train, metric, threshold, alpha) if status is None else status
    status_keys = _status_keys(train)
    lookup = {tuple(str(r[k]) for k in status_keys): r for r in status.to_dict("records")}
    seeds = learned_by_seed(train, metric, threshold)
    learned = {(tuple(str(r[k]) for k in status_keys), r["seed"]): r["learned"] for r in seeds.to_dict("records")}
    rows = ok_rows(train, metric)
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
                pairs = pd.concat([treated.rename("x"), reference.rename("y")], axis=1, join="inner")
                mine = tuple(str({**fixed, axis: value}[k]) for k in status_keys)
                theirs = tuple(str({**fixed, axis: base[axis]}[k]) for k in status_keys)
                past = _past_train_length(fixed.get("eval_length"), group)
                if past:  # an extrapolation result needs both models to have learned the task
                    both = [s for s in pairs.index if learned.get((mine, s), True) and learned.get((theirs, s), True)]
                    pairs = pairs.loc[both]
                records.append({**fixed, axis: value, "axis": axis, "baseline": base[axis], "context": describe(
                    {k: v for k, v in fixed.items() if k not in ("metric", "eval_length", "kind")
                     and train[k].nunique() > 1}), "_pairs": pairs,
                    "why": _not_judged(past, lookup.get(mine, {}), lookup.get(theirs, {}))})
    family = sum(1 for r in records if not _structural(r["why"]))
    each = alpha / max(1, family)
    out = [_row(record, spec, each, margin) for record in records]
    frame = pd.DataFrame.from_records(out, columns=[*keys, *COLUMNS])
    frame.attrs.update(family_size=family, alpha=alpha, margin=margin, metric=metric, each=each)
    return frame


def _past_train_length(length: Any, group: pd.DataFrame) -> bool:
    lengths = pd.unique(group["train_length"].dropna()) if "train_length" in group else []
    return length is not None and len(lengths) == 1 and length != lengths[0]


#: Reasons known before any run (they leave the family).
UNABLE_REASON = "a cell cannot solve the task by construction"


def _structural(why: str | None) -> bool:
    return why is not None and why.startswith(UNABLE_REASON)


def _not_judged(past: bool, mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> str | None:
    for cell in (mine, theirs):
        if isinstance(cell.get("unable"), str):
            return f"{UNABLE_REASON} ({cell['unable'].split(':')[0]})"
    failed = [cell.get("status") == DID_NOT_LEARN for cell in (mine, theirs)]
    if all(failed):
        return "neither cell learns the task at the train length"
    if past and any(failed):
        return "a cell did not learn the task at the train length"
    return None


def _row(record: dict[str, Any], spec: Metric, alpha: float, margin: float) -> dict[str, Any]:
    pairs = record.pop("_pairs")
    x, y = pairs["x"].to_numpy(), pairs["y"].to_numpy()
    description = paired_test(x, y) if len(pairs) else {}
    extra = {"p_wilcoxon": description.get("p_wilcoxon", np.nan), "d_z": description.get("d_z", np.nan),
             "cliffs_delta": description.get("cliffs_delta", np.nan)}
    if record["why"] is not None:
        return {**record, "n": len(pairs), "verdict": NOT_JUDGED, "margin": margin, "scale": spec.scale, **extra}
    v = judge(x, y, metric=spec, alpha=alpha, margin=margin)
    needed = pairs_needed(x, y, metric=spec, alpha=alpha, margin=margin) if v.verdict == UNDECIDED else None
    why = WHY[v.verdict]
    return {**record, "n": v.n, "wins": v.wins, "losses": v.losses, "ties": v.ties, "win_low": v.win_low,
            "win_high": v.win_high, "estimand": v.estimand, "estimate": v.estimate, "low": v.low, "high": v.high,
            "scale": v.scale, "margin": v.margin, "verdict": v.verdict, "why": why, "needed": needed, **extra}


def cells_needing_seeds(table: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """The cells more seeds could still decide something for: one row per cell (the keys of ``status``) with
    ``open_comparisons`` (undecided comparisons it takes part in) and ``learn_open`` (its learn rate is open)."""
    keys = [c for c in status.columns if c not in LEARN_COLUMNS]
    counts: dict[tuple[str, ...], int] = {}
    for row in table[table["verdict"].eq(UNDECIDED)].to_dict("records"):
        mine = tuple(str(row[k]) for k in keys)
        theirs = tuple(str(row["baseline"] if k == row["axis"] else row[k]) for k in keys)
        for cell in (mine, theirs):
            counts[cell] = counts.get(cell, 0) + 1
    records = []
    for row in status.to_dict("records"):
        cell = tuple(str(row[k]) for k in keys)
        learn_open = row["status"] == OPEN and not isinstance(row["unable"], str)
        if counts.get(cell) or learn_open:
            records.append({**{k: row[k] for k in keys}, "open_comparisons": counts.get(cell, 0),
                            "learn_open": learn_open})
    return pd.DataFrame.from_records(records, columns=[*keys, "open_comparisons", "learn_open"])
