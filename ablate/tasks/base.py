"""The task contract: a tiny class that samples a batch of a given length.

Imitates DeepMind's ``neural_networks_chomsky_hierarchy``: ``sample(generator,
batch_size, length)`` returns tensors; everything is seeded by the generator, so
the same seed gives the same data on every machine.

Validation and test data never occur in training. A task that generates its
sequences implements :meth:`Task.draw` (one distribution, no splits) and the
base class keeps each split's own sequences (:mod:`ablate.tasks.heldout`); a
task over a fixed corpus (``splits = "corpus"``) overrides :meth:`Task.sample`
and draws each split from its own part of the corpus.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

import ablate.tasks.heldout as heldout
from ablate.tasks.batch import Batch
from ablate.tasks.heldout import HeldOut
from ablate.tasks.sampling import check_split

__all__ = ["Batch", "HeldOut", "Task", "TaskKind"]

TaskKind = Literal["classification", "sequence", "lm"]


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
    #: model invariant to one cannot solve the task (:mod:`ablate.analysis.feasibility`). Empty: none known.
    label_changes_under: ClassVar[frozenset[str]] = frozenset()

    vocab_size: int
    num_classes: int
    patch_dim: int = 0

    #: How validation and test are kept out of training: ``"hash"`` (generated sequences, each
    #: in one split by a hash of its tokens) or ``"corpus"`` (disjoint parts of a fixed corpus).
    splits: ClassVar[str] = "hash"

    def sample(self, generator: torch.Generator, batch_size: int, length: int, *, split: str = "train") -> Batch:
        """A batch of ``batch_size`` examples of sequence length ``length`` from ``split``.

        Args:
            generator: a seeded CPU ``torch.Generator``; the only source of randomness.
            batch_size: number of examples.
            length: the sequence length the model sees (the task decides how a
                length maps to its own notion of size and documents it).
            split: "train", "validation" or "test". No validation or test
                sequence occurs in the train split, except at lengths too small
                for that, which :meth:`held_out` names.
        """
        check_split(type(self).__name__, split)
        return heldout.sample(self.draw, generator, batch_size, length, split, self.held_out(length),
                              what=type(self).__name__)

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        """A batch from the task's whole distribution, every split together (``splits == "hash"`` tasks)."""
        raise NotImplementedError(f"{type(self).__name__} generates no sequences: it overrides sample()")

    def held_out(self, length: int) -> HeldOut:
        """Whether validation and test sequences at ``length`` are disjoint from training (measured once)."""
        if self.splits == "corpus":
            return HeldOut(True)
        if type(self).draw is Task.draw:  # a task with a sample() of its own: no way to check its splits here
            return HeldOut(False, f"unknown: {type(self).__name__} samples its splits itself; a task whose splits "
                                  "are disjoint parts of a corpus says splits = 'corpus'")
        # Cached on the instance (subclasses' __init__ does not call ours): one probe per length.
        known: dict[int, HeldOut] = self.__dict__.setdefault("_held_out", {})
        if length not in known:
            labels = self.num_classes if self.kind == "classification" else 1
            known[length] = heldout.probe(self.draw, labels, length)
        return known[length]

    def label(self, inputs: torch.Tensor) -> torch.Tensor:
        """The label of any input, for tasks whose label is a function of the input: ``(B, L) -> (B,)``.

        Used to compute what a model invariant to a transformation of its input can reach
        (:mod:`ablate.claims.bounds`). Tasks without such a function raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define its label as a function of the input")

    def chance_level(self) -> float:
        """Accuracy of the best constant guess (for reports); 1/num_classes by default."""
        return 1.0 / self.num_classes
