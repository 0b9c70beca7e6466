"""Statistics over the tidy results frame: pure functions, built on scipy.

- :mod:`~ablate.stats.frame`: what a grid axis, a baseline and a cell are.
- :mod:`~ablate.stats.summary`: per-cell mean, std and confidence interval.
- :mod:`~ablate.stats.paired`: paired tests against a baseline, effect sizes, Holm.
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
from ablate.stats.paired import MIN_PAIRS, cliffs_delta, cohens_dz, holm, paired_comparisons, paired_test
from ablate.stats.ranks import RankResult, critical_difference, friedman_nemenyi, nemenyi_pvalue
from ablate.stats.scaling import PowerLaw, cost_ratios, fit_power_law, scaling_exponents
from ablate.stats.summary import BOOTSTRAP_MIN_N, confidence_interval, summarize

__all__ = [
    "BOOTSTRAP_MIN_N",
    "PowerLaw",
    "MIN_PAIRS",
    "RankResult",
    "baseline_of",
    "cell_keys",
    "cliffs_delta",
    "cohens_dz",
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
    "nemenyi_pvalue",
    "ok_rows",
    "paired_comparisons",
    "paired_test",
    "scaling_exponents",
    "select",
    "summarize",
]
