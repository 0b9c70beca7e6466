"""One batch of a task: inputs, targets and masks, row by row."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """One batch of a task.

    Attributes:
        inputs: ``(B, L)`` int64 token ids, or ``(B, L, P)`` float patches for
            image tasks (``Task.input_kind == "patches"``).
        targets: ``(B,)`` class ids for classification; ``(B, L)`` token ids for
            sequence and language-modelling tasks.
        padding_mask: ``(B, L)`` bool, ``True`` at real tokens; ``None`` when
            every position is real.
        loss_mask: ``(B, L)`` bool, ``True`` where a token-level target is scored
            (e.g. only the answer half of a copy task); ``None`` scores all.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    padding_mask: torch.Tensor | None = None
    loss_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        """The same batch on ``device``."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.inputs), move(self.targets), move(self.padding_mask), move(self.loss_mask))

    def rows(self, index: torch.Tensor) -> "Batch":
        """The examples at ``index``: ``(N,)`` int64 row numbers -> a batch of ``N`` rows."""
        take = lambda t: None if t is None else t[index]  # noqa: E731
        return Batch(take(self.inputs), take(self.targets), take(self.padding_mask), take(self.loss_mask))

    @staticmethod
    def cat(batches: list["Batch"]) -> "Batch":
        """The rows of ``batches`` one after the other (their masks all present or all ``None``)."""
        def join(name: str) -> torch.Tensor | None:
            parts = [getattr(b, name) for b in batches]
            return None if parts[0] is None else torch.cat(parts)
        return Batch(join("inputs"), join("targets"), join("padding_mask"), join("loss_mask"))
