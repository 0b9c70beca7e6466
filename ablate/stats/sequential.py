"""A group-sequential paired t design: decide with as few seeds as the data allow, at a fixed alpha.

Seeds are added in groups (looks at ``n_1 < n_2 < ... < n_K`` pairs). At look
``k`` the paired differences ``d`` give the repeated confidence interval

    mean(d) ± c_k · sd(d) / sqrt(n_k)

and the comparison is decided when that interval lies

* above 0: **better**; below 0: **worse** (oriented by the metric's direction);
* inside ``(-margin, margin)``: **equivalent within the margin**.

Why this keeps alpha. For normal differences with any mean ``mu`` and sd, the
statistics ``t_k = (mean_k - mu) / (sd_k / sqrt(n_k))`` have a joint
distribution that depends on neither ``mu`` nor the sd (they are pivotal), so
boundaries ``c_k`` with ``P(|t_k| > c_k for some k) = alpha`` can be computed
once by simulating standard normal paths. Then the intervals cover ``mu`` at
every look simultaneously with probability ``1 - alpha``, which bounds both
errors by ``alpha``: calling a difference when ``mu = 0``, and calling
equivalence when ``|mu| >= margin``. The ``c_k`` spend alpha over the looks
with a Lan-DeMets spending function (Pocock-like by default: early looks can
decide; O'Brien-Fleming-like keeps the last look close to a fixed design).
A family of ``m`` comparisons uses ``alpha / m`` each (Bonferroni: valid under
any dependence and under adaptive stopping, unlike Holm on sequential p-values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import stats

BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"

#: Lan-DeMets alpha-spending functions ``f(alpha, tau)``: alpha spent by information fraction ``tau``.
SPENDING: dict[str, Callable[[float, float], float]] = {
    "pocock": lambda alpha, tau: alpha * math.log(1 + (math.e - 1) * tau),
    "obrien_fleming": lambda alpha, tau: 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(tau)),
}
#: Simulated paths behind the boundaries (Monte-Carlo error of the spent alpha about 1e-4 at alpha = 0.05).
SIMULATIONS = 200_000


@dataclass(frozen=True)
class Design:
    """Looks (pairs at each look), the two-sided ``alpha`` of one comparison and its boundaries ``c_k``."""

    looks: tuple[int, ...]
    alpha: float
    boundaries: tuple[float, ...]
    spending: str = "pocock"

    def boundary(self, n: int) -> float | None:
        """``c`` for ``n`` pairs: the boundary of the last planned look ``<= n`` (``None`` below the first)."""
        usable = [c for look, c in zip(self.looks, self.boundaries) if look <= n]
        return usable[-1] if usable else None


@dataclass(frozen=True)
class Decision:
    """A comparison at one look: the paired mean difference, its repeated interval and the verdict."""

    verdict: str
    n: int
    mean: float
    low: float
    high: float
    #: Rough number of further pairs the interval would need to decide, at the current mean and sd.
    more_needed: int | None = None


def _paths(looks: tuple[int, ...], simulations: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """``(simulations, K)`` paired t statistics at the looks of normal paths with mean ``shift``, sd 1.

    Centred at ``shift``'s true mean (``t_k`` of ``d - shift``) when ``shift`` is 0, so the null
    distribution; with ``shift != 0`` these are the statistics against 0 (power).
    """
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((simulations, looks[-1])) + shift
    counts = np.arange(1, looks[-1] + 1)
    sums, squares = np.cumsum(draws, axis=1), np.cumsum(draws**2, axis=1)
    index = np.asarray(looks) - 1
    n = counts[index]
    mean = sums[:, index] / n
    var = (squares[:, index] - n * mean**2) / (n - 1)
    return mean / np.sqrt(np.maximum(var, 1e-300) / n)


@lru_cache(maxsize=64)
def design(looks: tuple[int, ...], alpha: float, spending: str = "pocock", *, simulations: int = SIMULATIONS,
           seed: int = 20240601) -> Design:
    """Boundaries for ``looks`` (strictly increasing pair counts, the first >= 2) at two-sided ``alpha``.

    Each ``c_k`` is chosen on simulated null paths so that the paths first crossing at
    look ``k`` make up ``f(alpha, n_k / n_K) - f(alpha, n_(k-1) / n_K)``.
    """
    looks = tuple(int(n) for n in looks)
    if not looks or looks[0] < 2 or any(b <= a for a, b in zip(looks, looks[1:])):
        raise ValueError(f"looks must be strictly increasing pair counts starting at >= 2, got {looks}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if spending not in SPENDING:
        raise ValueError(f"spending must be one of {', '.join(SPENDING)}, got {spending!r}")
    if len(looks) == 1:  # a fixed design: the exact t quantile
        return Design(looks, alpha, (float(stats.t.ppf(1 - alpha / 2, looks[0] - 1)),), spending)
    t = np.abs(_paths(looks, simulations, seed))
    alive = np.ones(simulations, dtype=bool)
    spent, boundaries = 0.0, []
    for k, n in enumerate(looks):
        target = SPENDING[spending](alpha, n / looks[-1])
        crossings = int(round((target - spent) * simulations))
        candidates = np.sort(t[alive, k])[::-1]
        c = float(candidates[crossings]) if 0 < crossings < candidates.size else math.inf
        boundaries.append(c)
        alive &= ~(t[:, k] > c)
        spent = 1.0 - alive.mean()
    return Design(looks, alpha, tuple(boundaries), spending)


def decide(differences: np.ndarray, plan: Design, margin: float, *, final: bool = False) -> Decision:
    """The decision on paired ``differences`` (oriented: positive = better) at their look.

    ``final`` marks the last look (no more seeds): an undecided comparison stays undecided,
    with ``more_needed`` estimated from the current mean and sd at the last boundary.
    """
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    n = d.size
    c = plan.boundary(n)
    if c is None:
        return Decision(UNDECIDED, n, float(d.mean()) if n else math.nan, -math.inf, math.inf,
                        more_needed=max(0, plan.looks[0] - n))
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = c * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if low > 0:
        verdict = BETTER
    elif high < 0:
        verdict = WORSE
    elif -margin < low and high < margin:
        verdict = EQUIVALENT
    else:
        verdict = UNDECIDED
    more = None if verdict != UNDECIDED else _more_needed(mean, sd, n, plan.boundaries[-1], margin)
    return Decision(verdict, n, mean, low, high, more)


def _more_needed(mean: float, sd: float, n: int, c: float, margin: float) -> int | None:
    """Further pairs until ``c·sd/sqrt(N)`` would separate the interval from 0 or fit it in the margin."""
    room = max(abs(mean), margin - abs(mean))
    if room <= 0 or not math.isfinite(c):
        return None
    return max(1, math.ceil((c * sd / room) ** 2) - n)


def power(plan: Design, effect: float, *, simulations: int = 100_000, seed: int = 7) -> float:
    """Probability of deciding better (or worse) by the last look when the standardised effect is ``effect``."""
    t = _paths(plan.looks, simulations, seed, shift=effect)
    return float((np.abs(t) > np.asarray(plan.boundaries)).any(axis=1).mean())
