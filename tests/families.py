"""Per-seed accuracies of the kinds small models produce, for the soundness simulations.

A family draws ``(seeds,)`` values of one cell; a scenario pairs two cells (treatment,
baseline) and knows the true mean difference. Values stay in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Draw = Callable[[np.random.Generator, int], np.ndarray]


def normal(mean: float, sd: float) -> Draw:
    return lambda rng, n: np.clip(rng.normal(mean, sd, n), 0.0, 1.0)


def learn_or_fail(rate: float, learned: float = 1.0, failed: float = 0.5) -> Draw:
    """Exactly ``learned`` with probability ``rate``, else exactly ``failed`` (chance)."""
    return lambda rng, n: np.where(rng.random(n) < rate, learned, failed)


def learn_or_fail_noisy(rate: float) -> Draw:
    """Learned seeds near 0.98 (capped at 1), failed ones near chance, each with its own spread."""
    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        learned = np.minimum(1.0, rng.normal(0.98, 0.01, n))
        failed = np.clip(rng.normal(0.5, 0.02, n), 0.0, 1.0)
        return np.where(rng.random(n) < rate, learned, failed)
    return draw


def skewed(scale: float, top: float = 1.0) -> Draw:
    """A long tail below ``top``: ``top - Exponential(scale)`` (most seeds near the top, a few far below)."""
    return lambda rng, n: np.clip(top - rng.exponential(scale, n), 0.0, 1.0)


def ties(values: tuple[float, ...], weights: tuple[float, ...]) -> Draw:
    """A few exact values (accuracies of a small evaluation set), many seeds tied."""
    p = np.asarray(weights) / np.sum(weights)
    return lambda rng, n: rng.choice(np.asarray(values), size=n, p=p)


@dataclass(frozen=True)
class Scenario:
    name: str
    treatment: Draw
    baseline: Draw
    #: True mean of treatment - baseline.
    difference: float


#: True nulls: both cells have the same law (the compared axis changes nothing).
NULLS = [
    Scenario("normal", normal(0.85, 0.05), normal(0.85, 0.05), 0.0),
    Scenario("learn/fail exact 80%", learn_or_fail(0.8), learn_or_fail(0.8), 0.0),
    Scenario("learn/fail exact 50%", learn_or_fail(0.5), learn_or_fail(0.5), 0.0),
    Scenario("learn/fail noisy 70%", learn_or_fail_noisy(0.7), learn_or_fail_noisy(0.7), 0.0),
    Scenario("skewed", skewed(0.08), skewed(0.08), 0.0),
    Scenario("ties", ties((0.5, 0.75, 1.0), (1, 2, 6)), ties((0.5, 0.75, 1.0), (1, 2, 6)), 0.0),
    Scenario("zero spread", normal(1.0, 0.0), normal(1.0, 0.0), 0.0),
]

#: A true difference of 5x the default margin (0.02): equivalence must not be called.
FIVE_MARGINS = [
    Scenario("normal -0.1", normal(0.8, 0.02), normal(0.9, 0.02), -0.1),
    Scenario("learn/fail exact 80% vs 100%", learn_or_fail(0.8), learn_or_fail(1.0), -0.1),
    Scenario("learn/fail noisy 80% vs 100%", learn_or_fail_noisy(0.8), learn_or_fail_noisy(1.0), -0.096),
    Scenario("skewed -0.1", skewed(0.1, 0.9), skewed(0.1, 1.0), -0.1),
    Scenario("ties -0.1", ties((0.75, 1.0), (2, 3)), ties((0.75, 1.0), (0, 1)), -0.1),
]

#: Real differences, for the power table (what the tool decides, and with how many seeds).
EFFECTS = [
    Scenario("learned vs chance (+0.5)", normal(0.98, 0.01), learn_or_fail(0.0), 0.48),
    Scenario("extrapolates vs not (+0.3)", normal(0.8, 0.1), normal(0.5, 0.05), 0.3),
    Scenario("learns always vs 50% (+0.25)", learn_or_fail(1.0), learn_or_fail(0.5), 0.25),
    Scenario("small shift (+0.05)", normal(0.9, 0.03), normal(0.85, 0.03), 0.05),
]
