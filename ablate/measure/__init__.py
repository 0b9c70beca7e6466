"""Throughput and peak memory of a model step, on the CPU and CUDA, and how they scale with length.

- :mod:`~ablate.measure.timing`: warm-up + adaptive repeated timing (:class:`Timing`).
- :mod:`~ablate.measure.memory`: peak memory (CUDA allocator; CPU peak RSS of a spawned process).
- :mod:`~ablate.measure.workload`: the measured step (forward or training step) on a frozen batch.
- :mod:`~ablate.measure.point`: :func:`measure_point` -> :class:`PointResult`; :func:`measure_sweep`.
- :mod:`~ablate.measure.scaling`: :func:`fit_scaling` (log-log exponent with a 95% interval).
- :mod:`~ablate.measure.environment`: :func:`environment_facts` (``env.*`` columns).
- :mod:`~ablate.measure.run`: a suite's ``measure`` run (:func:`run_measurement`).
"""

from __future__ import annotations

from ablate.measure.environment import environment_facts, git_commit
from ablate.measure.memory import MemoryResult, cpu_peak, cuda_peak, peakmem_step
from ablate.devices import is_oom
from ablate.measure.outcome import classify_error
from ablate.measure.point import PointResult, measure_point, measure_sweep
from ablate.measure.scaling import ScalingFit, fit_scaling, fit_scaling_frame
from ablate.measure.timing import Timing, summarize, time_callable, tokens_per_second

__all__ = [
    "MemoryResult",
    "PointResult",
    "ScalingFit",
    "Timing",
    "classify_error",
    "cpu_peak",
    "cuda_peak",
    "environment_facts",
    "fit_scaling",
    "fit_scaling_frame",
    "git_commit",
    "is_oom",
    "measure_point",
    "measure_sweep",
    "peakmem_step",
    "summarize",
    "time_callable",
    "tokens_per_second",
]
