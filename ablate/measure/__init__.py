"""Throughput and peak memory of a model step, on the CPU and CUDA.

How they grow with length is a statistic of the results: :func:`ablate.analysis.stats.fit_power_law`.

- :mod:`~ablate.measure.timing`: warm-up + adaptive repeated timing (:class:`Timing`).
- :mod:`~ablate.measure.memory`: peak memory (CUDA allocator; CPU peak RSS of a spawned process).
- :mod:`~ablate.measure.workload`: the measured step (forward or training step) on a frozen batch.
- :mod:`~ablate.measure.point`: :func:`measure_point` -> :class:`PointResult`; :func:`measure_sweep`.
- :mod:`~ablate.measure.environment`: :func:`environment_facts` (``env.*`` columns).
- :mod:`~ablate.measure.run`: a suite's ``measure`` run (:func:`run_measurement`).
"""

from __future__ import annotations

from ablate.measure.environment import environment_facts, git_commit
from ablate.measure.memory import MemoryResult, cpu_peak, cuda_peak, peakmem_step
from ablate.core.devices import is_oom
from ablate.measure.outcome import classify_error
from ablate.measure.point import PointResult, measure_point, measure_sweep
from ablate.measure.timing import Timing, median_iqr, time_callable, tokens_per_second

__all__ = [
    "MemoryResult",
    "PointResult",
    "Timing",
    "classify_error",
    "cpu_peak",
    "cuda_peak",
    "environment_facts",
    "git_commit",
    "is_oom",
    "measure_point",
    "measure_sweep",
    "median_iqr",
    "peakmem_step",
    "time_callable",
    "tokens_per_second",
]
