"""Statistics over the tidy results frame: pure functions, built on scipy.

- :mod:`~ablate.analysis.stats.frame`: what a grid axis, a baseline and a cell are.
- :mod:`~ablate.analysis.stats.summary`: per-cell mean, std and confidence interval.
- :mod:`~ablate.analysis.stats.confidence`: anytime-valid confidence sequences (a rate, a quantile, a bounded mean).
- :mod:`~ablate.analysis.stats.verdict`: :func:`judge`, the one verdict of a paired comparison.
- :mod:`~ablate.analysis.stats.decisions`: every comparison of a results frame, and each cell's learn rate.
- :mod:`~ablate.analysis.stats.paired`: descriptions beside a verdict (effect sizes, Wilcoxon p, Holm).
- :mod:`~ablate.analysis.stats.ranks`: Friedman, Nemenyi post-hoc, critical difference.
- :mod:`~ablate.analysis.stats.scaling`: power-law fits of cost against length (one series, or per configuration)
  and cost ratios.
"""

from ablate.analysis.stats.frame import (
    baseline_of,
    cell_keys,
    describe,
    grid_axes,
    hold_fixed,
    in_distribution_length,
    ok_rows,
    select,
)
from ablate.analysis.stats.confidence import mean_interval, quantile_interval, rate_interval
from ablate.analysis.stats.decisions import comparisons, learn_status
from ablate.analysis.stats.paired import MIN_PAIRS, cliffs_delta, cohens_dz, holm, paired_test
from ablate.analysis.stats.verdict import Verdict, judge
from ablate.analysis.stats.ranks import RankResult, critical_difference, friedman_nemenyi, nemenyi_pvalue
from ablate.analysis.stats.scaling import PowerLaw, cost_ratios, fit_power_law, scaling_exponents
from ablate.analysis.stats.summary import BOOTSTRAP_MIN_N, confidence_interval, summarize

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
