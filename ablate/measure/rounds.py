"""Interleaved rounds: every configuration measured once per round, in a shuffled order, until the ratios are tight.

Timing configurations one after another lets machine drift (another process, a
frequency change, a noisy neighbour) land on one of them and read as a cost. In
interleaved rounds (asv's ``--interleave-rounds`` does the same across commits)
each round measures every configuration once, in an order shuffled afresh per
round, so drift hits all of them alike, and round ``i`` of a configuration is
paired with round ``i`` of its baseline: the paired ratio cancels what the two
shared.

The rounds stop when every tracked ratio is *tight* - the confidence sequence of
its median paired ratio (:func:`ablate.analysis.stats.confidence.quantile_interval` on the
log ratios, the estimand :func:`ablate.analysis.stats.verdict.judge` decides on) is
narrower than ``1 + precision`` - or when the time budget is spent. A confidence
sequence holds at every number of rounds at once, so "repeat until tight" is a
valid stopping rule: the interval at the stop covers with the stated probability.
The interval is looked at on a geometric schedule (every ~10% more rounds), which
costs nothing in validity and keeps the bookkeeping out of the rounds.

What one configuration's value per round is stays outside: a sampler returns one
positive number (seconds per call of a batch of calls, bytes, instructions). The
engine needs no torch, so tests drive it with fake samplers and a fake clock.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ablate.analysis.stats.confidence import quantile_interval

#: One measurement of one configuration (a positive number: seconds per call, bytes, instructions).
Sampler = Callable[[], float]
#: ``(treatment, baseline)``: a ratio whose interval decides when to stop; ``baseline`` None: the value itself.
Pair = tuple[str, "str | None"]

TIGHT, BUDGET, MAX_ROUNDS, NOTHING_LEFT = "tight", "budget", "max_rounds", "nothing left"
#: Rounds between two looks at the intervals grow by this factor (a geometric schedule).
CHECK_GROWTH = 1.1


@dataclass(frozen=True)
class Rounds:
    """The values of interleaved rounds.

    Attributes:
        values: per configuration, one value per round (NaN from the round it failed in on).
        orders: the order each round measured the configurations in.
        stop: why the rounds stopped: ``tight``, ``budget``, ``max_rounds`` or ``nothing left``.
        spent_s: seconds of rounds (the clock's), measurement overhead included.
        failures: ``{configuration: (status, reason)}`` of samplers that raised (they leave the rounds).
    """

    values: dict[str, tuple[float, ...]]
    orders: tuple[tuple[str, ...], ...]
    stop: str
    spent_s: float
    failures: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Number of rounds run."""
        return len(self.orders)

    def position(self, name: str, round_index: int) -> int:
        """Where ``name`` came in round ``round_index`` (0 = first; -1 = not measured in it)."""
        order = self.orders[round_index]
        return order.index(name) if name in order else -1


def log_ratio_interval(treatment: Sequence[float], baseline: Sequence[float] | None,
                       alpha: float) -> tuple[float, float]:
    """``(low, high)`` of the median paired ratio ``treatment / baseline`` (or of the median value), as ratios.

    The confidence sequence :func:`~ablate.analysis.stats.verdict.judge` uses for a ratio metric:
    the median of the paired log ratios, inverted from order statistics; ``(0, inf)``
    until the rounds can rule anything out.
    """
    t = np.log(np.asarray(treatment, dtype=float))
    q = t if baseline is None else t - np.log(np.asarray(baseline, dtype=float))
    low, high = quantile_interval(q[np.isfinite(q)], 0.5, alpha)
    return math.exp(low) if math.isfinite(low) else 0.0, math.exp(high) if math.isfinite(high) else math.inf


def is_tight(treatment: Sequence[float], baseline: Sequence[float] | None, alpha: float, precision: float) -> bool:
    """Whether the interval of the median ratio is narrower than ``1 + precision`` (``high / low``)."""
    low, high = log_ratio_interval(treatment, baseline, alpha)
    return low > 0 and math.isfinite(high) and high / low <= 1.0 + precision


def rounds_to_decide(alpha: float, limit: int = 1000) -> int:
    """The fewest rounds whose interval can be finite: identical values, zero spread, at ``alpha``.

    A deterministic quantity (peak bytes, instruction counts) needs this many rounds
    before a verdict is possible at all; more rounds of identical values add nothing.
    """
    for n in range(1, limit + 1):
        if math.isfinite(quantile_interval(np.zeros(n), 0.5, alpha)[1]):
            return n
    raise ValueError(f"no interval is finite within {limit} rounds at alpha={alpha:g}")


def calls_per_sample(seconds_per_call: float, sample_s: float, *, limit: int = 100_000) -> int:
    """How many calls one timed sample batches so that it lasts at least ``sample_s`` seconds."""
    if not seconds_per_call > 0:
        return limit
    return int(min(limit, max(1, math.ceil(sample_s / seconds_per_call))))


def _failed(error: Exception) -> tuple[str, str]:
    return "failed", f"{type(error).__name__}: {error}"


def interleaved_rounds(
    samplers: Mapping[str, Sampler],
    tracked: Sequence[Pair],
    *,
    alpha: float = 0.05,
    precision: float = 0.05,
    budget_s: float = 20.0,
    min_s: float = 0.0,
    min_rounds: int = 3,
    max_rounds: int = 100_000,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
    classify: Callable[[Exception], tuple[str, str]] = _failed,
) -> Rounds:
    """Measure every configuration once per round, in a shuffled order, until tight or out of budget.

    Args:
        samplers: one sampler per configuration name.
        tracked: the ratios (or, with baseline ``None``, values) whose intervals decide the stop;
            each spends ``alpha / len(tracked)`` (Bonferroni, as a report's family of them does).
        alpha: error rate of the tracked intervals together.
        precision: tight when every tracked interval has ``high / low <= 1 + precision``.
        budget_s: stop after this many seconds of rounds, tight or not (a started round finishes).
        min_s: no stop before every configuration was measured this many seconds (summed over rounds).
        min_rounds, max_rounds: bounds on the number of rounds.
        seed: seeds the per-round shuffles (the orders are recorded either way).
        clock: seconds, for the budget (tests pass a fake).
        classify: ``(status, reason)`` of a sampler's exception; that configuration leaves the rounds.

    Returns:
        The :class:`Rounds`.
    """
    names = list(samplers)
    for pair in tracked:
        for name in pair:
            if name is not None and name not in samplers:
                raise ValueError(f"tracked ratio {pair} names {name!r}, which has no sampler; have {names}")
    if not 0 < alpha < 1 or precision <= 0 or budget_s <= 0 or min_rounds < 1 or max_rounds < min_rounds:
        raise ValueError(f"need 0 < alpha < 1, precision > 0, budget_s > 0 and 1 <= min_rounds <= max_rounds; got "
                         f"alpha={alpha}, precision={precision}, budget_s={budget_s}, "
                         f"rounds {min_rounds}..{max_rounds}")
    rng = random.Random(seed)
    values: dict[str, list[float]] = {name: [] for name in names}
    spent = dict.fromkeys(names, 0.0)
    failures: dict[str, tuple[str, str]] = {}
    orders: list[tuple[str, ...]] = []
    each = alpha / max(1, len(tracked))
    start = clock()
    next_look = min_rounds
    stop = MAX_ROUNDS
    while len(orders) < max_rounds:
        order = [name for name in names if name not in failures]
        if not order:
            stop = NOTHING_LEFT
            break
        rng.shuffle(order)
        for name in order:
            began = clock()
            try:
                value = float(samplers[name]())
            except Exception as error:  # noqa: BLE001 - the configuration's status, the others go on
                failures[name] = classify(error)
                value = math.nan
            spent[name] += clock() - began
            values[name].append(value)
        for name in names:  # a configuration that left earlier has no value in this round
            if len(values[name]) < len(orders) + 1:
                values[name].append(math.nan)
        orders.append(tuple(order))
        rounds = len(orders)
        if clock() - start >= budget_s:
            stop = BUDGET
            break
        if rounds >= next_look:
            next_look = max(rounds + 1, math.ceil(rounds * CHECK_GROWTH))
            measured_enough = all(spent[n] >= min_s for n in names if n not in failures)
            live = [(t, b) for t, b in tracked if t not in failures and (b is None or b not in failures)]
            if measured_enough and all(_tight(values, t, b, each, precision) for t, b in live):
                stop = TIGHT
                break
    return Rounds({name: tuple(v) for name, v in values.items()}, tuple(orders), stop, clock() - start, failures)


def _tight(values: Mapping[str, list[float]], treatment: str, baseline: str | None, alpha: float,
           precision: float) -> bool:
    return is_tight(values[treatment], None if baseline is None else values[baseline], alpha, precision)
