"""Position and counting probes: tasks that isolate what pooling and position must carry.

``length`` is the number of input tokens. Each class documents how its labels
are balanced; in every case chance is ``1 / num_classes``.
"""

from __future__ import annotations

import torch

from ablate.tasks.registry import TASKS
from ablate.tasks.base import Batch, Task
from ablate.tasks.sampling import check_at_least, check_request, random_subset_mask


@TASKS.register("majority")
class Majority(Task):
    """The most frequent token (always unique).

    The label ``y`` is drawn uniformly; the string starts uniform over
    ``{0, ..., vocab - 1}`` and then ``max(other counts) - count(y) + 1``
    uniformly chosen non-``y`` positions are set to ``y`` (all of them if fewer
    exist), so ``y`` is the strict majority and labels are exactly uniform.
    """

    kind = "classification"

    def __init__(self, *, vocab: int = 4) -> None:
        check_at_least("majority", "vocab", vocab, 2)
        self.vocab = vocab
        self.vocab_size = vocab
        self.num_classes = vocab

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("majority", batch_size, length)
        x = torch.randint(self.vocab, (batch_size, length), generator=generator)  # (B, L)
        label = torch.randint(self.vocab, (batch_size,), generator=generator)
        counts = torch.nn.functional.one_hot(x, self.vocab).sum(1)  # (B, V)
        own = counts.gather(1, label[:, None]).squeeze(1)
        others = counts.scatter(1, label[:, None], -1).max(1).values
        needed = (others - own + 1).clamp(min=0).clamp(max=length - own)
        replace = random_subset_mask(generator, x != label[:, None], needed)
        x = torch.where(replace, label[:, None], x)
        return Batch(x, label)


@TASKS.register("first_token")
class FirstToken(Task):
    """The label is the first token (uniform over ``vocab``): tests whether pooling keeps position 0."""

    kind = "classification"

    def __init__(self, *, vocab: int = 10) -> None:
        check_at_least("first_token", "vocab", vocab, 2)
        self.vocab = vocab
        self.vocab_size = vocab
        self.num_classes = vocab

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("first_token", batch_size, length)
        x = torch.randint(self.vocab, (batch_size, length), generator=generator)
        return Batch(x, x[:, 0].clone())


@TASKS.register("sorted")
class Sorted(Task):
    """Whether the tokens are non-decreasing (label 1) or not (label 0).

    Each example starts as ``length`` uniform tokens sorted ascending. Half the
    examples (label drawn uniformly) are then made unsorted with the smallest
    possible change: two adjacent unequal tokens are swapped at a uniformly
    chosen boundary (a constant row instead gets its first token raised, or its
    last lowered, by one). Negatives thus share the token multiset of a sorted
    string, so counting cannot solve the task; order must be read.
    """

    kind = "classification"

    def __init__(self, *, vocab: int = 10) -> None:
        check_at_least("sorted", "vocab", vocab, 2)
        self.vocab = vocab
        self.vocab_size = vocab
        self.num_classes = 2

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("sorted", batch_size, length, min_length=2)
        x = torch.randint(self.vocab, (batch_size, length), generator=generator).sort(dim=1).values  # (B, L)
        label = torch.randint(2, (batch_size,), generator=generator)
        boundary = x[:, 1:] > x[:, :-1]  # (B, L-1)
        keys = torch.rand(boundary.shape, generator=generator).masked_fill(~boundary, -1.0)
        at = keys.argmax(1)  # a uniform boundary, when there is one
        rows = torch.arange(batch_size)
        unsort = label == 0
        swap = unsort & boundary.any(1)
        left, right = x[rows, at], x[rows, at + 1]
        x[rows[swap], at[swap]] = right[swap]
        x[rows[swap], at[swap] + 1] = left[swap]
        constant = unsort & ~boundary.any(1)
        raise_first = constant & (x[:, 0] < self.vocab - 1)
        x[raise_first, 0] += 1
        lower_last = constant & ~raise_first
        x[lower_last, -1] -= 1
        return Batch(x, label)


@TASKS.register("needle")
class Needle(Task):
    """Whether a marker token is present (label 1) in a haystack.

    The haystack is uniform over ``{0, ..., vocab - 1}``; for a uniformly drawn
    half of the examples one position, uniform over the sequence, holds the
    marker (id ``vocab``). Labels are exactly balanced.
    """

    kind = "classification"

    def __init__(self, *, vocab: int = 10) -> None:
        check_at_least("needle", "vocab", vocab, 1)
        self.vocab = vocab
        self.vocab_size = vocab + 1
        self.num_classes = 2

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("needle", batch_size, length)
        x = torch.randint(self.vocab, (batch_size, length), generator=generator)
        label = torch.randint(2, (batch_size,), generator=generator)
        pos = torch.randint(length, (batch_size,), generator=generator)
        rows = torch.arange(batch_size)[label == 1]
        x[rows, pos[label == 1]] = self.vocab
        return Batch(x, label)


@TASKS.register("order")
class Order(Task):
    """Which of two markers comes first: label 0 for ``A`` (id ``vocab``), 1 for ``B`` (``vocab + 1``).

    Both markers appear once, at a uniformly drawn pair of distinct positions in
    a haystack uniform over ``{0, ..., vocab - 1}``; by symmetry the labels
    are exactly balanced.
    """

    kind = "classification"
    label_changes_under = frozenset({"permutation", "reversal"})  # reversal swaps which marker comes first

    def __init__(self, *, vocab: int = 10) -> None:
        check_at_least("order", "vocab", vocab, 1)
        self.vocab = vocab
        self.vocab_size = vocab + 2
        self.num_classes = 2

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("order", batch_size, length, min_length=2)
        x = torch.randint(self.vocab, (batch_size, length), generator=generator)
        a = torch.randint(length, (batch_size,), generator=generator)
        b = (a + torch.randint(1, length, (batch_size,), generator=generator)) % length  # uniform, != a
        rows = torch.arange(batch_size)
        x[rows, a] = self.vocab
        x[rows, b] = self.vocab + 1
        return Batch(x, (b < a).long())

    def label(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, L) -> (B,)``: 1 when the second marker comes first."""
        first_a = (inputs == self.vocab).long().argmax(1)
        first_b = (inputs == self.vocab + 1).long().argmax(1)
        return (first_b < first_a).long()
