"""The one training step: forward, loss, backward, clipping, gradient scaling, optimiser and schedule.

Suite training (:func:`ablate.run.train.train_model`), ``ablate bench``
(:mod:`ablate.measure.workload`) and the asv benchmarks
(``benchmarks/common.py``) all take their steps through :class:`TrainStep`,
so what is timed and measured is exactly what suites train with.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn import functional as F

from ablate.core.devices import autocast
from ablate.core.errors import Diverged
from ablate.suite.schema import TrainSection
from ablate.tasks.base import Batch


def loss_and_counts(logits: torch.Tensor, batch: Batch, kind: str) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy and correct-prediction counts for one batch.

    Args:
        logits: ``(B, C)`` for classification, ``(B, L, V)`` for token-level tasks.
        batch: the batch; token-level losses count only ``loss_mask`` positions.
        kind: the task kind (``classification``, ``sequence`` or ``lm``).
    """
    logits = logits.float()
    if kind == "classification":
        loss = F.cross_entropy(logits, batch.targets)
        correct = (logits.argmax(-1) == batch.targets).sum().item()
        return loss, {"correct": correct, "count": batch.targets.numel(), "sequences": batch.targets.shape[0],
                      "exact": correct}
    mask = batch.loss_mask if batch.loss_mask is not None else torch.ones_like(batch.targets, dtype=torch.bool)
    if batch.padding_mask is not None:
        mask = mask & batch.padding_mask
    per_token = F.cross_entropy(logits.transpose(1, 2), batch.targets.clamp(min=0), reduction="none")  # (B, L)
    weights = mask.to(per_token.dtype)
    loss = (per_token * weights).sum() / weights.sum().clamp(min=1)
    hits = (logits.argmax(-1) == batch.targets) & mask
    exact = (hits | ~mask).all(-1).sum().item()
    return loss, {"correct": hits.sum().item(), "count": mask.sum().item(), "sequences": batch.targets.shape[0],
                  "exact": exact, "nll_sum": (per_token * weights).sum().item()}


def make_optimizer(model: torch.nn.Module, train: TrainSection) -> torch.optim.Optimizer:
    """AdamW/Adam/SGD over the trainable parameters, from a ``train`` section."""
    params = [p for p in model.parameters() if p.requires_grad]
    factories: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "adamw": lambda: torch.optim.AdamW(params, lr=train.lr, betas=train.betas, weight_decay=train.weight_decay),
        "adam": lambda: torch.optim.Adam(params, lr=train.lr, betas=train.betas),
        "sgd": lambda: torch.optim.SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay),
    }
    return factories[train.optimizer]()


def lr_factor(step: int, train: TrainSection) -> float:
    """Learning-rate multiplier: linear warm-up, then constant, cosine or linear decay to 0."""
    warmup, total = train.warmup_steps, max(1, train.steps)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    schedules = {"constant": 1.0, "cosine": 0.5 * (1 + math.cos(math.pi * progress)), "linear": 1.0 - progress}
    return schedules[train.schedule]


class TrainStep:
    """One optimiser step per call, with the optimiser, schedule and scaler it keeps between calls.

    Args:
        model: the model; it is put in training mode.
        kind: the task kind, which decides the loss (:func:`loss_and_counts`).
        train: the run's validated ``train`` section (the step reads ``optimizer``,
            ``lr``, ``betas``, ``weight_decay``, ``momentum``, ``schedule``,
            ``warmup_steps``, ``steps``, ``grad_clip``, ``dtype``, ``diverge_loss``).
        device: where the model and batches live.

    The optimiser's moments are created by the first call, so they belong to
    what a measured first step allocates.
    """

    def __init__(self, model: torch.nn.Module, *, kind: str, train: TrainSection, device: torch.device) -> None:
        self.model, self.kind, self.train, self.device = model, kind, train, device
        self.optimizer = make_optimizer(model, self.train)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: lr_factor(step, self.train))
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.train.dtype == "float16")
        self.steps_taken = 0
        model.train()

    def __call__(self, batch: Batch) -> float:
        """Train on ``batch`` (already on the device); returns its loss before the update.

        Raises:
            Diverged: the loss is not finite or exceeds ``train.diverge_loss``
                (checked before the update, so the weights stay finite).
        """
        with autocast(self.device, self.train.dtype):
            logits = self.model(batch.inputs, batch.padding_mask)  # (B, C) or (B, L, V)
        loss, _ = loss_and_counts(logits, batch, self.kind)
        value = loss.item()
        if not math.isfinite(value) or value > self.train.diverge_loss:
            raise Diverged(f"training loss {value:.4g} at step {self.steps_taken}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.train.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.steps_taken += 1
        return value
