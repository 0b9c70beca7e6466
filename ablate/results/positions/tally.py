"""Per-position sums over one evaluation length's batches (the hook :func:`ablate.run.train.evaluate` calls)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ablate.tasks.base import Batch


@dataclass
class PositionRow:
    """Mean loss and accuracy at one token position of one evaluation length."""

    eval_length: int
    position: int
    tokens: int
    loss: float
    accuracy: float


def _every_position(batch: Batch) -> torch.Tensor:
    """Language modelling: every (unpadded) position, the loss at ``p`` given the ``p`` tokens before it.

    The summary metrics score only the final tokens at every length (``eval.score_last``);
    by position, the whole window shows where the model starts to fail.
    """
    mask = torch.ones_like(batch.targets, dtype=torch.bool)
    return mask if batch.padding_mask is None else mask & batch.padding_mask


def _answer_positions(batch: Batch) -> torch.Tensor:
    """Sequence tasks: the positions whose next token is part of the answer (the task's own loss mask)."""
    mask = batch.loss_mask if batch.loss_mask is not None else torch.ones_like(batch.targets, dtype=torch.bool)
    return mask if batch.padding_mask is None else mask & batch.padding_mask


#: Task kinds with per-token targets, and which positions of a batch count for each.
SCORED_POSITIONS: dict[str, Callable[[Batch], torch.Tensor]] = {"lm": _every_position, "sequence": _answer_positions}


class PositionTally:
    """Sums of negative log-likelihood, correct predictions and tokens at each position.

    Args:
        kind: the task kind; kinds not in :data:`SCORED_POSITIONS` (classification) tally nothing.
    """

    def __init__(self, kind: str) -> None:
        self.scored = SCORED_POSITIONS.get(kind)
        self.nll = self.correct = self.tokens = torch.zeros(0, dtype=torch.float64)

    def add(self, logits: torch.Tensor, batch: Batch) -> None:
        """Add one batch: ``logits`` ``(B, L, V)`` of ``batch`` (targets ``(B, L)``)."""
        if self.scored is None:
            return
        mask = self.scored(batch).to(logits.device)  # (B, L)
        targets = batch.targets.to(logits.device)
        nll = F.cross_entropy(logits.float().transpose(1, 2), targets.clamp(min=0), reduction="none")  # (B, L)
        hits = logits.argmax(-1) == targets  # (B, L)
        weights = mask.to(torch.float64)
        sums = [(nll.double() * weights).sum(0), (hits.double() * weights).sum(0), weights.sum(0)]  # (L,) each
        sums = [s.cpu() for s in sums]
        if self.tokens.numel() == 0:
            self.nll, self.correct, self.tokens = sums
        else:
            self.nll, self.correct, self.tokens = self.nll + sums[0], self.correct + sums[1], self.tokens + sums[2]

    def rows(self, eval_length: int) -> list[PositionRow]:
        """One row per position that any batch scored."""
        return [PositionRow(eval_length, p, int(n), float(self.nll[p] / n), float(self.correct[p] / n))
                for p, n in enumerate(self.tokens.tolist()) if n > 0]
