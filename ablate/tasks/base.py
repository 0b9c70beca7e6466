"""The task contract: a tiny class that samples a batch of a given length.

Imitates DeepMind's ``neural_networks_chomsky_hierarchy``: ``sample(generator,
batch_size, length)`` returns tensors; everything is seeded by the generator, so
the same seed gives the same data on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

TaskKind = Literal["classification", "sequence", "lm"]


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


class Task:
    """Base class of every task.

    Subclasses set ``kind`` and, after ``__init__``, ``vocab_size`` (input
    tokens, including any special tokens) and ``num_classes`` (classification
    labels, or the output vocabulary for token-level tasks).
    """

    kind: ClassVar[TaskKind] = "classification"
    #: "tokens" (``(B, L)`` int64) or "patches" (``(B, L, P)`` float).
    input_kind: ClassVar[str] = "tokens"
    #: Token-level tasks are solved by a causal decoder; classification by either.
    default_causal: ClassVar[bool] = False
    #: Transformations of the input that change the label (``"permutation"``, ``"reversal"``): a
    #: model invariant to one cannot solve the task (:mod:`ablate.feasibility`). Empty: none known.
    label_changes_under: ClassVar[frozenset[str]] = frozenset()

    vocab_size: int
    num_classes: int
    patch_dim: int = 0

    def sample(self, generator: torch.Generator, batch_size: int, length: int, *, split: str = "train") -> Batch:
        """A batch of ``batch_size`` examples of sequence length ``length``.

        Args:
            generator: a seeded CPU ``torch.Generator``; the only source of randomness.
            batch_size: number of examples.
            length: the sequence length the model sees (the task decides how a
                length maps to its own notion of size and documents it).
            split: "train", "validation" or "test"; tasks with a fixed corpus
                draw from disjoint parts, synthetic tasks ignore it.
        """
        raise NotImplementedError

    def chance_level(self) -> float:
        """Accuracy of the best constant guess (for reports); 1/num_classes by default."""
        return 1.0 / self.num_classes
