"""Repeated timing of one callable: warm-up, then blocks until the spread is small.

The timed loop is :meth:`torch.utils.benchmark.Timer.adaptive_autorange`: it
picks a block size (``number`` calls per block, so each block lasts at least
~10 ms and the timer's own overhead is negligible), then times blocks until at
least ``min_run_time`` seconds were measured, more than three blocks exist and
``IQR / median < threshold`` -- or ``max_run_time`` is spent. Every block gives
one per-call time (block time / ``number``); :class:`Timing` summarises them.

On CUDA the clock synchronizes the measured device before it reads the time, so
a block ends when the GPU has finished its work, not when Python queued it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils import benchmark


@dataclass(frozen=True)
class Timing:
    """Per-call times of one measured callable and their summary.

    Attributes:
        median_s: median per-call time (seconds).
        iqr_s: interquartile range of the per-call times (75th - 25th percentile,
            linear interpolation, like :class:`torch.utils.benchmark.Measurement`).
        n: number of measurements (blocks); each is one per-call time.
        times_s: the raw per-call times, one per block, in measurement order.
        number_per_run: calls per block (each time in ``times_s`` averages that many calls).
        threads: ``torch.get_num_threads()`` during the measurement.
        warmup_calls: untimed calls made before the timed blocks.
    """

    median_s: float
    iqr_s: float
    n: int
    times_s: tuple[float, ...] = field(repr=False)
    number_per_run: int = 1
    threads: int = 1
    warmup_calls: int = 0

    @classmethod
    def from_times(cls, times_s: Sequence[float], *, number_per_run: int = 1, threads: int | None = None,
                   warmup_calls: int = 0) -> Timing:
        """Summarise known per-call times (median and IQR)."""
        median, iqr = median_iqr(times_s)
        return cls(median_s=median, iqr_s=iqr, n=len(times_s), times_s=tuple(float(t) for t in times_s),
                   number_per_run=number_per_run, threads=torch.get_num_threads() if threads is None else threads,
                   warmup_calls=warmup_calls)

    @property
    def relative_iqr(self) -> float:
        """``iqr / median`` (the spread the adaptive loop tries to push below its threshold)."""
        return self.iqr_s / self.median_s if self.median_s > 0 else float("nan")

    @property
    def timed_s(self) -> float:
        """Seconds spent inside timed blocks (sum of per-call times x calls per block)."""
        return float(sum(self.times_s)) * self.number_per_run

    def tokens_per_s(self, tokens_per_call: int) -> float:
        """Throughput: ``tokens_per_call / median_s``."""
        return tokens_per_second(tokens_per_call, self.median_s)


def median_iqr(times_s: Sequence[float]) -> tuple[float, float]:
    """``(median, IQR)`` of per-call times; raises ``ValueError`` on an empty sequence."""
    values = np.asarray(times_s, dtype=float)
    if values.size == 0:
        raise ValueError("cannot summarise zero measurements")
    p25, median, p75 = np.percentile(values, [25, 50, 75])
    return float(median), float(p75 - p25)


def tokens_per_second(tokens_per_call: int, seconds_per_call: float) -> float:
    """``tokens_per_call / seconds_per_call`` (NaN for a non-positive time)."""
    return tokens_per_call / seconds_per_call if seconds_per_call > 0 else float("nan")


def device_clock(device: torch.device | str) -> Callable[[], float]:
    """A ``perf_counter`` clock that first waits for ``device`` (CUDA) to finish queued work."""
    device = torch.device(device)
    if device.type != "cuda":
        return time.perf_counter

    def clock() -> float:
        torch.cuda.synchronize(device)
        return time.perf_counter()

    return clock


def time_callable(
    fn: Callable[[], Any],
    *,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    warmup: int = 2,
    min_run_time: float = 0.5,
    max_run_time: float | None = None,
    threshold: float = 0.1,
    clock: Callable[[], float] | None = None,
) -> Timing:
    """Warm up ``fn``, then time it until the spread is small.

    Args:
        fn: the work to time, called with no arguments.
        device: where ``fn`` runs; on CUDA the clock synchronizes that device.
        threads: torch intra-op threads during warm-up and timing (default: as set now).
        warmup: untimed calls first (kernel selection, lazy optimizer state, compilation).
        min_run_time: seconds of timed blocks before the spread may stop the loop.
        max_run_time: stop after this many timed seconds regardless of spread
            (default ``max(2, 10 * min_run_time)``).
        threshold: stop once ``IQR / median`` of the per-call times is below this.
        clock: replaces the (synchronizing) clock; for tests.

    Returns:
        The :class:`Timing` of ``fn``.
    """
    device = torch.device(device)
    threads = torch.get_num_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if min_run_time <= 0:
        raise ValueError(f"min_run_time must be > 0, got {min_run_time}")
    max_run_time = max(2.0, 10 * min_run_time) if max_run_time is None else max_run_time
    clock = clock or device_clock(device)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            fn()
        clock()  # on CUDA: the warm-up has finished before timing starts
        timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, timer=clock, num_threads=threads)
        measurement = timer.adaptive_autorange(threshold=threshold, min_run_time=min_run_time,
                                               max_run_time=max_run_time)
    finally:
        torch.set_num_threads(previous)
    return Timing.from_times(measurement.times, number_per_run=measurement.number_per_run, threads=threads,
                             warmup_calls=warmup)
