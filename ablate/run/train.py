"""Train one run at its train length and evaluate it at every evaluation length.

A problem of the run itself is its status, never an exception: ``unsupported``
(a length the encoding cannot represent) or ``diverged`` here, ``oom`` and
``failed`` at the worker's boundary (:func:`ablate.run.executors.worker.execute`), so one
bad run never stops a suite. Measurement runs are this module's sibling,
:mod:`ablate.measure.run`.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, ContextManager

import torch

from ablate.run.checkpoints import serialize
from ablate.run.criterion import CurvePoint, TrainingMonitor
from ablate.core.devices import autocast, is_oom, resolve_device
from ablate.core.errors import Diverged, UnsupportedLengthError, short_reason
from ablate.model.transformer import TransformerModel
from ablate.results.positions.tally import PositionRow, PositionTally
from ablate.run.step import TrainStep, loss_and_counts, lr_factor, make_optimizer
from ablate.results.store import MetricRow
from ablate.suite.run_config import MeasureRun, TrainRun
from ablate.tasks import create_task
from ablate.tasks.base import Batch, Task

#: Metrics each task kind reports at every evaluation length.
EVAL_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "loss"),
    "sequence": ("token_accuracy", "exact_match", "loss"),
    "lm": ("loss", "perplexity", "bits_per_char"),
}

#: Re-exported: the step and its parts live in :mod:`ablate.run.step`.
__all__ = ["EVAL_METRICS", "TrainStep", "build", "evaluate", "loss_and_counts", "lr_factor", "make_optimizer",
           "train_and_evaluate", "train_model"]


def build(config: TrainRun | MeasureRun, task: Task) -> TransformerModel:
    """The run's model for ``task``, from its resolved ``model`` section."""
    return TransformerModel(config.model.model_config_for(task))


def train_model(model: TransformerModel, task: Task, config: TrainRun, device: torch.device,
                monitor: TrainingMonitor | None = None) -> float:
    """Run up to ``train.steps`` optimiser steps; returns the mean loss of the last 10 steps.

    ``monitor`` (:mod:`ablate.run.criterion`) schedules validation checks, records the curve
    and may stop training early.
    """
    train = config.train
    validate = _validator(model, task, config, device)
    generator = torch.Generator().manual_seed(config.seed)
    step = TrainStep(model, kind=task.kind, train=train, device=device)
    recent: list[float] = []
    for index in range(train.steps):
        length = train.length
        if train.min_length is not None:
            length = int(torch.randint(train.min_length, train.length + 1, (1,), generator=generator))
        batch = task.sample(generator, train.batch_size, length, split="train").to(device)
        value = step(batch)
        recent = (recent + [value])[-10:]
        if monitor is not None and monitor.step_done(index + 1, value):
            stop = monitor.check(validate)
            model.train()
            if stop:
                break
    return sum(recent) / len(recent) if recent else math.nan


def _validator(model: TransformerModel, task: Task, config: TrainRun,
               device: torch.device) -> Callable[[], dict[str, float]]:
    """Scores fixed held-out batches (``validation`` split, train length), drawn on first use."""
    batches: list[Batch] = []

    def validate() -> dict[str, float]:
        if not batches:
            train = config.train
            generator = torch.Generator().manual_seed(eval_seed(config.seed, train.length) + 1)
            batches.extend(task.sample(generator, config.eval.batch_size, train.length, split="validation")
                           for _ in range(train.criterion.batches))
        model.eval()
        return _score(model, task, batches, device, config.train.dtype)

    return validate


def eval_seed(seed: int, length: int) -> int:
    """Evaluation data seed: the same for every encoding/pooling at a given seed and length (paired tests)."""
    return (seed * 1_000_003 + length * 7919 + 12345) % (2**63)


def evaluate(model: TransformerModel, task: Task, config: TrainRun, device: torch.device, *,
             at_length: Callable[[int], ContextManager[Any]] | None = None,
             positions: list[PositionRow] | None = None) -> list[MetricRow]:
    """Metrics at every evaluation length, with ``unsupported``/``oom`` rows where they apply.

    ``at_length(L)``, when given, is entered around the scoring at length ``L``
    (evaluation-time variants that depend on the length, e.g. RoPE scaling factors).
    ``positions``, when given, receives loss and accuracy by token position (:mod:`ablate.results.positions`).
    """
    model.eval()
    evaluation, train = config.eval, config.train
    lengths = evaluation.lengths
    names = EVAL_METRICS[task.kind]
    rows: list[MetricRow] = []
    lm_batches = _lm_batches(task, config, max(lengths)) if task.kind == "lm" else None
    for length in lengths:
        note = model.encoding.untrained_note(train.length, length)
        tally = PositionTally(task.kind) if positions is not None else None
        try:
            model.check_length(length)
            if lm_batches is not None:
                score_last = min(evaluation.score_last or train.length, length)
                batches = [_crop_lm(b, length, score_last) for b in lm_batches]
            else:
                generator = torch.Generator().manual_seed(eval_seed(config.seed, length))
                batches = [task.sample(generator, evaluation.batch_size, length, split="test")
                           for _ in range(evaluation.batches)]
            with at_length(length) if at_length is not None else contextlib.nullcontext():
                values = _score(model, task, batches, device, train.dtype, tally)
        except UnsupportedLengthError as error:
            rows += [MetricRow(n, length, math.nan, "unsupported", str(error), note) for n in names]
            continue
        except Exception as error:  # noqa: BLE001 - an OOM at one length is a data point
            if not is_oom(error):
                raise
            _free(device)
            rows += [MetricRow(n, length, math.nan, "oom", short_reason(error), note) for n in names]
            continue
        rows += [MetricRow(n, length, values[n], "ok", None, note) for n in names]
        if tally is not None and positions is not None:
            positions += tally.rows(length)
    return rows


def _lm_batches(task: Task, config: TrainRun, longest: int) -> list[Batch]:
    generator = torch.Generator().manual_seed(eval_seed(config.seed, 0))
    evaluation = config.eval
    return [task.sample(generator, evaluation.batch_size, longest, split="test") for _ in range(evaluation.batches)]


def _crop_lm(batch: Batch, length: int, score_last: int) -> Batch:
    """The last ``length`` tokens of a longer LM window, scoring only the final ``score_last``."""
    inputs, targets = batch.inputs[:, -length:], batch.targets[:, -length:]
    loss_mask = torch.zeros_like(targets, dtype=torch.bool)
    loss_mask[:, -score_last:] = True
    if batch.loss_mask is not None:
        loss_mask &= batch.loss_mask[:, -length:]
    return Batch(inputs, targets, None if batch.padding_mask is None else batch.padding_mask[:, -length:], loss_mask)


@torch.inference_mode()
def _score(model: TransformerModel, task: Task, batches: list[Batch], device: torch.device, dtype: str,
           tally: PositionTally | None = None) -> dict[str, float]:
    totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0, "exact": 0.0, "sequences": 0.0, "nll_sum": 0.0}
    for batch in batches:
        batch = batch.to(device)
        with autocast(device, dtype):
            logits = model(batch.inputs, batch.padding_mask)
        loss, counts = loss_and_counts(logits, batch, task.kind)
        if tally is not None:
            tally.add(logits, batch)
        totals["loss_sum"] += loss.item() * (counts["count"] if task.kind != "classification" else counts["sequences"])
        for key in ("correct", "count", "exact", "sequences", "nll_sum"):
            totals[key] += counts.get(key, 0.0)
    if task.kind == "classification":
        loss = totals["loss_sum"] / totals["sequences"]
        return {"accuracy": totals["correct"] / totals["count"], "loss": loss}
    loss = totals["nll_sum"] / max(totals["count"], 1)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "bits_per_char": loss / math.log(2),
        "token_accuracy": totals["correct"] / max(totals["count"], 1),
        "exact_match": totals["exact"] / max(totals["sequences"], 1),
    }


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def train_and_evaluate(config: TrainRun, keep: dict[str, Any] | None = None
                       ) -> tuple[str, str | None, list[MetricRow]]:
    """Train and evaluate a resolved train-run config: ``(status, reason, metric rows)``."""
    status, reason, rows, _ = train_evaluate_curve(config, keep)
    return status, reason, rows


def train_evaluate_curve(config: TrainRun, keep: dict[str, Any] | None = None
                         ) -> tuple[str, str | None, list[MetricRow], list[CurvePoint]]:
    """:func:`train_and_evaluate` plus the learning curve (:mod:`ablate.run.criterion`).

    The rows include ``steps_used`` and ``criterion_met`` (1/0, with the stop reason
    in its note) at the train length, and ``held_out`` (1/0, :meth:`~ablate.tasks.base.Task.held_out`)
    at the train length and every evaluation length. ``keep``, when given, receives the trained model
    as ``keep["checkpoint"]`` (bytes, :func:`ablate.run.checkpoints.serialize`) for the
    driver to store.
    """
    torch.manual_seed(config.seed)
    device = resolve_device(config.train.device)
    task = create_task(config.task)
    model = build(config, task).to(device)
    monitor = TrainingMonitor.from_config(config.train, task.kind)
    started = time.perf_counter()
    try:
        model.check_length(config.train.length)
        train_loss = train_model(model, task, config, device, monitor)
    except UnsupportedLengthError as error:
        return "unsupported", f"cannot train at length {config.train.length}: {error}", [], monitor.curve
    except Diverged as error:
        return "diverged", str(error), [], monitor.curve
    train_time = time.perf_counter() - started
    started = time.perf_counter()
    rows = evaluate(model, task, config, device, positions=None if keep is None else keep.setdefault("positions", []))
    eval_time = time.perf_counter() - started
    if keep is not None:
        keep["checkpoint"] = serialize(model, keep.get("run_id"), config.to_dict())
    length = config.train.length
    rows += [
        MetricRow("train_loss", length, train_loss),
        MetricRow("train_time_s", length, train_time),
        MetricRow("eval_time_s", length, eval_time),
        MetricRow("steps_used", length, monitor.steps_used),
        MetricRow("criterion_met", length, float(monitor.met), note=f"stopped: {monitor.stop_reason}"),
    ]
    # Whether validation (train length) and test (every evaluation length) were held out from training.
    for at in sorted({length, *config.eval.lengths}):
        held = task.held_out(at)
        rows.append(MetricRow("held_out", at, float(held.held_out), note=held.note))
    return "ok", None, rows, monitor.curve
