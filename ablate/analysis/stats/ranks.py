"""Friedman test, Nemenyi post-hoc and critical difference (Demsar 2006, JMLR 7:1-30).

Treatments are the values of one axis (usually ``encoding``). Blocks are the
conditions in which every treatment was run: by default every combination of the
other cell keys and the seed (e.g. pooling x task x seed), so each seed of each
condition ranks the treatments once. Pass ``blocks=["task"]`` for Demsar's
setting, one block per task/dataset with values averaged over seeds first; any
column left out of ``blocks`` is averaged over. Seeds are not independent
datasets, so with seed-blocks read the test as "consistent over seeds and
conditions", not as generalisation over tasks. Blocks missing a treatment are
dropped (and counted in ``note``). Rank 1 is the best, by the metric's direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ablate.core.metrics import higher_is_better
from ablate.analysis.stats.frame import cell_keys, grid_axes, ok_rows, select


def critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference ``q_alpha * sqrt(k (k + 1) / (6 N))``.

    ``q_alpha`` is the studentized range quantile (infinite degrees of freedom) over
    sqrt(2), e.g. 2.569 for k=4 at alpha=0.05 (Demsar 2006, table 5a).
    """
    if k < 2 or n_blocks < 1:
        raise ValueError(f"critical difference needs k >= 2 treatments and N >= 1 blocks, got k={k}, N={n_blocks}")
    q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(k * (k + 1) / (6 * n_blocks)))


def nemenyi_pvalue(rank_difference: float, k: int, n_blocks: int) -> float:
    """Two-sided Nemenyi p-value of a difference in average ranks."""
    z = abs(rank_difference) / np.sqrt(k * (k + 1) / (6 * n_blocks))
    return float(stats.studentized_range.sf(z * np.sqrt(2), k, np.inf))


@dataclass
class RankResult:
    """Average ranks, Friedman test and Nemenyi critical difference for one axis.

    Attributes:
        axis: the treatment column.
        ranks: average rank per treatment, best (lowest) first.
        n_blocks: blocks with every treatment present (N).
        statistic: Friedman chi-square (NaN when not computable).
        pvalue: Friedman p-value.
        cd: critical difference at ``alpha``.
        pairwise: ``a, b, rank_diff, p_nemenyi, significant`` for every pair.
        note: why something could not be computed, or how many blocks were dropped.
        blocks: the columns whose combinations formed the blocks.
    """

    axis: str
    ranks: pd.Series
    n_blocks: int
    statistic: float = np.nan
    pvalue: float = np.nan
    cd: float = np.nan
    alpha: float = 0.05
    pairwise: pd.DataFrame = field(default_factory=pd.DataFrame)
    note: str = ""
    blocks: list[str] = field(default_factory=list)

    def cliques(self) -> list[list[str]]:
        """Maximal runs of rank-adjacent treatments whose ranks differ by less than the CD."""
        names, values = list(self.ranks.index), self.ranks.to_numpy()
        groups: list[list[str]] = []
        for i in range(len(names)):
            j = i
            while j + 1 < len(names) and values[j + 1] - values[i] < self.cd:
                j += 1
            if j > i and not (groups and groups[-1][-1] == names[j]):
                groups.append(names[i : j + 1])
        return groups


def friedman_nemenyi(
    df: pd.DataFrame,
    metric: str,
    *,
    axis: str = "encoding",
    eval_length: int | None = None,
    where: Mapping[str, Any] | None = None,
    blocks: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> RankResult:
    """Friedman test over blocks, average ranks and Nemenyi critical difference.

    Args:
        df: the tidy results frame.
        metric: the metric to rank by.
        axis: the treatment column.
        eval_length: one evaluation length (default: all, each length its own blocks).
        where: ``{column: value}`` filter applied first (e.g. ``{"pooling": "mean"}``).
        blocks: block columns; default every other cell key plus ``seed``.
        alpha: level of the critical difference and of ``significant``.
    """
    if axis not in df.columns:
        raise ValueError(f"cannot rank by {axis!r}: not a column of the results")
    rows = ok_rows(select(df, where), metric)
    if eval_length is not None:
        rows = rows[rows["eval_length"].eq(eval_length)]
    if blocks is None:
        keys = cell_keys(df, grid_axes(df))
        blocks = [k for k in keys if k not in (axis, "metric")] + (["seed"] if "seed" in df.columns else [])
    # a column constant here (or all NaN, like measure.* on training rows) splits nothing
    blocks = [b for b in blocks if b in rows.columns and b != axis and rows[b].nunique(dropna=False) > 1]
    empty = RankResult(axis, pd.Series(dtype=float), 0, alpha=alpha)
    if rows.empty:
        return _with_note(empty, f"no ok {metric} values")
    if blocks:
        table = rows.groupby([*blocks, axis], dropna=False, sort=False)["value"].mean().unstack(axis)
    else:
        table = rows.groupby(axis, sort=False)["value"].mean().to_frame().T
    table = table[[c for c in pd.unique(rows[axis]) if c in table.columns]]
    complete = table.dropna()
    dropped = len(table) - len(complete)
    k, n = complete.shape[1], complete.shape[0]
    if k < 2 or n < 1:
        return _with_note(empty, f"need at least 2 {axis} values in a common block, got k={k}, N={n}")
    sign = -1.0 if higher_is_better(metric, df) else 1.0
    block_ranks = stats.rankdata(sign * complete.to_numpy(), axis=1)  # rank 1 = best; ties share the mean rank
    ranks = pd.Series(block_ranks.mean(axis=0), index=list(complete.columns), name="rank").sort_values(kind="stable")
    cd = critical_difference(k, n, alpha)
    pairs = [
        {"a": a, "b": b, "rank_diff": float(ranks[b] - ranks[a]),
         "p_nemenyi": nemenyi_pvalue(ranks[b] - ranks[a], k, n), "significant": bool(ranks[b] - ranks[a] > cd)}
        for i, a in enumerate(ranks.index) for b in ranks.index[i + 1 :]
    ]
    notes = [f"{dropped} block(s) without every {axis} dropped"] if dropped else []
    statistic = pvalue = np.nan
    if k >= 3 and n >= 2:
        result = stats.friedmanchisquare(*complete.to_numpy().T)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    else:
        notes.append(f"Friedman test needs k >= 3 and N >= 2 (k={k}, N={n})")
    return RankResult(axis, ranks, n, statistic, pvalue, cd, alpha, pd.DataFrame(pairs), "; ".join(notes), blocks)


def _with_note(result: RankResult, note: str) -> RankResult:
    result.note = note
    return result
