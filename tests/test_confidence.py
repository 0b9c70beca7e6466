"""Confidence sequences: the mixture e-value against a direct integral, coverage invariants, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from ablate.analysis.stats.confidence import mean_interval, quantile_interval, rate_evidence, rate_interval


@pytest.mark.parametrize("successes,trials,p0", [(6, 6, 0.5), (7, 10, 0.5), (3, 12, 0.3), (0, 5, 0.2), (9, 9, 0.8)])
def test_rate_evidence_is_the_one_sided_jeffreys_mixture(successes: int, trials: int, p0: float) -> None:
    def likelihood_ratio(p: float) -> float:
        return (p / p0) ** successes * ((1 - p) / (1 - p0)) ** (trials - successes)

    prior = stats.beta(0.5, 0.5)
    mass, _ = integrate.quad(lambda p: likelihood_ratio(p) * prior.pdf(p), p0, 1, limit=200)
    expected = mass / prior.sf(p0)
    assert rate_evidence(successes, trials, p0, "greater") == pytest.approx(expected, rel=1e-6)
    # "less" is "greater" of the failures
    assert rate_evidence(successes, trials, p0, "less") == pytest.approx(
        rate_evidence(trials - successes, trials, 1 - p0, "greater"), rel=1e-12)


def test_rate_interval_pins_and_widens_with_alpha() -> None:
    assert rate_interval(0, 0, 0.05) == pytest.approx((0.0, 1.0))
    # seven wins out of seven exclude a fair coin at 0.05; six do not (the anytime price is about one seed)
    assert rate_interval(7, 7, 0.05)[0] > 0.5 > rate_interval(6, 6, 0.05)[0]
    assert rate_interval(11, 11, 0.05 / 15)[0] > 0.5 > rate_interval(10, 10, 0.05 / 15)[0]
    low, high = rate_interval(30, 60, 0.05)
    assert low < 0.5 < high and rate_interval(30, 60, 0.01)[0] < low
    # never narrower than the fixed-sample exact (Clopper-Pearson) interval at the same alpha
    for s, n in [(3, 10), (10, 10), (0, 7), (25, 40)]:
        cp = stats.binomtest(s, n).proportion_ci(0.95, method="exact")
        low, high = rate_interval(s, n, 0.05)
        assert low <= cp.low + 1e-9 and high >= cp.high - 1e-9


def test_mean_interval_never_beats_the_two_point_bound() -> None:
    # n identical values x in [0, 1]: the law with mass q at x and 1 - q at 1 has mean m = q x + 1 - q and
    # gives that sample with probability q^n. No valid interval may exclude an m whose q^n exceeds alpha / 2.
    alpha = 0.05
    for x, n in [(0.25, 6), (0.25, 12), (0.5, 20), (0.9, 40)]:
        low, high = mean_interval(np.full(n, x), 0.0, 1.0, alpha)
        q = (alpha / 2) ** (1 / n)
        assert high >= q * x + (1 - q) - 1e-9
        assert low <= x <= high


def test_mean_interval_is_in_range_and_rescales() -> None:
    values = np.array([0.2, 0.4, 0.4, 0.9])
    low, high = mean_interval(values, 0.0, 1.0, 0.05)
    assert 0.0 <= low <= values.mean() <= high <= 1.0
    shifted = mean_interval(2 * values - 1, -1.0, 1.0, 0.05)
    assert shifted == pytest.approx((2 * low - 1, 2 * high - 1), abs=1e-9)
    assert mean_interval([], 0.0, 1.0, 0.05) == (0.0, 1.0)
    with pytest.raises(ValueError, match="outside the stated range"):
        mean_interval([1.2], 0.0, 1.0, 0.05)


def test_mean_interval_depends_on_the_values_not_their_order() -> None:
    values = np.random.default_rng(0).uniform(size=15)
    assert mean_interval(values, 0, 1, 0.05) == mean_interval(values[::-1], 0, 1, 0.05)


def test_quantile_interval_is_made_of_order_statistics() -> None:
    values = np.arange(40.0)
    low, high = quantile_interval(values, 0.5, 0.05)
    assert low in values and high in values and low < 19.5 < high
    assert quantile_interval(values[:5], 0.5, 0.05) == (-math.inf, math.inf)  # five values decide nothing
    low_q, _ = quantile_interval(values, 0.1, 0.05)
    assert low_q <= 4.0
