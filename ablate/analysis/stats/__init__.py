"""Statistics over the tidy results frame: pure functions, built on scipy.

- :mod:`~ablate.stats.frame`: what a grid axis, a baseline and a cell are.
- :mod:`~ablate.stats.summary`: per-cell mean, std and confidence interval.
- :mod:`~ablate.stats.confidence`: anytime-valid confidence sequences (a rate, a quantile, a bounded mean).
- :mod:`~ablate.stats.verdict`: :func:`judge`, the one verdict of a paired comparison.
- :mod:`~ablate.stats.decisions`: every comparison of a results frame, and each cell's learn rate.
- :mod:`~ablate.stats.paired`: descriptions beside a verdict (effect sizes, Wilcoxon p, Holm).
- :mod:`~ablate.stats.ranks`: Friedman, Nemenyi post-hoc, critical difference.
- :mod:`~ablate.stats.scaling`: power-law fits of cost against length (one series, or per configuration) and cost ratios.
"""

from ablate.stats.frame import (
    baseline_of,
    cell_keys,
    describe,
    grid_axes,
    hold_fixed,
    in_distribution_length,
    ok_rows,
    select,
)
from ablate.stats.confidence import mean_interval, quantile_interval, rate_interval
from ablate.stats.decisions import comparisons, learn_status
from ablate.stats.paired import MIN_PAIRS, cliffs_delta, cohens_dz, holm, paired_test
from ablate.stats.verdict import Verdict, judge
from ablate.stats.ranks import RankResult, critical_difference, friedman_nemenyi, nemenyi_pvalue
from ablate.stats.scaling import PowerLaw, cost_ratios, fit_power_law, scaling_exponents
from ablate.stats.summary import BOOTSTRAP_MIN_N, confidence_interval, summarize

__all__ = [
    "BOOTSTRAP_MIN_N",
    "PowerLaw",
    "Verdict",
    "MIN_PAIRS",
    "RankResult",
    "baseline_of",
    "cell_keys",
    "cliffs_delta",
    "cohens_dz",
    "comparisons",
    "confidence_interval",
    "cost_ratios",
    "critical_difference",
    "describe",
    "fit_power_law",
    "friedman_nemenyi",
    "grid_axes",
    "hold_fixed",
    "holm",
    "in_distribution_length",
    "judge",
    "learn_status",
    "mean_interval",
    "nemenyi_pvalue",
    "ok_rows",
    "paired_test",
    "quantile_interval",
    "rate_interval",
    "scaling_exponents",
    "select",
    "summarize",
]
