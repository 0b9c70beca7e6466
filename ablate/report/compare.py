"""The same suite run twice (two commits, devices or machines), side by side.

Cells are matched by configuration (the cell key columns), never by ``run_id``:
the environment is part of neither, so the same configuration on another machine
is the same cell. Per cell: means, ratio B/A and a test of B against A, paired by
seed when at least :data:`ablate.stats.MIN_PAIRS` seeds are common to both (the
same seed is the same initialisation and data order), else Welch's t-test.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from ablate import stats
from ablate.metrics import higher_is_better
from ablate.plots import metric_label
import ablate.report.formatting as fmt
from ablate.report.document import Bullets, Paragraph, Section, Table, render


def _matching_keys(df_a: pd.DataFrame, df_b: pd.DataFrame) -> list[str]:
    keys_a, keys_b = stats.cell_keys(df_a), stats.cell_keys(df_b)
    keys = [k for k in keys_a if k in df_b.columns] + [k for k in keys_b if k not in keys_a and k in df_a.columns]
    tail = [k for k in ("metric", "eval_length") if k in keys]
    return [k for k in keys if k not in tail] + tail


def _by_seed(group: pd.DataFrame) -> pd.Series:
    if "seed" in group.columns and group["seed"].notna().all():
        return group.groupby("seed")["value"].mean()
    return group["value"].reset_index(drop=True)


def _test(a: pd.Series, b: pd.Series) -> tuple[str, float]:
    common = a.index.intersection(b.index) if a.index.name == "seed" and b.index.name == "seed" else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical samples: handled below
        if len(common) >= stats.MIN_PAIRS:
            name, p = f"paired t ({len(common)} seeds)", scipy_stats.ttest_rel(b[common], a[common]).pvalue
        elif len(a) >= 2 and len(b) >= 2:
            name, p = "Welch t", scipy_stats.ttest_ind(b, a, equal_var=False).pvalue
        else:
            return f"none: not enough seeds (n={min(len(a), len(b))})", np.nan
    if not np.isfinite(p):  # zero variance on both sides: identical means are no evidence of a change
        p = 1.0 if np.isclose(a.mean(), b.mean()) else 0.0
    return name, float(p)


def compare_results(
    df_a: pd.DataFrame, df_b: pd.DataFrame, labels: Sequence[str] = ("A", "B"), *, alpha: float = 0.05
) -> pd.DataFrame:
    """Match the cells of two results frames by configuration and compare B with A.

    Args:
        df_a: the reference results.
        df_b: the results compared with them.
        labels: names of A and B, used in the column names ``n_<A>``, ``mean_<A>``, ...
        alpha: level for ``verdict``.

    Returns:
        The matching key columns, ``n_<A>, mean_<A>, n_<B>, mean_<B>``, ``ratio`` (mean B / mean A),
        ``test`` (which test, or why none), ``p``, ``p_holm`` (Holm within each metric) and
        ``verdict``: ``"better"``/``"worse"`` (B against A, by the metric's direction), ``"n.s."``,
        ``"not enough seeds (n=1)"``, or ``"only in <label>"``.
    """
    a_label, b_label = (str(x) for x in labels)
    if a_label == b_label:
        raise ValueError(f"labels must differ, got {labels!r}")
    keys = _matching_keys(df_a, df_b)
    groups_a = dict(iter(stats.ok_rows(df_a).groupby(keys, dropna=False, sort=False)))
    groups_b = dict(iter(stats.ok_rows(df_b).groupby(keys, dropna=False, sort=False)))
    records = []
    for key in list(groups_a) + [k for k in groups_b if k not in groups_a]:
        a, b = groups_a.get(key), groups_b.get(key)
        record: dict[str, Any] = dict(zip(keys, key))
        va = _by_seed(a) if a is not None else pd.Series(dtype=float)
        vb = _by_seed(b) if b is not None else pd.Series(dtype=float)
        record.update({f"n_{a_label}": len(va), f"mean_{a_label}": va.mean() if len(va) else np.nan,
                       f"n_{b_label}": len(vb), f"mean_{b_label}": vb.mean() if len(vb) else np.nan})
        record["ratio"] = record[f"mean_{b_label}"] / record[f"mean_{a_label}"] if len(va) and len(vb) else np.nan
        if a is None or b is None:
            record.update(test="none", p=np.nan, verdict=f"only in {a_label if b is None else b_label}")
        else:
            record["test"], record["p"] = _test(va, vb)
            record["verdict"] = "" if np.isfinite(record["p"]) else record["test"].removeprefix("none: ")
        records.append(record)
    out = pd.DataFrame.from_records(records, columns=[*keys, f"n_{a_label}", f"mean_{a_label}", f"n_{b_label}",
                                                      f"mean_{b_label}", "ratio", "test", "p", "verdict"])
    out.insert(len(out.columns) - 1, "p_holm", np.nan)
    for _, members in out.groupby("metric", sort=False):
        out.loc[members.index, "p_holm"] = stats.holm(members["p"])
    direction = {m: higher_is_better(m, pd.concat([df_a, df_b])) for m in pd.unique(out["metric"])}
    for i, row in out.iterrows():
        if np.isfinite(row["p_holm"]):
            up = row[f"mean_{b_label}"] > row[f"mean_{a_label}"]
            out.at[i, "verdict"] = ("better" if up == direction[row["metric"]] else "worse") \
                if row["p_holm"] < alpha else "n.s."
    out.attrs["labels"] = (a_label, b_label)
    return out


def write_comparison(
    df_a: pd.DataFrame, df_b: pd.DataFrame, out_dir: str | Path, labels: Sequence[str] = ("A", "B"),
    *, alpha: float = 0.05,
) -> dict[str, Path]:
    """Write ``comparison.html`` and ``comparison.md`` comparing B with A, cell by cell.

    Returns:
        ``{"html": path, "markdown": path, "figures": folder}``.
    """
    table = compare_results(df_a, df_b, labels, alpha=alpha)
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
    keys = [c for c in table.columns if c in _matching_keys(df_a, df_b)]
    shown = [k for k in keys if k not in ("kind", "metric", "eval_length") and table[k].nunique(dropna=False) > 1]
    for metric, group in table.groupby("metric", sort=False):
        rows = [[*(_plain(r[k]) for k in shown), _plain(r["eval_length"]),
                 f"{fmt.value(r[f'mean_{a_label}'], metric)} (n={r[f'n_{a_label}']})",
                 f"{fmt.value(r[f'mean_{b_label}'], metric)} (n={r[f'n_{b_label}']})",
                 "n/a" if not np.isfinite(r["ratio"]) else f"{r['ratio']:.3f}×", r["test"], fmt.pvalue(r["p"]),
                 fmt.pvalue(r["p_holm"]), r["verdict"]] for r in group.to_dict("records")]
        columns = [*shown, "length", a_label, b_label, f"{b_label}/{a_label}", "test", "p", "p Holm", "verdict"]
        parts.append(Section(metric_label(metric), [Table(columns, rows, numeric=[False] * len(shown) + [True] * 4
                                                           + [False, True, True, False])]))
    parts.insert(1, Section("How to read this", [Paragraph(
        f"Cells are matched by configuration, not by run id. Ratio: mean of {b_label} over mean of {a_label}. "
        f"Test: paired t-test by seed where at least {stats.MIN_PAIRS} seeds are in both, else Welch's t-test; "
        f"Holm-corrected within each metric; verdict is {b_label} relative to {a_label} at α = {alpha}.")]))
    return render(parts, out_dir, title=f"Comparison: {b_label} vs {a_label}", stem="comparison")


def _values(df: pd.DataFrame, column: str) -> str:
    if column not in df.columns:
        return "n/a"
    return ", ".join(map(str, pd.unique(df[column].dropna()))) or "n/a"


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
