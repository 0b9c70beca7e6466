"""The models of a suite measured together: interleaved rounds at each length, one protocol for all.

A *group* is the measurement runs of a suite that share a ``measure`` point (mode,
batch size, dtype, device, protocol) and a repeat: the models being compared. At
each length every model is built and warmed up, then measured in interleaved
rounds (:mod:`ablate.measure.rounds`), so that round ``i`` of a model pairs with
round ``i`` of its baseline:

* ``rounds`` (wall time): each sample batches enough calls to last ``sample_s``
  seconds and gives seconds per call; rounds go on until every tracked ratio's
  interval is narrower than ``1 + precision`` or ``budget_s`` is spent.
* ``instructions`` (callgrind, :mod:`ablate.measure.instructions`): instructions
  of one call per round, all models in one valgrind process; as many rounds as a
  verdict on identical values needs (:func:`~ablate.measure.rounds.rounds_to_decide`).

Peak memory is measured in the same number of rounds (each of a fresh build, in
the spawned worker on the CPU), so memory ratios are paired by round too. A model
that cannot run at a length (unsupported, out of memory, failed) keeps its status
there and leaves that length's rounds; the others go on.
"""

from __future__ import annotations

import math
import uuid
import zlib
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import ablate.measure.point as point
from ablate.core.devices import resolve_device
from ablate.measure.instructions import instruction_rounds
from ablate.measure.memory import ChildFailed, cuda_peak
from ablate.measure.outcome import classify_error
from ablate.measure.rounds import Pair, Rounds, calls_per_sample, interleaved_rounds, rounds_to_decide
from ablate.results.rounds_table import RoundValue
from ablate.measure.timing import device_clock, median_iqr, tokens_per_second
from ablate.measure.workload import WorkloadSpec, spec_of, warm_up
from ablate.core.registry import Registry
from ablate.results.store import MetricRow
from ablate.suite.run_config import MeasurePoint

#: Untimed calls of each model before its first sample (kernel selection, lazy optimizer state).
WARMUP_CALLS = 2
#: Steps run while a memory peak is tracked.
MEMORY_REPEATS = 2
#: The metrics each protocol measures in interleaved rounds (memory is measured model after model).
INTERLEAVED = ("time_median_s", "instructions")


@dataclass
class Member:
    """One model of a group: its run id, its model config dict and the shared measure point."""

    run_id: str
    model: dict[str, Any]
    measure: MeasurePoint
    seed: int = 0
    train: dict[str, Any] | None = None


@dataclass
class Outcome:
    """What one model of a group got at every length: rows, rounds and per-length statuses."""

    rows: list[MetricRow] = field(default_factory=list)
    rounds: list[RoundValue] = field(default_factory=list)
    statuses: dict[int, tuple[str, str | None]] = field(default_factory=dict)


@dataclass
class Length:
    """One length of a group being measured: the specs, who is still in, the tracked ratios."""

    length: int
    specs: dict[str, WorkloadSpec]
    tracked: list[Pair]
    alpha: float
    measure: MeasurePoint
    device: torch.device
    threads: int
    session: str
    seed: int
    #: ``{run id: (status, reason)}`` of models that cannot be measured here.
    lost: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def live(self) -> list[str]:
        return [name for name in self.specs if name not in self.lost]

    def live_pairs(self) -> list[Pair]:
        """Tracked ratios between models still in (with none, each model's own value)."""
        live = set(self.live)
        pairs = [(t, b) for t, b in self.tracked if t in live and b in live]
        return pairs or [(name, None) for name in self.live]

    @property
    def memory_rounds(self) -> int:
        """Rounds a verdict on identical values needs at this length's per-ratio alpha."""
        return rounds_to_decide(self.alpha / max(1, len(self.live_pairs())))


#: Protocol name -> ``(length) -> (Rounds of the protocol's own metric, {run id: {metric: per-round values}})``;
#: a protocol also records in ``length.lost`` the models that could not be measured.
PROTOCOLS: Registry = Registry("measurement protocol")


def measure_group(members: Sequence[Member], pairs: Sequence[Pair], *, alpha: float = 0.05) -> dict[str, Outcome]:
    """Measure ``members`` together at each of their lengths; see the module docstring.

    Args:
        members: the models, all with the same measure point (mode, batch size, dtype, device, protocol).
        pairs: ``(run id, baseline run id)`` ratios whose intervals decide when rounds stop.
        alpha: error rate of a length's tracked intervals together (Bonferroni across them).

    Returns:
        ``{run id: Outcome}``.

    Raises:
        ValueError: members with different measure points.
    """
    if not members:
        return {}
    measure = members[0].measure
    if any(m.measure != measure for m in members):
        raise ValueError("a group's members must share one measure point (mode, batch size, dtype, protocol)")
    device = resolve_device(measure.device)
    threads = torch.get_num_threads() if measure.threads is None else int(measure.threads)
    outcomes = {m.run_id: Outcome() for m in members}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.cuda.device(device) if device.type == "cuda" else nullcontext():
            for length in measure.lengths:
                state = _length_state(members, pairs, length, alpha, device, threads)
                values = PROTOCOLS.get(measure.protocol)(state)
                _record(state, values, outcomes)
    finally:
        torch.set_num_threads(previous)
    return outcomes


def _length_state(members: Sequence[Member], pairs: Sequence[Pair], length: int, alpha: float,
                  device: torch.device, threads: int) -> Length:
    measure = members[0].measure
    specs = {m.run_id: spec_of(m.model, mode=measure.mode, batch_size=measure.batch_size, length=length,
                               dtype=measure.dtype, device=str(device), seed=m.seed, train=m.train) for m in members}
    session = uuid.uuid4().hex
    seed = zlib.crc32(f"{sorted(specs)}:{length}".encode())  # the same group shuffles the same way every time
    return Length(length, specs, list(pairs), alpha, measure, device, threads, session, seed)


def _record(state: Length, measured: tuple[Rounds, dict[str, dict[str, list[float]]]],
            outcomes: dict[str, Outcome]) -> None:
    """Rows and rounds of one length into each model's outcome."""
    rounds, values = measured
    batch_size = next(iter(state.specs.values())).batch_size
    for name, outcome in outcomes.items():
        if name in state.lost:
            status, reason = state.lost[name]
            outcome.statuses[state.length] = (status, reason)
            outcome.rows += [MetricRow(m, state.length, math.nan, status, reason) for m in _metrics(state)]
            continue
        outcome.statuses[state.length] = ("ok", None)
        for metric, series in values[name].items():
            finite = [v for v in series if math.isfinite(v)]
            middle = float(np.median(finite)) if finite else math.nan
            outcome.rows.append(MetricRow(metric, state.length, middle))
            if metric == "time_median_s":
                outcome.rows += [MetricRow("time_iqr_s", state.length, median_iqr(finite)[1] if finite else math.nan),
                                 MetricRow("tokens_per_s", state.length,
                                           tokens_per_second(batch_size * state.length, middle))]
            interleaved = metric in INTERLEAVED  # memory rounds measure one model after another: no position
            outcome.rounds += [RoundValue(metric, state.length, i, float(v),
                                          rounds.position(name, i) if interleaved and i < rounds.count else -1,
                                          state.session) for i, v in enumerate(series)]


def _metrics(state: Length) -> tuple[str, ...]:
    timed = ("instructions",) if state.measure.protocol == "instructions" else ("tokens_per_s", "time_median_s",
                                                                               "time_iqr_s")
    memory = ("peak_memory_bytes",) + (("peak_reserved_bytes",) if state.device.type == "cuda" else ())
    return timed + (memory if state.measure.memory else ())


# ----------------------------------------------------------------------------- building
def _build_and_warm(state: Length) -> dict[str, Any]:
    """Each live model's workload, warmed up; a model that fails here is lost at this length."""
    workloads = {}
    for name in state.live:
        try:
            workload = point.make_workload(state.specs[name])
            for _ in range(WARMUP_CALLS):
                workload.step()
            workloads[name] = workload
        except Exception as error:  # noqa: BLE001 - the model's status at this length
            state.lost[name] = classify_error(error)
            point.free_memory(state.device)
    return workloads


def _timed_sampler(step: Callable[[], Any], clock: Callable[[], float], sample_s: float) -> Callable[[], float]:
    """A sampler of seconds per call that batches calls so one sample lasts at least ``sample_s``."""
    clock()
    began = clock()
    step()
    number = calls_per_sample(clock() - began, sample_s)

    def sample() -> float:
        start = clock()
        for _ in range(number):
            step()
        return (clock() - start) / number

    return sample


@PROTOCOLS.register("rounds")
def timed_rounds(state: Length, *, clock: Callable[[], float] | None = None
                 ) -> tuple[Rounds, dict[str, dict[str, list[float]]]]:
    """Wall time per call in interleaved rounds, then memory in as many rounds as a verdict needs."""
    clock = clock or device_clock(state.device)
    workloads = _build_and_warm(state)
    samplers = {name: _timed_sampler(w.step, clock, state.measure.sample_s) for name, w in workloads.items()}
    rounds = interleaved_rounds(samplers, state.live_pairs(), alpha=state.alpha, precision=state.measure.precision,
                                budget_s=state.measure.budget_s, min_s=state.measure.min_run_time, seed=state.seed,
                                clock=clock, classify=classify_error)
    del workloads, samplers
    point.free_memory(state.device)
    state.lost.update(rounds.failures)
    values = {name: {"time_median_s": list(rounds.values[name])} for name in state.live}
    _memory_rounds(state, values)
    return rounds, values


@PROTOCOLS.register("instructions")
def counted_rounds(state: Length) -> tuple[Rounds, dict[str, dict[str, list[float]]]]:
    """Instructions per call in interleaved rounds under callgrind, then memory in as many rounds."""
    _build_and_warm(state)  # finds what cannot run (a length too long, out of memory) before valgrind does
    point.free_memory(state.device)
    live, count = state.live, state.memory_rounds
    values: dict[str, dict[str, list[float]]] = {name: {} for name in live}
    if live:
        for name, series in zip(live, instruction_rounds([state.specs[n] for n in live], rounds=count)):
            values[name]["instructions"] = series
    counted = Rounds({name: tuple(v.get("instructions", ())) for name, v in values.items()},
                     (tuple(live),) * count, "counted", 0.0)
    _memory_rounds(state, values)
    return counted, values


def _memory_rounds(state: Length, values: dict[str, dict[str, Any]]) -> None:
    """Peak memory of every live model, each round a fresh build (CPU: in the spawned worker)."""
    if not state.measure.memory:
        return
    count = state.memory_rounds
    for name in state.live:
        spec = state.specs[name]
        try:
            if state.device.type == "cuda":
                warm_up(spec, point.make_workload)
                peaks = [cuda_peak(point.make_workload(spec).step, state.device, repeats=MEMORY_REPEATS)
                         for _ in range(count)]
            else:
                peaks = point.cpu_peaks_of(spec, samples=count, repeats=MEMORY_REPEATS, threads=state.threads)
        except ChildFailed as error:
            state.lost[name] = (error.kind, f"memory measurement: {error}")
            continue
        except Exception as error:  # noqa: BLE001 - the model's status at this length
            status, reason = classify_error(error)
            state.lost[name] = (status, f"memory measurement: {reason}")
            continue
        finally:
            if state.device.type == "cuda":  # the next model's peak starts from an empty cache
                point.free_memory(state.device)
        values[name]["peak_memory_bytes"] = [float(p.peak_bytes) for p in peaks]
        if state.device.type == "cuda":
            values[name]["peak_reserved_bytes"] = [float(p.reserved_bytes or 0) for p in peaks]
