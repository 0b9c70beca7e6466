"""The worker's entry point: one run spec in, its record out, whatever happens in between.

Every executor runs :func:`execute_spec` (in this process, a spawned process or a Ray
worker). It parses the plan's plain config dict into its typed form once and hands
it to training (:mod:`ablate.run.train`) or measurement (:mod:`ablate.measure.run`),
siblings below it; a problem of the run itself becomes the record's status
(``unsupported``, ``diverged``, ``oom``, ``failed`` with the reason), so one bad
run never stops a suite.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any

from ablate.core.devices import is_oom
from ablate.core.environment import environment
from ablate.core.errors import SuiteError, UnsupportedLengthError, UnsupportedRun, short_reason
from ablate.measure.run import run_measurement
from ablate.results.store import Record
from ablate.suite import RunSpec
from ablate.suite.run_config import MeasureRun, parse_run
from ablate.run.train import train_evaluate_curve


def execute_spec(spec: RunSpec) -> Record:
    """Run one spec in this process and return its record (never raises for a problem of the run)."""
    return execute(spec.run_id, spec.suite, spec.kind, spec.config, spec.axes)


def execute(run_id: str, suite: str, kind: str, config: dict[str, Any], axes: dict[str, Any]) -> Record:
    """Run one spec (train or measure) and return its record; never raises for run problems.

    The worker's boundary: ``config`` (the plan's plain dict) is parsed into its typed
    form here, once; a config that does not parse is a ``failed`` record saying why.
    """
    started_at = time.time()
    clock = time.perf_counter()
    status, reason, rows, curve = "failed", None, [], []
    keep: dict[str, Any] = {"run_id": run_id}
    try:
        run = parse_run(config, f"run {run_id}")
        if isinstance(run, MeasureRun):
            status, reason, rows = run_measurement(run)
        else:
            status, reason, rows, curve = train_evaluate_curve(run, keep)
    except (UnsupportedLengthError, UnsupportedRun) as error:
        status, reason = "unsupported", str(error)
    except SuiteError as error:  # a config that does not parse: the user's message, no traceback
        status, reason = "failed", str(error)
    except Exception as error:  # noqa: BLE001 - recorded, the suite goes on
        status = "oom" if is_oom(error) else "failed"
        reason = short_reason(error) + ("" if status == "oom" else "\n" + traceback.format_exc(limit=-3))
    wall = time.perf_counter() - clock
    work = sum(r.value for r in rows if r.metric in ("train_time_s", "eval_time_s") and math.isfinite(r.value))
    return Record(run_id=run_id, suite=suite, kind=kind, status=status, config=config, axes=axes, reason=reason,
                  metrics=rows, curve=curve, env=environment(config), started_at=started_at, wall_s=wall,
                  work_s=work or wall, checkpoint=keep.get("checkpoint") if status == "ok" else None,
                  positions=keep.get("positions", []) if status == "ok" else [])
