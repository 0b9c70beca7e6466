"""Interleaved rounds: the order really interleaves, the rounds stop when tight or out of budget (fake clock)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from ablate.measure.rounds import (
    BUDGET,
    NOTHING_LEFT,
    TIGHT,
    calls_per_sample,
    interleaved_rounds,
    is_tight,
    log_ratio_interval,
    rounds_to_decide,
)
from ablate.analysis.stats.verdict import judge


class FakeClock:
    """Seconds that advance only when a fake sampler says its sample took that long."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def samplers_of(values: dict[str, callable], clock: FakeClock, calls: list[str], seconds: float = 0.01) -> dict:
    """Samplers that log their calls, advance the clock and return ``values[name]()``."""
    def make(name):
        def sample():
            calls.append(name)
            clock.now += seconds
            return values[name]()
        return sample
    return {name: make(name) for name in values}


def test_each_round_measures_every_configuration_once_in_a_shuffled_order():
    clock, calls = FakeClock(), []
    rng = random.Random(1)
    values = {name: (lambda: 1.0 + rng.random()) for name in "abcd"}  # never tight: runs to max_rounds
    rounds = interleaved_rounds(samplers_of(values, clock, calls), [("b", "a"), ("c", "a"), ("d", "a")],
                                budget_s=1e9, min_rounds=20, max_rounds=20, clock=clock, seed=3)
    assert rounds.count == 20 and len(calls) == 80
    for i, order in enumerate(rounds.orders):
        assert sorted(order) == list("abcd")
        assert tuple(calls[4 * i:4 * i + 4]) == order  # the recorded order is the order of the calls
    assert len(set(rounds.orders)) > 10  # shuffled afresh, not one fixed sequence
    first = [order[0] for order in rounds.orders]
    assert set(first) == set("abcd")  # every configuration leads some rounds
    assert rounds.position(rounds.orders[5][2], 5) == 2
    assert all(len(v) == 20 for v in rounds.values.values())


def test_rounds_stop_when_every_ratio_is_tight():
    clock, calls = FakeClock(), []
    values = {"base": lambda: 1.0, "slow": lambda: 1.5}  # noiseless: tight as soon as an interval is finite
    rounds = interleaved_rounds(samplers_of(values, clock, calls), [("slow", "base")], alpha=0.05, precision=0.01,
                                budget_s=100.0, clock=clock)
    assert rounds.stop == TIGHT
    assert rounds.count == rounds_to_decide(0.05)  # the first round an interval can be finite
    verdict = judge(rounds.values["slow"], rounds.values["base"], metric="time_median_s", alpha=0.05, by="interval")
    assert verdict.verdict == "worse" and verdict.estimate == pytest.approx(1.5)


def test_noisy_ratios_take_more_rounds_and_the_budget_caps_them():
    clock, calls = FakeClock(), []
    rng = np.random.default_rng(0)
    values = {"base": lambda: float(np.exp(rng.normal(0, 0.2))), "other": lambda: float(np.exp(rng.normal(0, 0.2)))}
    rounds = interleaved_rounds(samplers_of(values, clock, calls, seconds=0.5), [("other", "base")],
                                precision=0.01, budget_s=30.0, clock=clock)
    assert rounds.stop == BUDGET
    assert rounds.count == 30  # 2 samples x 0.5 s per round: the round that reaches 30 s is the last
    assert rounds.spent_s == pytest.approx(30.0)
    assert not is_tight(rounds.values["other"], rounds.values["base"], 0.05, 0.01)


def test_a_moderately_noisy_ratio_stops_tight_before_the_budget():
    clock, calls = FakeClock(), []
    rng = np.random.default_rng(1)
    values = {"base": lambda: float(np.exp(rng.normal(0, 0.01))),
              "other": lambda: 1.2 * float(np.exp(rng.normal(0, 0.01)))}
    rounds = interleaved_rounds(samplers_of(values, clock, calls), [("other", "base")], precision=0.05,
                                budget_s=1000.0, clock=clock)
    assert rounds.stop == TIGHT and rounds.count < 100
    low, high = log_ratio_interval(rounds.values["other"], rounds.values["base"], 0.05)
    assert low < 1.2 < high and high / low <= 1.05


def test_min_s_keeps_rounds_going_until_each_configuration_was_measured_long_enough():
    clock, calls = FakeClock(), []
    values = {"base": lambda: 1.0, "other": lambda: 2.0}
    rounds = interleaved_rounds(samplers_of(values, clock, calls, seconds=0.1), [("other", "base")], min_s=2.5,
                                budget_s=100.0, clock=clock)
    assert rounds.stop == TIGHT and rounds.count >= 25


def test_a_failing_configuration_leaves_the_rounds_and_the_others_go_on():
    clock, calls = FakeClock(), []
    count = {"n": 0}

    def breaks():
        count["n"] += 1
        if count["n"] == 3:
            raise MemoryError("out of memory")
        return 2.0

    values = {"base": lambda: 1.0, "broken": breaks, "other": lambda: 3.0}
    rounds = interleaved_rounds(samplers_of(values, clock, calls), [("broken", "base"), ("other", "base")],
                                budget_s=100.0, clock=clock, classify=lambda e: ("oom", str(e)))
    assert rounds.failures == {"broken": ("oom", "out of memory")}
    assert rounds.stop == TIGHT
    assert math.isnan(rounds.values["broken"][2]) and all(math.isnan(v) for v in rounds.values["broken"][3:])
    assert all("broken" not in order for order in rounds.orders[3:])
    everything_fails = interleaved_rounds({"x": lambda: 1 / 0}, [("x", None)], budget_s=10.0, clock=clock)
    assert everything_fails.stop == NOTHING_LEFT and "x" in everything_fails.failures


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="no sampler"):
        interleaved_rounds({"a": lambda: 1.0}, [("b", "a")])
    with pytest.raises(ValueError, match="precision"):
        interleaved_rounds({"a": lambda: 1.0}, [("a", None)], precision=0)


def test_calls_are_batched_until_a_sample_lasts_long_enough():
    assert calls_per_sample(0.004, 0.02) == 5
    assert calls_per_sample(0.5, 0.02) == 1
    assert calls_per_sample(0.0, 0.02) == 100_000  # a call too short to see: as many as allowed


def test_rounds_to_decide_grows_as_alpha_shrinks():
    assert rounds_to_decide(0.05) == 7  # the first n at which a median's confidence sequence can be finite
    assert rounds_to_decide(0.005) > rounds_to_decide(0.05)
    assert judge([1.0] * 7, [1.0] * 7, metric="peak_memory_bytes", alpha=0.05, by="interval").verdict == "equivalent"
    assert judge([1.0] * 6, [1.0] * 6, metric="peak_memory_bytes", alpha=0.05, by="interval").verdict == "undecided"
