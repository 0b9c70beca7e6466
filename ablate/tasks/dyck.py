"""Dyck languages: is a bracket string balanced? (Dyck-1 or Dyck-2, context-free)."""

from __future__ import annotations

import torch

from ablate.tasks.registry import TASKS
from ablate.tasks.base import Batch, Task
from ablate.tasks.sampling import check_request


def random_dyck(generator: torch.Generator, batch_size: int, pairs: int) -> torch.Tensor:
    """Uniformly random Dyck words: ``(B, 2 * pairs)`` bool, ``True`` at opening brackets.

    Cycle lemma: of the rotations of a sequence with ``pairs`` up-steps and
    ``pairs + 1`` down-steps, exactly one (starting after the first minimum of
    the prefix sums) keeps every proper prefix non-negative; dropping its final
    down-step gives a uniform Dyck word.
    """
    n = 2 * pairs + 1
    up = torch.rand(batch_size, n, generator=generator).argsort(1) < pairs  # (B, n), `pairs` ups at random places
    height = torch.where(up, 1, -1).cumsum(1)
    start = height.argmin(1) + 1  # argmin returns the first minimum
    index = (start[:, None] + torch.arange(n)) % n
    return up.gather(1, index)[:, :-1]


def matching_pairs(opens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of matched brackets in Dyck words: ``(B, 2P) bool -> (B, P), (B, P)``.

    At each height the crossings alternate open, close, open, ...; sorting
    positions by (height of the crossing, position) therefore puts every open
    right before its matching close.
    """
    batch_size, length = opens.shape
    steps = torch.where(opens, 1, -1)
    after = steps.cumsum(1)
    level = torch.where(opens, after - 1, after)  # the height band the step crosses
    order = (level * length + torch.arange(length)).argsort(1)
    return order[:, 0::2], order[:, 1::2]


@TASKS.register("dyck")
class Dyck(Task):
    """Whether a string over ``types`` bracket kinds is balanced (label 1) or not (label 0).

    Tokens: ``(`` 0, ``)`` 1, and with ``types = 2`` also ``[`` 2, ``]`` 3; a
    pad token (``2 * types``) ends odd lengths, so the brackets fill
    ``2 * (length // 2)`` positions. Labels are drawn uniformly.

    * Positives: uniformly random Dyck words (:func:`random_dyck`), each
      matched pair of a uniformly random kind.
    * Negatives have as many opening as closing brackets, so counting alone
      cannot solve the task: a random shuffle of the brackets that is not
      balanced (a shuffle that is balanced gets its first and last brackets
      swapped), each bracket of a random kind; with ``types = 2`` half of the
      negatives instead are a well-nested word with one closing bracket of the
      wrong kind.
    """

    kind = "classification"

    def __init__(self, *, types: int = 1) -> None:
        if types not in (1, 2):
            raise ValueError(f"task 'dyck': types must be 1 or 2, got {types!r}")
        self.types = types
        self.vocab_size = 2 * types + 1
        self.num_classes = 2

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("dyck", batch_size, length, min_length=2)
        pairs = length // 2
        label = torch.randint(2, (batch_size,), generator=generator)
        # Positives: a Dyck word; matched brackets share a kind.
        opens = random_dyck(generator, batch_size, pairs)
        open_at, close_at = matching_pairs(opens)
        kinds = torch.randint(self.types, (batch_size, pairs), generator=generator)
        good = torch.empty(batch_size, 2 * pairs, dtype=torch.long)
        good.scatter_(1, open_at, 2 * kinds)
        good.scatter_(1, close_at, 2 * kinds + 1)
        # Negatives (a): unbalanced shuffles with the same number of each bracket direction.
        shuffled = torch.rand(batch_size, 2 * pairs, generator=generator).argsort(1) < pairs
        balanced = torch.where(shuffled, 1, -1).cumsum(1).min(1).values >= 0
        first, last = shuffled[:, 0].clone(), shuffled[:, -1].clone()
        shuffled[balanced, 0], shuffled[balanced, -1] = last[balanced], first[balanced]
        random_kinds = torch.randint(self.types, (batch_size, 2 * pairs), generator=generator)
        bad = 2 * random_kinds + (~shuffled).long()
        if self.types == 2:
            # Negatives (b): well nested, one closing bracket of the other kind.
            wrong = good.clone()
            which = torch.randint(pairs, (batch_size,), generator=generator)
            at = close_at.gather(1, which[:, None]).squeeze(1)
            rows = torch.arange(batch_size)
            wrong[rows, at] = 4 - wrong[rows, at]  # ) <-> ]
            use_wrong = torch.rand(batch_size, generator=generator) < 0.5
            bad = torch.where(use_wrong[:, None], wrong, bad)
        x = torch.full((batch_size, length), 2 * self.types, dtype=torch.long)
        x[:, : 2 * pairs] = torch.where(label[:, None] == 1, good, bad)
        return Batch(x, label)
