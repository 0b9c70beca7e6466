"""Anytime-valid confidence sequences: a binary rate, a quantile, and a bounded mean.

Every interval here is a *confidence sequence*: with probability at least
``1 - alpha`` it contains the true value at every number of observations at once
(Ville's inequality applied to a nonnegative supermartingale, the e-process, of
each candidate value). So an interval may be looked at after every seed, seeds
may be added because the last look was undecided, and the stated error rate
still holds. None of them assumes a distribution:

* :func:`rate_interval` - the probability of a binary outcome (a seed learned the
  task, a seed of A beat its pair of B). Conjugate mixture of likelihood ratios
  (Robbins 1970): for a candidate rate ``p0`` and ``s`` successes in ``n`` trials,
  ``E = ∫ [p^s (1-p)^(n-s) / (p0^s (1-p0)^(n-s))] dπ(p)`` over the alternatives on
  one side of ``p0``, with a Jeffreys prior ``π = Beta(1/2, 1/2)`` restricted to that
  side. It depends on ``(s, n)`` only, never on the order of the observations.
* :func:`quantile_interval` - a quantile of any distribution, by inverting
  :func:`rate_interval` on the indicators ``x < v`` and ``x > v`` (order statistics).
* :func:`mean_interval` - the mean of a variable known to lie in ``[low, high]``
  (accuracy in ``[0, 1]``), by betting (Waudby-Smith & Ramdas 2023): for a
  candidate mean ``m`` the wealth ``∏ (1 + λ (x_i - m))`` of a gambler betting
  against ``m`` is a martingale when ``m`` is the mean; a mixture over constant bets
  ``λ`` keeps it independent of the order. It is valid for any distribution
  within the bounds (learn-or-fail mixtures, ties, zero spread), and it is honest
  about what few observations can show: a rare far value is never ruled out by a
  handful of identical ones.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

#: Jeffreys prior ``Beta(a, a)`` of the rate mixtures (weight near 0 and 1, where learn-or-fail data sit).
PRIOR = 0.5
#: Constant bets ``f`` (a fraction of the largest bet that keeps the wealth >= 0) mixed with equal weight.
#: Denser near 1: a few identical observations far from ``m`` are best bet on boldly.
BET_FRACTIONS = 1.0 - np.geomspace(0.01, 0.9, 20)


def rate_evidence(successes: int, trials: int, p0: float, side: str) -> float:
    """E-value against ``rate <= p0`` (``side="greater"``) or ``rate >= p0`` (``side="less"``).

    Returns the mixture likelihood ratio; values >= ``1 / alpha`` reject at level ``alpha``
    (valid at any number of trials, however trials were added).
    """
    if side not in ("greater", "less"):
        raise ValueError(f"side must be 'greater' or 'less', got {side!r}")
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if side == "less":
        return rate_evidence(trials - successes, trials, 1.0 - p0, "greater")
    if p0 <= 0.0:
        return math.inf if successes > 0 else 1.0
    if p0 >= 1.0:
        return 1.0
    failures = trials - successes
    a, b = PRIOR + successes, PRIOR + failures
    # ∫_{p0}^1 p^s (1-p)^f dBeta(1/2,1/2) / π([p0, 1]), over the null likelihood p0^s (1-p0)^f
    log_mixture = special.betaln(a, b) - special.betaln(PRIOR, PRIOR) + math.log(max(special.betaincc(a, b, p0), 1e-300))
    log_mixture -= math.log(special.betaincc(PRIOR, PRIOR, p0))
    log_null = successes * math.log(p0) + failures * math.log1p(-p0)
    return math.exp(min(log_mixture - log_null, 700.0))


def rate_interval(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    """``(low, high)``: a ``1 - alpha`` confidence sequence for a binary outcome's rate.

    Each side spends ``alpha / 2``. With no trials it is ``(0, 1)``.
    """
    _check_alpha(alpha)
    return _rate_interval(int(successes), int(trials), float(alpha))


@lru_cache(maxsize=65536)
def _rate_interval(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    threshold = 2.0 / alpha
    low = _boundary(lambda p: rate_evidence(successes, trials, p, "greater") >= threshold, rejected_below=True)
    high = _boundary(lambda p: rate_evidence(successes, trials, p, "less") >= threshold, rejected_below=False)
    return low, high


def _boundary(rejected, *, rejected_below: bool, steps: int = 40) -> float:
    """The edge of the rejected region of ``[0, 1]``: below the returned value (or above it) every
    candidate is rejected. The evidence is monotone in the candidate, so bisection finds it; the
    value returned is the last rejected candidate's side, so the interval never shrinks by rounding."""
    inside, outside = (1.0, 0.0) if rejected_below else (0.0, 1.0)
    eps = 1e-12
    if not rejected(outside + eps if rejected_below else outside - eps):
        return outside
    for _ in range(steps):
        middle = 0.5 * (inside + outside)
        if rejected(middle):
            outside = middle
        else:
            inside = middle
    return outside


def quantile_interval(values: np.ndarray, q: float, alpha: float) -> tuple[float, float]:
    """``(low, high)``: a ``1 - alpha`` confidence sequence for the ``q``-quantile of ``values``' law.

    A candidate ``v`` is ruled out below when the rate of ``x < v`` is shown to exceed ``q``
    (then the quantile is smaller), above when the rate of ``x > v`` is shown to exceed ``1 - q``;
    each side at ``alpha / 2``. The ends are order statistics, or ``-inf``/``inf`` when the data
    cannot rule anything out yet.
    """
    _check_alpha(alpha)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    n = x.size
    threshold = 2.0 / alpha
    # Just above x[k] the count of x < v is #(x <= x[k]); once it shows the rate of x < v above q,
    # every v > x[k] is ruled out (the quantile lies below them). The count grows with k: bisect.
    below = np.searchsorted(x, x, side="right")
    k = _first(n, lambda k: rate_evidence(int(below[k]), n, q, "greater") >= threshold)
    high = float(x[k]) if k < n else math.inf
    # Just below x[k] the count of x > v is #(x >= x[k]); symmetric, from the top.
    above = n - np.searchsorted(x, x, side="left")
    k = _first(n, lambda k: rate_evidence(int(above[n - 1 - k]), n, 1.0 - q, "greater") >= threshold)
    low = float(x[n - 1 - k]) if k < n else -math.inf
    return low, high


def _first(n: int, holds) -> int:
    """The smallest ``k`` in ``[0, n)`` for which the monotone predicate ``holds(k)`` is true (``n``: none)."""
    lo, hi = 0, n
    while lo < hi:
        middle = (lo + hi) // 2
        if holds(middle):
            hi = middle
        else:
            lo = middle + 1
    return lo


def mean_interval(values: np.ndarray, low: float, high: float, alpha: float) -> tuple[float, float]:
    """``(lower, upper)``: a ``1 - alpha`` confidence sequence for the mean of values in ``[low, high]``.

    Raises:
        ValueError: a value outside ``[low, high]`` (the bounds are what makes it distribution-free).
    """
    _check_alpha(alpha)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"mean_interval needs finite bounds low < high, got [{low}, {high}]")
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size and (x.min() < low - 1e-9 or x.max() > high + 1e-9):
        raise ValueError(f"values outside the stated range [{low:g}, {high:g}]: min {x.min():g}, max {x.max():g}")
    unit = np.clip((x - low) / (high - low), 0.0, 1.0)
    values_, counts = np.unique(np.round(unit, 12), return_counts=True)
    lower, upper = _unit_mean_interval(tuple(values_), tuple(int(c) for c in counts), float(alpha))
    return low + lower * (high - low), low + upper * (high - low)


@lru_cache(maxsize=4096)
def _unit_mean_interval(values: tuple[float, ...], counts: tuple[int, ...], alpha: float) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    x, c = np.asarray(values)[:, None, None], np.asarray(counts, dtype=float)[:, None, None]  # (U, 1, 1)
    f = BET_FRACTIONS[None, :, None]  # (1, F, 1)
    threshold = math.log(2.0 / alpha)

    def rejected(m: np.ndarray, up: bool) -> np.ndarray:
        """``(M,)``: the mixture wealth of the bets that the mean is above (up) or below each ``m`` reaches 2/α."""
        step = f * (x - m) / m if up else -f * (x - m) / (1.0 - m)  # (U, F, M)
        logs = (c * np.log1p(step)).sum(axis=0)  # (F, M): each constant bet, summed over observations
        top = logs.max(axis=0)
        return top + np.log(np.exp(logs - top).mean(axis=0)) >= threshold

    # Half the capital on each side, rejected when either side's wealth reaches 2 / alpha: the
    # upward bets' wealth falls as m grows and the downward bets' rises, so each side's rejected
    # candidates form one end of [0, 1], found by a bracketing search.
    return _edge(lambda m: rejected(m, True), True), _edge(lambda m: rejected(m, False), False)


def _edge(rejected, below: bool, points: int = 64, rounds: int = 4) -> float:
    """The edge of a monotone rejected region of ``(0, 1)`` (below it, or above it), to ``points**-rounds``;
    returned on the rejected side, so rounding never narrows the interval."""
    lo, hi = 0.0, 1.0
    for _ in range(rounds):
        grid = np.linspace(lo, hi, points + 2)[1:-1]
        hit = rejected(grid)
        if below:  # rejected: a prefix of the grid
            k = int(hit.sum()) if hit.size and hit[0] else 0
            lo, hi = (grid[k - 1] if k else lo), (grid[k] if k < points else hi)
        else:  # rejected: a suffix
            k = int(hit.sum()) if hit.size and hit[-1] else 0
            lo, hi = (grid[points - k - 1] if k < points else lo), (grid[points - k] if k else hi)
    return lo if below else hi


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
