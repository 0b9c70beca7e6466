"""The group-sequential paired t design: alpha kept over repeated looks, the promised power, decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ablate.stats.sequential import BETTER, EQUIVALENT, UNDECIDED, WORSE, _paths, decide, design, power

LOOKS = (3, 6, 9, 12)


def _rejection_rate(plan, shift: float, paths: int, seed: int) -> float:
    t = _paths(plan.looks, paths, seed, shift=shift)
    return float((np.abs(t) > np.asarray(plan.boundaries)).any(axis=1).mean())


@pytest.mark.parametrize("spending", ["pocock", "obrien_fleming"])
@pytest.mark.parametrize("alpha", [0.05, 0.05 / 16])
def test_type_one_error_stays_at_alpha_over_four_looks(spending: str, alpha: float) -> None:
    plan = design(LOOKS, alpha, spending)
    paths = 200_000
    rate = _rejection_rate(plan, 0.0, paths, seed=123)  # fresh paths, not the ones the boundaries came from
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / paths)
    # and it is spent, not wasted: naive repeated t tests at every look would exceed alpha
    naive = _paths(LOOKS, paths, 123)
    quantiles = np.array([stats.t.ppf(1 - alpha / 2, n - 1) for n in LOOKS])
    assert (np.abs(naive) > quantiles).any(axis=1).mean() > 1.5 * alpha
    assert rate >= 0.9 * alpha  # within the boundaries' own Monte-Carlo error


def test_a_single_look_is_the_fixed_t_test() -> None:
    assert design((5,), 0.05).boundaries == pytest.approx((stats.t.ppf(0.975, 4),))


def test_pocock_spends_early_and_obrien_fleming_late() -> None:
    pocock, obf = design(LOOKS, 0.05, "pocock"), design(LOOKS, 0.05, "obrien_fleming")
    assert pocock.boundaries[0] < obf.boundaries[0] and pocock.boundaries[-1] > obf.boundaries[-1]
    assert list(pocock.boundaries) == sorted(pocock.boundaries, reverse=True)


def test_the_decision_rule_delivers_the_promised_power() -> None:
    """``power`` (the design's promise) against the decision rule itself run on independent paths."""
    plan = design(LOOKS, 0.05)
    promised = power(plan, 1.0)
    assert promised == pytest.approx(0.75, abs=0.02)  # pinned: d = 1 by 12 seeds, Pocock, alpha 0.05
    rng = np.random.default_rng(99)
    paths, decided = 3000, 0
    for row in rng.standard_normal((paths, LOOKS[-1])) + 1.0:
        for look in LOOKS:
            verdict = decide(row[:look], plan, margin=0.0).verdict
            if verdict != UNDECIDED:
                decided += verdict == BETTER
                break
    assert decided / paths == pytest.approx(promised, abs=3 * math.sqrt(promised * (1 - promised) / paths))


def test_equivalence_is_claimed_wrongly_at_most_alpha_of_the_time() -> None:
    plan, margin, paths = design(LOOKS, 0.05), 0.5, 4000
    rng = np.random.default_rng(5)
    wrong = 0
    for row in rng.standard_normal((paths, LOOKS[-1])) + margin:  # true difference exactly at the margin
        for look in LOOKS:
            verdict = decide(row[:look], plan, margin).verdict
            if verdict != UNDECIDED:
                wrong += verdict == EQUIVALENT
                break
    assert wrong / paths <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / paths)


def test_decisions_on_known_data() -> None:
    plan = design(LOOKS, 0.05)
    assert decide([0.3, 0.31, 0.29], plan, 0.02).verdict == BETTER
    assert decide([-0.3, -0.31, -0.29], plan, 0.02).verdict == WORSE
    assert decide([0.0, 0.001, -0.001], plan, 0.02).verdict == EQUIVALENT
    same = decide([0.0, 0.0, 0.0], plan, 0.02)
    assert same.verdict == EQUIVALENT and same.low == same.high == 0.0
    noisy = decide([0.2, -0.1, 0.3], plan, 0.02)
    assert noisy.verdict == UNDECIDED and noisy.more_needed and noisy.more_needed > 0
    early = decide([0.5, 0.5], plan, 0.02)
    assert early.verdict == UNDECIDED and early.more_needed == 1  # below the first look


def test_bad_designs_are_refused() -> None:
    with pytest.raises(ValueError, match="increasing"):
        design((3, 3), 0.05)
    with pytest.raises(ValueError, match="spending"):
        design(LOOKS, 0.05, "linear")
