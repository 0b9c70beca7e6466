"""One measurement point: a model at one (mode, batch size, length, dtype, device).

:func:`measure_point` never raises for a problem of the point itself: a length
the encoding cannot represent is ``unsupported``, running out of memory is
``oom`` (memory is freed before returning), anything else is ``failed`` with the
reason. It raises ``ValueError`` only for arguments that cannot be measured at
all (float16 on the CPU, CUDA without a GPU, an unknown mode or dtype).
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

import ablate.measure.memory as _memory
from ablate.model.attention import choose_backend
from ablate.core.devices import resolve_device
from ablate.measure.outcome import classify_error
from ablate.measure.environment import environment_facts
from ablate.measure.timing import Timing, time_callable
from ablate.measure.workload import Workload, build_step, check_arguments, spec_of, warm_up
from ablate.model.config import ModelConfig

STATUSES = ("ok", "oom", "unsupported", "failed")

#: What ``peak_memory_bytes`` counts, recorded in every point's facts.
MEMORY_COUNTED = ("peak bytes the step adds above weights + inputs: activations, temporaries, workspaces, "
                  "outputs, gradients and optimizer state created by the step; CUDA: max_memory_allocated; "
                  "CPU: peak RSS of a spawned worker process above its RSS after building")


@dataclass
class PointResult:
    """The outcome of one measurement point.

    Attributes:
        status: ``ok``, ``oom``, ``unsupported`` or ``failed``.
        reason: why, when not ``ok``.
        metrics: ``tokens_per_s``, ``time_median_s``, ``time_iqr_s`` and, with memory,
            ``peak_memory_bytes`` (+ ``peak_reserved_bytes`` on CUDA); empty unless ok.
        facts: how it was measured (device, threads, measurements, memory method, environment).
        timing: the raw timing, when timed.
        memory: the raw memory result, when measured.
    """

    status: str
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    timing: Timing | None = field(default=None, repr=False)
    memory: _memory.MemoryResult | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def free_memory(device: torch.device) -> None:
    """Collect garbage and, on CUDA, return cached blocks (after an OOM, before the next point)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_point(
    config: ModelConfig | Mapping[str, Any],
    *,
    mode: str = "forward",
    batch_size: int = 8,
    length: int = 128,
    dtype: str = "float32",
    device: str | torch.device = "cpu",
    threads: int | None = None,
    memory: bool = True,
    seed: int = 0,
    min_run_time: float = 0.5,
    max_run_time: float | None = None,
    threshold: float = 0.1,
    warmup: int = 2,
    memory_repeats: int = 2,
    train: Mapping[str, Any] | None = None,
) -> PointResult:
    """Throughput and peak memory of one step of ``config``'s model.

    Args:
        config: the model (a :class:`ModelConfig` or its dict form).
        mode: ``forward`` (inference: eval mode, ``torch.inference_mode``) or
            ``train_step`` (:class:`~ablate.run.step.TrainStep`, the step suites train with).
        batch_size, length: the frozen input batch ``(batch_size, length)``.
        dtype: ``float32``, or autocast ``bfloat16`` / ``float16`` (CUDA only) with
            float32 parameters, as training uses them.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads: torch intra-op threads (default: as set now); recorded either way.
        memory: also measure peak memory (on the CPU in a spawned worker process).
        seed: freezes weights and inputs.
        min_run_time, max_run_time, threshold, warmup: see :func:`~ablate.measure.timing.time_callable`.
        memory_repeats: steps run while the memory peak is tracked.
        train: the suite's ``train`` section for ``train_step`` (default: the schema's defaults).

    Returns:
        A :class:`PointResult`; ``tokens_per_s = batch_size * length / time_median_s``
        (input tokens; a ``cls`` pooling's extra token is not counted).

    Raises:
        ValueError: for arguments that cannot be measured (float16 on the CPU, CUDA
            without a GPU, unknown mode or dtype).
    """
    resolved = resolve_device(device)
    check_arguments(mode, dtype, resolved, batch_size, length)
    threads = torch.get_num_threads() if threads is None else int(threads)
    spec = spec_of(config, mode=mode, batch_size=batch_size, length=length, dtype=dtype, device=str(resolved),
                   seed=seed, train=dict(train) if train is not None else None)
    facts: dict[str, Any] = {
        "mode": mode, "batch_size": batch_size, "length": length, "dtype": dtype, "device": str(resolved),
        "threads": threads, "seed": seed, "precision": "float32" if dtype == "float32" else f"autocast {dtype}",
        **{f"env.{k}": v for k, v in environment_facts(resolved, threads=threads).items()},
    }
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.cuda.device(resolved) if resolved.type == "cuda" else nullcontext():
            return _measure(spec, resolved, facts, memory=memory, min_run_time=min_run_time,
                            max_run_time=max_run_time, threshold=threshold, warmup=warmup,
                            memory_repeats=memory_repeats, threads=threads)
    finally:
        torch.set_num_threads(previous_threads)


def _measure(spec: Any, device: torch.device, facts: dict[str, Any], *, memory: bool, min_run_time: float,
             max_run_time: float | None, threshold: float, warmup: int, memory_repeats: int,
             threads: int) -> PointResult:
    metrics: dict[str, float] = {}
    timing: Timing | None = None
    peak: _memory.MemoryResult | None = None
    outcome: tuple[str, str] | None = None
    workload: Workload | None = None
    try:
        if memory and device.type == "cuda":  # one-off library state is baseline, not the step's
            warm_up(spec, make_workload)
        workload = make_workload(spec)
        facts["attention_backend"] = _attention_backend(workload, device)
        if memory and device.type == "cuda":  # first, on fresh state: the first step creates optimizer state
            peak = _memory.cuda_peak(workload.step, device, repeats=memory_repeats)
        timing = time_callable(workload.step, device=device, threads=threads, warmup=warmup,
                               min_run_time=min_run_time, max_run_time=max_run_time, threshold=threshold)
    except Exception as error:  # noqa: BLE001 - a point's problem is its status
        outcome = classify_error(error)
    workload = None  # drop the model, batch and optimizer (and, after an error, the traceback's frames)
    if outcome is not None:
        free_memory(device)
        return PointResult(outcome[0], outcome[1], {}, facts)
    if memory and device.type == "cpu":
        free_memory(device)
        try:
            peak = cpu_peak_of(spec, repeats=memory_repeats, threads=threads)
        except _memory.ChildFailed as error:
            return PointResult(error.kind, f"memory measurement: {error}", {}, facts, timing=timing)
        except Exception as error:  # noqa: BLE001 - e.g. a daemonic process may not start the child
            status, reason = classify_error(error)
            return PointResult(status, f"memory measurement: {reason}", {}, facts, timing=timing)
    assert timing is not None
    metrics["tokens_per_s"] = timing.tokens_per_s(spec.batch_size * spec.length)
    metrics["time_median_s"] = timing.median_s
    metrics["time_iqr_s"] = timing.iqr_s
    facts.update({"measurements": timing.n, "number_per_run": timing.number_per_run,
                  "warmup_calls": timing.warmup_calls, "timed_s": timing.timed_s,
                  "relative_iqr": timing.relative_iqr})
    if peak is not None:
        metrics["peak_memory_bytes"] = float(peak.peak_bytes)
        if peak.reserved_bytes is not None:
            metrics["peak_reserved_bytes"] = float(peak.reserved_bytes)
        facts.update({"memory_method": peak.method, "memory_baseline_bytes": peak.baseline_bytes,
                      "memory_repeats": peak.repeats, "memory_counted": MEMORY_COUNTED})
    return PointResult("ok", None, metrics, facts, timing=timing, memory=peak)


def make_workload(spec: Any) -> Workload:
    """Build the measured workload (module level so tests can substitute a fake)."""
    return Workload(spec)


def cpu_peak_of(spec: Any, *, repeats: int, threads: int) -> _memory.MemoryResult:
    """CPU peak memory of ``spec``'s step, measured in the spawned memory worker."""
    return cpu_peaks_of(spec, samples=1, repeats=repeats, threads=threads)[0]


def cpu_peaks_of(spec: Any, *, samples: int, repeats: int, threads: int | None) -> list[_memory.MemoryResult]:
    """``samples`` CPU peak memories of ``spec``'s step, each of a fresh build, in the spawned memory worker."""
    return _memory.cpu_peaks(functools.partial(build_step, spec), samples=samples,
                             warmup=functools.partial(warm_up, spec), repeats=repeats, threads=threads)


def _attention_backend(workload: Workload, device: torch.device) -> str | None:
    try:
        return choose_backend(workload.config.attention_backend, device, workload.model.encoding)
    except Exception:  # noqa: BLE001 - a fact, never a reason to fail
        return None


def measure_sweep(
    config: ModelConfig | Mapping[str, Any], lengths: Iterable[int], **kwargs: Any
) -> dict[int, PointResult]:
    """:func:`measure_point` at every length (an ``oom``/``unsupported``/``failed`` length does not stop it).

    Timing never overlaps: the points run one after another in this process.
    """
    results: dict[int, PointResult] = {}
    for length in lengths:
        started = time.perf_counter()
        result = measure_point(config, length=int(length), **kwargs)
        result.facts["wall_s"] = time.perf_counter() - started
        results[int(length)] = result
    return results
