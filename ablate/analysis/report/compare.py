"""The same suite run twice (two commits, devices or machines), side by side, with one verdict per cell.

Cells are matched by configuration (the cell key columns), never by ``run_id``:
the environment is part of neither, so the same configuration on another machine
is the same cell. Each cell of B is judged against the same cell of A by
:func:`ablate.analysis.stats.verdict.judge`, the function that decides every comparison
ablate reports:

* training metrics pair by seed (the same seed is the same initialisation and data
  order); better/worse from the paired wins, equivalence within the metric's margin;
* costs (time, instructions, memory) pair by repeat and round: round ``i`` of A
  with round ``i`` of B (two independent draws; measure A and B alike, e.g. on one
  machine); better/worse only when the whole interval lies beyond the margin.
  Tokens/s and the IQR are the same measurement as time and get no verdict.

A family is one metric's cells, each judged at ``alpha / m`` (Bonferroni). A
*regression* (:func:`regressions`) is a decided ``worse`` of time, memory or the
main metric: what ``ablate compare --fail-on regression`` exits 1 on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ablate.analysis import stats
from ablate.results.rounds_table import paired
from ablate.core.metrics import METRICS, Metric, higher_is_better
from ablate.analysis.plots import metric_label
import ablate.analysis.report.formatting as fmt
from ablate.analysis.report.cost import suite_margins
from ablate.analysis.report.document import Bullets, Paragraph, Section, Table, render
from ablate.analysis.stats.verdict import WORSE, judge, margin_of

#: Costs judged on their rounds (and read by the gate as time or memory regressions).
COSTS = ("time_median_s", "instructions", "peak_memory_bytes", "peak_reserved_bytes")
#: Derived from a judged cost: shown, not judged again.
DERIVED = {"tokens_per_s": "time_median_s", "time_iqr_s": "time_median_s"}


def _matching_keys(df_a: pd.DataFrame, df_b: pd.DataFrame) -> list[str]:
    keys_a, keys_b = stats.cell_keys(df_a), stats.cell_keys(df_b)
    keys = [k for k in keys_a if k in df_b.columns] + [k for k in keys_b if k not in keys_a and k in df_a.columns]
    tail = [k for k in ("metric", "eval_length") if k in keys]
    return [k for k in keys if k not in tail] + tail


def _by_seed(group: pd.DataFrame) -> pd.Series:
    if "seed" in group.columns and group["seed"].notna().all():
        return group.groupby("seed")["value"].mean()
    return group["value"].reset_index(drop=True)


def _spec(metric: str, frames: Sequence[pd.DataFrame]) -> Metric | str:
    """The metric's spec; a metric this version does not know gets its stored direction, on a difference scale."""
    return metric if metric in METRICS else Metric(metric, higher_is_better(metric, pd.concat(list(frames))))


def _pairs(a: pd.DataFrame, b: pd.DataFrame, metric: str, rounds: tuple[pd.DataFrame | None, pd.DataFrame | None]
           ) -> tuple[list[float], list[float], str]:
    """``(B values, A values, how)``: rounds paired by (seed, round) for a cost with stored rounds, else seeds."""
    ra, rb = (_rounds_of(r, cell, metric) for r, cell in zip(rounds, (a, b)))
    if metric in COSTS and ra is not None and rb is not None:
        t, base = paired(rb, ra, on=("seed", "round"))
        return t, base, "rounds"
    va, vb = _by_seed(a), _by_seed(b)
    common = va.index.intersection(vb.index)
    return vb[common].tolist(), va[common].tolist(), "seeds"


def _rounds_of(rounds: pd.DataFrame | None, cell: pd.DataFrame, metric: str) -> pd.DataFrame | None:
    if rounds is None or rounds.empty:
        return None
    seeds = dict(zip(cell["run_id"], cell["seed"] if "seed" in cell.columns else [0] * len(cell)))
    mine = rounds[rounds["run_id"].isin(set(seeds)) & rounds["metric"].eq(metric)
                  & rounds["eval_length"].isin(set(cell["eval_length"]))]
    return mine.assign(seed=mine["run_id"].map(seeds)) if len(mine) else None


def compare_results(
    df_a: pd.DataFrame, df_b: pd.DataFrame, labels: Sequence[str] = ("A", "B"), *, alpha: float = 0.05,
    rounds: tuple[pd.DataFrame | None, pd.DataFrame | None] = (None, None),
) -> pd.DataFrame:
    """Match the cells of two results frames by configuration and judge B against A.

    Args:
        df_a: the reference results.
        df_b: the results compared with them.
        labels: names of A and B, used in the column names ``n_<A>``, ``mean_<A>``, ...
        alpha: error rate of each metric's family of cells (``alpha / m`` each).
        rounds: each folder's :func:`ablate.results.rounds_table.load_rounds` (costs pair by round when given).

    Returns:
        The matching key columns, ``n_<A>, mean_<A>, n_<B>, mean_<B>``, ``ratio`` (mean B / mean A),
        ``paired_by`` (``seeds`` or ``rounds``), ``pairs``, ``estimand``, ``estimate``, ``low``, ``high``
        (B - A, or B / A on a ratio scale), ``margin`` and ``verdict``: B against A, ``better`` /
        ``worse`` / ``equivalent`` / ``undecided``, ``only in <label>``, ``no common seeds``, or
        ``see <metric>`` for a number derived from a judged one.
    """
    a_label, b_label = (str(x) for x in labels)
    if a_label == b_label:
        raise ValueError(f"labels must differ, got {labels!r}")
    keys = _matching_keys(df_a, df_b)
    groups_a = dict(iter(stats.ok_rows(df_a).groupby(keys, dropna=False, sort=False)))
    groups_b = dict(iter(stats.ok_rows(df_b).groupby(keys, dropna=False, sort=False)))
    margins = {**report_margins(df_a), **report_margins(df_b)}
    records = []
    for key in list(groups_a) + [k for k in groups_b if k not in groups_a]:
        a, b = groups_a.get(key), groups_b.get(key)
        record: dict[str, Any] = dict(zip(keys, key))
        metric = record["metric"]
        va = _by_seed(a) if a is not None else pd.Series(dtype=float)
        vb = _by_seed(b) if b is not None else pd.Series(dtype=float)
        record.update({f"n_{a_label}": len(va), f"mean_{a_label}": va.mean() if len(va) else np.nan,
                       f"n_{b_label}": len(vb), f"mean_{b_label}": vb.mean() if len(vb) else np.nan})
        with np.errstate(divide="ignore", invalid="ignore"):  # a mean of 0 has no ratio: NaN, said as n/a
            record["ratio"] = record[f"mean_{b_label}"] / record[f"mean_{a_label}"] if len(va) and len(vb) else np.nan
        if a is None or b is None:
            record["verdict"] = f"only in {a_label if b is None else b_label}"
        elif metric in DERIVED:
            record["verdict"] = f"see {DERIVED[metric]}"
        else:
            record["_t"], record["_b"], record["paired_by"] = _pairs(a, b, metric, rounds)
            record["verdict"] = "" if record["_t"] else "no common seeds"
        records.append(record)
    out = pd.DataFrame.from_records(records)
    for column in ("_t", "_b", "paired_by"):
        if column not in out.columns:
            out[column] = None
    judged = out["verdict"].eq("")
    family = out[judged].groupby("metric")["metric"].transform("size")
    specs = {m: _spec(m, [df_a, df_b]) for m in pd.unique(out["metric"])}
    results = {i: _judge(row, specs[row["metric"]], alpha / family[i], margins)
               for i, row in out[judged].iterrows()}
    for column in ("pairs", "estimand", "estimate", "low", "high", "margin", "worse_in"):
        out[column] = [results[i][column] if i in results else np.nan for i in out.index]
    out.loc[judged, "verdict"] = [results[i]["verdict"] for i in out.index[judged]]
    columns = [*keys, f"n_{a_label}", f"mean_{a_label}", f"n_{b_label}", f"mean_{b_label}", "ratio", "paired_by",
               "pairs", "estimand", "estimate", "low", "high", "margin", "worse_in", "verdict"]
    out = out[columns]
    out.attrs["labels"] = (a_label, b_label)
    return out


def _judge(row: Mapping[str, Any], spec: Metric | str, alpha: float, margins: Mapping[str, float]) -> dict[str, Any]:
    name = spec if isinstance(spec, str) else spec.name
    margin = margin_of(name, dict(margins))
    by = "interval" if name in COSTS else "wins"
    try:
        verdict = judge(row["_t"], row["_b"], metric=spec, alpha=alpha, margin=margin, by=by)
    except ValueError as error:  # e.g. a value outside the metric's range: said, not judged
        return {"pairs": len(row["_t"]), "estimand": None, "estimate": np.nan, "low": np.nan, "high": np.nan,
                "margin": margin, "verdict": f"not judged: {error}", "worse_in": np.nan}
    return {"pairs": verdict.n, "estimand": verdict.estimand, "estimate": verdict.estimate, "low": verdict.low,
            "high": verdict.high, "margin": margin, "verdict": verdict.verdict,
            "worse_in": verdict.losses if spec_higher(spec) else verdict.wins}


def spec_higher(spec: Metric | str) -> bool:
    return METRICS[spec].higher_is_better if isinstance(spec, str) else spec.higher_is_better


def report_margins(df: pd.DataFrame) -> dict[str, float]:
    """Margins the suite states: ``[report] margins``, and ``[report] margin`` for its main metric."""
    report = ((df.attrs.get("suite_config") or {}).get("report") or {})
    margins = suite_margins(df)
    if report.get("main_metric") and report.get("margin") is not None:
        margins.setdefault(report["main_metric"], float(report["margin"]))
    return margins


# ---------------------------------------------------------------------------- the gate
def gated_metrics(main_metric: str | None) -> tuple[str, ...]:
    """The metrics whose decided ``worse`` is a regression: time, instructions, memory and the main metric."""
    return (*COSTS, *((main_metric,) if main_metric and main_metric not in COSTS else ()))


def regressions(table: pd.DataFrame, main_metric: str | None) -> list[str]:
    """One line per decided regression of B against A (see :func:`gated_metrics`), worst kind first."""
    a_label, b_label = table.attrs.get("labels", ("A", "B"))
    keys = [c for c in table.columns if c not in ("metric", "eval_length") and c in _key_columns(table)]
    shown = [k for k in keys if k != "kind" and table[k].nunique(dropna=False) > 1]
    lines = []
    for row in table[table["verdict"].eq(WORSE) & table["metric"].isin(gated_metrics(main_metric))].to_dict("records"):
        where = stats.describe({k: row[k] for k in shown if pd.notna(row[k])}) or "the only configuration"
        if _ratio_scale(row["metric"]):
            change = f"{b_label}/{a_label} = {row['estimate']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"
        else:
            change = (f"{b_label} - {a_label} = {fmt.signed(row['estimate'], row['metric'])} "
                      f"{fmt.interval(row['low'], row['high'], row['metric'])}")
        if row["metric"] in COSTS:  # decided by the interval
            why = f"{row['estimand']} over {int(row['pairs'])} {row['paired_by']}, beyond ±{100 * row['margin']:g}%"
        else:  # decided by the paired wins
            why = f"{row['estimand']}; {b_label} worse on {int(row['worse_in'])} of {int(row['pairs'])} paired seeds"
        lines.append(f"regression: {row['metric']} of {where} at length {_plain(row['eval_length'])}: {change} ({why})")
    return lines


def _key_columns(table: pd.DataFrame) -> list[str]:
    first = [c for c in table.columns if str(c).startswith("n_")]
    return list(table.columns[:table.columns.get_loc(first[0])]) if first else []


# ---------------------------------------------------------------------------- the document
def write_comparison(
    df_a: pd.DataFrame, df_b: pd.DataFrame, out_dir: str | Path, labels: Sequence[str] = ("A", "B"),
    *, alpha: float = 0.05, rounds: tuple[pd.DataFrame | None, pd.DataFrame | None] = (None, None),
    table: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``comparison.html`` and ``comparison.md`` comparing B with A, cell by cell.

    Args:
        table: an already computed :func:`compare_results` of the same frames (else computed here).

    Returns:
        ``{"html": path, "markdown": path, "figures": folder}``.
    """
    table = compare_results(df_a, df_b, labels, alpha=alpha, rounds=rounds) if table is None else table
    a_label, b_label = table.attrs["labels"]
    items = []
    for label, df in ((a_label, df_a), (b_label, df_b)):
        suite = df.attrs.get("suite") or (", ".join(map(str, pd.unique(df["suite"]))) if "suite" in df else "?")
        items.append(f"{label}: suite {suite}, {df['run_id'].nunique() if 'run_id' in df else len(df)} runs")
    env = sorted({c for c in [*df_a.columns, *df_b.columns] if str(c).startswith("env.")})
    env_rows = [[c.removeprefix("env."), _values(df_a, c), _values(df_b, c)] for c in env]
    env_rows.sort(key=lambda row: row[1] == row[2])  # differences first
    differ = [row[0] for row in env_rows if row[1] != row[2]]
    items.append(f"Environment differences: {', '.join(differ) if differ else 'none recorded'}")
    overview: list[Any] = [Bullets(items)]
    if env_rows:
        overview.append(Table(["environment", a_label, b_label], env_rows, caption="Recorded environments."))
    parts = [Section("What is compared", overview)]
    keys = _key_columns(table)
    shown = [k for k in keys if k not in ("kind", "metric", "eval_length") and table[k].nunique(dropna=False) > 1]
    for metric, group in table.groupby("metric", sort=False):
        rows = [[*(_plain(r[k]) for k in shown), _plain(r["eval_length"]),
                 f"{fmt.value(r[f'mean_{a_label}'], metric)} (n={r[f'n_{a_label}']})",
                 f"{fmt.value(r[f'mean_{b_label}'], metric)} (n={r[f'n_{b_label}']})",
                 "n/a" if not np.isfinite(r["ratio"]) else f"{r['ratio']:.3f}×", _change(r, metric),
                 "" if not isinstance(r["paired_by"], str) else f"{int(r['pairs'])} {r['paired_by']}",
                 r["verdict"]] for r in group.to_dict("records")]
        columns = [*shown, "length", a_label, b_label, f"{b_label}/{a_label} (means)", "paired change [interval]",
                   "pairs", "verdict"]
        parts.append(Section(metric_label(metric), [Table(columns, rows, numeric=[False] * len(shown) + [True] * 5
                                                           + [False, False])]))
    parts.insert(1, Section("How to read this", [Paragraph(
        f"Cells are matched by configuration, not by run id. Each cell of {b_label} is judged against the same cell "
        f"of {a_label} by one verdict function: training metrics paired by seed (better/worse from the paired wins, "
        "equivalent when the interval of the mean or median difference lies inside the metric's margin); costs "
        "paired by repeat and round, better/worse only when the whole interval of the median ratio lies beyond the "
        f"margin. Intervals are anytime-valid confidence sequences at α = {alpha} per metric, Bonferroni over its "
        "cells. Tokens/s and the IQR are the same measurement as the time and get no verdict of their own.")]))
    return render(parts, out_dir, title=f"Comparison: {b_label} vs {a_label}", stem="comparison")


def _change(row: Mapping[str, Any], metric: str) -> str:
    if not isinstance(row["estimand"], str) or not math.isfinite(row["estimate"]):
        return "n/a"
    if _ratio_scale(metric):
        bounds = f"[{row['low']:.3f}, {row['high']:.3f}]" if row["low"] > 0 and math.isfinite(row["high"]) else "[n/a]"
        return f"{row['estimate']:.3f}× {bounds}"
    return f"{fmt.signed(row['estimate'], metric)} {fmt.interval(row['low'], row['high'], metric)}"


def _ratio_scale(metric: str) -> bool:
    return metric in METRICS and METRICS[metric].scale == "ratio"


def _values(df: pd.DataFrame, column: str) -> str:
    if column not in df.columns:
        return "n/a"
    return ", ".join(map(str, pd.unique(df[column].dropna()))) or "n/a"


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
