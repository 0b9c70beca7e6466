"""A suite's measurement runs: grouped, measured together in interleaved rounds, one record per run.

The measurement runs of a plan that share a ``measure`` point and a repeat form a
group (:mod:`ablate.measure.group`); a group is measured as a whole, so each run's
rounds pair with its baseline's rounds of the same session. A group with any
pending run is measured again as a whole (stored members included, and replaced):
rounds measured in different sessions do not pair. Each run still gets its own
:class:`~ablate.results.store.Record`: one row per metric and length, a length that ran
out of memory or cannot be represented keeping its own ``oom`` / ``unsupported``
rows while the other lengths are measured, and its rounds
(:mod:`ablate.results.rounds_table`).

The ratios whose intervals decide when rounds stop are those a report compares:
each run against the run that differs from it in one grid axis, set to that
axis's baseline value (``plan.baseline``).
:func:`run_measurement` measures one run alone, as the worker (:func:`ablate.run.executors.worker.execute`) does
for a measure run sent to an executor.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ablate.core.devices import resolve_device
from ablate.core.environment import environment
from ablate.core.errors import SuiteError, UnsupportedRun, short_reason
from ablate.measure.group import Member, Outcome, measure_group
from ablate.measure.rounds import Pair
from ablate.measure.workload import check_arguments
from ablate.results.store import MetricRow, Record
from ablate.suite.run_config import MeasureRun, parse_run
from ablate.tasks import create_task


def model_config_dict(config: MeasureRun) -> dict[str, Any]:
    """The full :class:`~ablate.model.transformer.ModelConfig` dict of a measurement run (sizes from its task)."""
    return config.model.model_config_for(create_task(config.task)).to_dict()


def member_of(run_id: str, config: MeasureRun) -> Member:
    """A run as a member of a measurement group."""
    return Member(run_id, model_config_dict(config), config.measure, config.seed, config.train.model_dump(mode="json"))


def run_status(statuses: Iterable[tuple[str, str | None]]) -> tuple[str, str | None]:
    """A run's status from its lengths' ``(status, reason)``.

    ``ok`` when any length was measured, ``failed`` when any length failed for another
    reason than memory or length, else the shared ``oom`` / ``unsupported`` status.
    """
    statuses = list(statuses)
    kinds = [status for status, _ in statuses]
    if "failed" in kinds:
        return "failed", next(reason for status, reason in statuses if status == "failed")
    if "ok" in kinds:
        return "ok", None
    reasons = [reason for _, reason in statuses if reason]
    return ("oom" if "oom" in kinds else "unsupported"), reasons[0] if reasons else None


def _unmeasurable(config: MeasureRun) -> str | None:
    """Why this machine cannot measure ``config`` at all (a device or dtype it lacks), or None."""
    measure = config.measure
    try:
        device = resolve_device(measure.device)
        check_arguments(measure.mode, measure.dtype, device, measure.batch_size, min(measure.lengths))
    except (ValueError, UnsupportedRun) as error:
        return str(error)
    return None


def run_measurement(config: MeasureRun, *, alpha: float = 0.05) -> tuple[str, str | None, list[MetricRow]]:
    """Measure one measurement run at each of its lengths (a group of one: rounds until its own time is tight).

    Returns:
        ``(status, reason, rows)`` (see :func:`run_status`); a device or dtype this machine
        cannot measure is ``unsupported`` with no rows.
    """
    reason = _unmeasurable(config)
    if reason is not None:
        return "unsupported", reason, []
    outcome = measure_group([member_of("run", config)], [], alpha=alpha)["run"]
    return (*run_status(outcome.statuses.values()), outcome.rows)


# ----------------------------------------------------------------------------- a plan's groups
def group_key(config: dict[str, Any]) -> str:
    """What the runs of one group share: the measure point and the repeat (seed)."""
    return json.dumps({"measure": config["measure"], "seed": config["seed"]}, sort_keys=True)


def groups_of(runs: Sequence[Any]) -> list[list[Any]]:
    """The plan's measurement runs (:class:`~ablate.suite.RunSpec`) by group, in plan order."""
    groups: dict[str, list[Any]] = {}
    for run in runs:
        groups.setdefault(group_key(run.config), []).append(run)
    return list(groups.values())


def with_partners(all_runs: Sequence[Any], pending: Sequence[Any]) -> list[Any]:
    """``pending`` plus every stored run of a group that has a pending run (the group is measured whole)."""
    wanted = {group_key(run.config) for run in pending}
    return [run for run in all_runs if group_key(run.config) in wanted]


def baseline_pairs(runs: Sequence[Any], axes: Sequence[str], baseline: dict[str, Any]) -> list[Pair]:
    """``(run id, baseline run id)`` for each run and each grid axis where it is not at the baseline value.

    The partner differs from the run in that axis alone (its labels in ``run.axes``).
    """
    by_labels = {tuple(str(run.axes.get(a)) for a in axes): run.run_id for run in runs}
    pairs = []
    for run in runs:
        labels = [str(run.axes.get(a)) for a in axes]
        for i, axis in enumerate(axes):
            if axis not in baseline or labels[i] == str(baseline[axis]):
                continue
            partner = by_labels.get(tuple(labels[:i] + [str(baseline[axis])] + labels[i + 1:]))
            if partner is not None:
                pairs.append((run.run_id, partner))
    return pairs


def measure_records(runs: Sequence[Any], *, axes: Sequence[str], baseline: dict[str, Any],
                    alpha: float = 0.05) -> Iterator[Record]:
    """Measure ``runs`` (:class:`~ablate.suite.RunSpec` of kind ``measure``) group by group; one record per run.

    Args:
        runs: the runs to measure; a group is measured together (see :func:`with_partners`).
        axes: the plan's grid axes; with ``baseline`` they say which ratios decide when rounds stop.
        baseline: ``{axis: baseline label}`` (``plan.baseline``).
        alpha: error rate of a length's tracked intervals together (the suite's ``[report] alpha``).
    """
    for group in groups_of(runs):
        started_at, clock = time.time(), time.perf_counter()
        members, failed = [], {}
        for run in group:
            try:
                config = parse_run(run.config, f"run {run.run_id}")
                reason = (_unmeasurable(config) if isinstance(config, MeasureRun)
                          else f"run {run.run_id} is not a measurement")
            except SuiteError as error:
                config, reason = None, str(error)
            if reason is None:
                members.append(member_of(run.run_id, config))
            else:
                failed[run.run_id] = ("unsupported" if config is not None else "failed", reason)
        try:
            outcomes = measure_group(members, baseline_pairs([r for r in group if r.run_id not in failed], axes,
                                                             baseline), alpha=alpha)
        except Exception as error:  # noqa: BLE001 - recorded for every member, the suite goes on
            reason = short_reason(error) + "\n" + traceback.format_exc(limit=-3)
            outcomes, failed = {}, {**failed, **{m.run_id: ("failed", reason) for m in members}}
        wall = time.perf_counter() - clock
        for run in group:
            yield _record(run, outcomes.get(run.run_id), failed.get(run.run_id), started_at, wall / len(group))


def _record(run: Any, outcome: Outcome | None, failure: tuple[str, str] | None, started_at: float,
            wall: float) -> Record:
    if outcome is None:
        status, reason = failure or ("failed", "not measured")
        rows, rounds = [], []
    else:
        status, reason = run_status(outcome.statuses.values())
        rows, rounds = outcome.rows, outcome.rounds
    return Record(run_id=run.run_id, suite=run.suite, kind=run.kind, status=status, config=run.config,
                  axes=run.axes, reason=reason, metrics=rows, env=environment(run.config), started_at=started_at,
                  wall_s=wall, work_s=wall, rounds=rounds)
