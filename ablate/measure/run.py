"""A suite's measurement run: one model measured at every ``[measure]`` length.

Called by :func:`ablate.executors.worker.execute` for runs of kind ``measure``; returns
``(status, reason, rows)`` with one :class:`~ablate.store.MetricRow` per metric
and length, a length that ran out of memory or cannot be represented keeping
its own ``oom`` / ``unsupported`` rows while the other lengths are measured.
"""

from __future__ import annotations

import math
from typing import Any

from ablate.devices import resolve_device
from ablate.measure.point import PointResult, measure_sweep
from ablate.measure.workload import check_arguments
from ablate.store import MetricRow
from ablate.suite.run_config import MeasureRun
from ablate.tasks import create_task

#: Metrics of a point, in order (``peak_*`` only when memory is measured; reserved only on CUDA).
TIME_METRICS = ("tokens_per_s", "time_median_s", "time_iqr_s")


def model_config_dict(config: MeasureRun) -> dict[str, Any]:
    """The full :class:`~ablate.model.ModelConfig` dict of a measurement run (sizes from its task)."""
    return config.model.model_config_for(create_task(config.task)).to_dict()


def metric_names(device: str, memory: bool) -> tuple[str, ...]:
    """The metrics a point on ``device`` reports."""
    names = TIME_METRICS
    if memory:
        names += ("peak_memory_bytes",) + (("peak_reserved_bytes",) if device.startswith("cuda") else ())
    return names


def rows_of(length: int, result: PointResult, names: tuple[str, ...]) -> list[MetricRow]:
    """The tidy rows of one point (NaN values with the point's status when it is not ok)."""
    if result.ok:
        return [MetricRow(n, length, float(result.metrics.get(n, math.nan))) for n in names]
    return [MetricRow(n, length, math.nan, result.status, result.reason) for n in names]


def run_measurement(config: MeasureRun) -> tuple[str, str | None, list[MetricRow]]:
    """Measure a measurement run at each of its lengths.

    Returns:
        ``(status, reason, rows)``: ``ok`` when any length was measured (lengths that
        were not keep their own status), ``failed`` when any length failed for another
        reason than memory or length, else the shared ``oom``/``unsupported`` status.
        A device or dtype this machine cannot measure is ``unsupported`` with no rows.
    """
    measure = config.measure
    try:
        device = resolve_device(measure.device)
        check_arguments(measure.mode, measure.dtype, device, measure.batch_size, min(measure.lengths))
    except ValueError as error:
        return "unsupported", str(error), []
    results = measure_sweep(
        model_config_dict(config),
        measure.lengths,
        mode=measure.mode,
        batch_size=measure.batch_size,
        dtype=measure.dtype,
        device=device,
        threads=measure.threads,
        memory=measure.memory,
        seed=config.seed,
        min_run_time=measure.min_run_time,
        train=config.train.model_dump(mode="json"),
    )
    names = metric_names(str(device), measure.memory)
    rows = [row for length, result in results.items() for row in rows_of(length, result, names)]
    statuses = [r.status for r in results.values()]
    reasons = [r.reason for r in results.values() if r.reason]
    if "failed" in statuses:
        return "failed", next(r.reason for r in results.values() if r.status == "failed"), rows
    if "ok" in statuses:
        return "ok", None, rows
    status = "oom" if "oom" in statuses else "unsupported"
    return status, reasons[0] if reasons else None, rows
