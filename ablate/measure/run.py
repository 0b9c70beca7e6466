"""A suite's measurement run: one model measured at every ``[measure]`` length.

Called by :func:`ablate.train.execute` for runs of kind ``measure``; returns
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
from ablate.model import config_for_task
from ablate.store import MetricRow
from ablate.tasks import create_task

#: Metrics of a point, in order (``peak_*`` only when memory is measured; reserved only on CUDA).
TIME_METRICS = ("tokens_per_s", "time_median_s", "time_iqr_s")


def model_config_dict(config: dict[str, Any]) -> dict[str, Any]:
    """The full :class:`~ablate.model.ModelConfig` dict of a resolved run config (sizes from its task)."""
    return config_for_task(create_task(config["task"]), config["model"]).to_dict()


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


def run_measurement(config: dict[str, Any]) -> tuple[str, str | None, list[MetricRow]]:
    """Measure a resolved ``kind = "measure"`` run config at each of its lengths.

    Returns:
        ``(status, reason, rows)``: ``ok`` when any length was measured (lengths that
        were not keep their own status), ``failed`` when any length failed for another
        reason than memory or length, else the shared ``oom``/``unsupported`` status.
        A device or dtype this machine cannot measure is ``unsupported`` with no rows.
    """
    measure = config["measure"]
    try:
        device = resolve_device(measure.get("device", "cpu"))
        check_arguments(measure["mode"], measure["dtype"], device, measure["batch_size"], min(measure["lengths"], default=1))
    except ValueError as error:
        return "unsupported", str(error), []
    memory = bool(measure.get("memory", True))
    results = measure_sweep(
        model_config_dict(config),
        measure["lengths"],
        mode=measure["mode"],
        batch_size=measure["batch_size"],
        dtype=measure["dtype"],
        device=device,
        threads=measure.get("threads"),
        memory=memory,
        seed=config.get("seed", 0),
        min_run_time=measure.get("min_run_time", 0.5),
        train=config.get("train"),
    )
    names = metric_names(str(device), memory)
    rows = [row for length, result in results.items() for row in rows_of(length, result, names)]
    statuses = [r.status for r in results.values()]
    reasons = [r.reason for r in results.values() if r.reason]
    if "failed" in statuses:
        return "failed", next(r.reason for r in results.values() if r.status == "failed"), rows
    if "ok" in statuses:
        return "ok", None, rows
    status = "oom" if "oom" in statuses else "unsupported"
    return status, reasons[0] if reasons else None, rows
