"""Training to a criterion: when to check, when to stop, and the learning curve.

The training loop asks a :class:`TrainingMonitor` two things per step: is a
check due, and (after it hands over the validation metric) should training stop.
Everything about the schedule of checks, the target and the patience lives here,
so the loop itself stays one optimiser step per iteration.

``train.until`` (suite syntax, every key optional)::

    until = { metric = "accuracy", target = 0.95, patience = 5, every = 50, batches = 2 }

* ``metric`` - validation metric (default: the task kind's headline: accuracy,
  token_accuracy, or loss for language models); its direction comes from
  :mod:`ablate.core.metrics`.
* ``target`` - stop as soon as the metric reaches it (``>=``, or ``<=`` when
  lower is better).
* ``patience`` - stop when the metric has not improved by more than
  ``min_delta`` for this many consecutive checks, but never before ``min_steps``
  steps (some encodings sit at chance for a while before they learn, T5's bias
  among them; patience alone would stop them there).
* ``every`` - steps between checks; ``batches`` - held-out batches (of
  ``eval.batch_size``) at the train length, drawn once from the ``validation``
  split, so every check scores the same sequences.

``train.steps`` stays the cap, and the learning-rate schedule is laid out over
it, so a run that stops early stops part-way down its schedule (the same rule for
every encoding). Without ``until`` nothing stops early, but the curve is still
recorded (every ``steps / 10`` steps), so every training run has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ablate.core.metrics import higher_is_better
from ablate.suite.schema import TrainSection

#: The validation metric a task kind is judged by when ``until.metric`` is not given.
DEFAULT_METRIC = {"classification": "accuracy", "sequence": "token_accuracy", "lm": "loss"}
#: Checks per run when no ``until.every`` is given.
DEFAULT_CHECKS = 10

STOP_TARGET, STOP_PLATEAU, STOP_CAP = "target", "plateau", "cap"


@dataclass(frozen=True)
class CurvePoint:
    """One check: ``step`` optimiser steps done, mean training loss since the last check, validation value."""

    step: int
    train_loss: float
    metric: str
    value: float


@dataclass
class TrainingMonitor:
    """The schedule of checks, the stopping rule and the curve of one run.

    Attributes:
        metric: validation metric name; ``higher`` its direction.
        every: steps between checks.
        target: stop when reached (``None``: no target).
        patience: stop after this many checks without improvement (``None``: never).
        min_steps: no stop for lack of improvement before this many steps.
        min_delta: an improvement must exceed this.
        cap: ``train.steps``.
    """

    metric: str
    every: int
    cap: int
    target: float | None = None
    patience: int | None = None
    min_steps: int = 0
    min_delta: float = 0.0
    higher: bool = True
    curve: list[CurvePoint] = field(default_factory=list)
    steps_used: int = 0
    stop_reason: str = STOP_CAP
    _losses: list[float] = field(default_factory=list)
    _best: float = math.nan
    _stale: int = 0

    @classmethod
    def from_config(cls, train: TrainSection, kind: str) -> "TrainingMonitor":
        """The monitor of a run's ``train`` section for a task of ``kind``."""
        until = train.criterion
        metric = until.metric or DEFAULT_METRIC[kind]
        every = until.every or max(1, math.ceil(train.steps / DEFAULT_CHECKS))
        return cls(metric=metric, every=every, cap=train.steps, target=until.target, patience=until.patience,
                   min_steps=until.min_steps, min_delta=until.min_delta, higher=higher_is_better(metric))

    @property
    def met(self) -> bool:
        """Whether the target was reached (``False`` without a target)."""
        return self.stop_reason == STOP_TARGET

    def step_done(self, step: int, loss: float) -> bool:
        """Record the loss of optimiser step ``step`` (1-based); ``True`` when a check is due now."""
        self._losses.append(loss)
        self.steps_used = step
        return step % self.every == 0 or step == self.cap

    def check(self, validate: Callable[[], dict[str, float]]) -> bool:
        """Score the validation batches (``validate()`` -> metric values); ``True`` to stop training."""
        value = float(validate()[self.metric])
        loss = sum(self._losses) / len(self._losses) if self._losses else math.nan
        self._losses = []
        self.curve.append(CurvePoint(self.steps_used, loss, self.metric, value))
        if self._improved(value):
            self._best, self._stale = value, 0
        else:
            self._stale += 1
        if self.target is not None and (value >= self.target if self.higher else value <= self.target):
            self.stop_reason = STOP_TARGET
            return True
        if self.patience is not None and self._stale >= self.patience and self.steps_used >= self.min_steps:
            self.stop_reason = STOP_PLATEAU
            return True
        return False

    def _improved(self, value: float) -> bool:
        if math.isnan(self._best):
            return not math.isnan(value)
        gain = value - self._best if self.higher else self._best - value
        return gain > self.min_delta
