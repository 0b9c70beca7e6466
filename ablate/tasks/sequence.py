"""Token-level tasks for a causal decoder: a prompt, a separator, then the answer.

``targets[:, t]`` is the token after ``inputs[:, t]`` (inputs shifted left) and
``loss_mask`` is ``True`` exactly where that next token belongs to the answer,
so per-token accuracy and exact match are computed over answer tokens only.
``length`` is the model's sequence length ``L``; when the full sequence has
``L + 1`` tokens the last answer token is only a target, when it has ``L`` the
last target is :data:`~ablate.tasks.sampling.IGNORE_INDEX` (see
:func:`~ablate.tasks.sampling.next_token_batch`).
"""

from __future__ import annotations

import torch

from ablate.tasks.registry import TASKS
from ablate.tasks.base import Batch, Task
from ablate.tasks.sampling import check_at_least, check_request, next_token_batch


class _Transduction(Task):
    """Shared shape of copy and reverse: ``x SEP f(x)`` with ``len(x) = length // 2``."""

    kind = "sequence"
    default_causal = True
    name = ""

    def __init__(self, *, vocab: int = 10) -> None:
        check_at_least(self.name, "vocab", vocab, 2)
        self.vocab = vocab
        self.separator = vocab
        self.vocab_size = vocab + 1  # content tokens and the separator
        self.num_classes = self.vocab_size

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The answer for prompt ``x``: ``(B, n) -> (B, n)``."""
        raise NotImplementedError

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request(self.name, batch_size, length, min_length=2)
        x = torch.randint(self.vocab, (batch_size, length // 2), generator=generator)  # (B, n)
        prompt = torch.cat([x, torch.full((batch_size, 1), self.separator)], dim=1)
        return next_token_batch(prompt, self.transform(x), length)

    def chance_level(self) -> float:
        """Per-token accuracy of a constant guess over the content tokens."""
        return 1.0 / self.vocab


@TASKS.register("copy")
class Copy(_Transduction):
    """Copy: ``x_1 .. x_n SEP x_1 .. x_n`` with ``n = length // 2`` tokens uniform over ``vocab``.

    The separator is token ``vocab``. Even ``length``: the inputs hold the
    prompt, separator and the first ``n - 1`` answer tokens; odd ``length``:
    all of them, and the last target is ignored.
    """

    name = "copy"

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x


@TASKS.register("reverse")
class Reverse(_Transduction):
    """Reverse: ``x_1 .. x_n SEP x_n .. x_1``, laid out as :class:`Copy`."""

    name = "reverse"

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1)


@TASKS.register("associative_recall")
class AssociativeRecall(Task):
    """Recall the value bound to a key: ``k_1 v_1 .. k_m v_m SEP q v``.

    Each example draws its own dictionary (every key gets a uniform value);
    the ``m = (length - 2) // 2`` pairs have uniform keys with their
    dictionary values, so a repeated key repeats its value. The query ``q`` is
    the key of a uniformly chosen pair and the single scored answer is its
    value. Keys are tokens ``0 .. num_keys - 1``, values ``num_keys ..
    num_keys + num_values - 1``, the separator comes last.
    """

    kind = "sequence"
    default_causal = True

    def __init__(self, *, num_keys: int = 16, num_values: int = 16) -> None:
        check_at_least("associative_recall", "num_keys", num_keys, 1)
        check_at_least("associative_recall", "num_values", num_values, 2)
        self.num_keys, self.num_values = num_keys, num_values
        self.separator = num_keys + num_values
        self.vocab_size = num_keys + num_values + 1
        self.num_classes = self.vocab_size

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("associative_recall", batch_size, length, min_length=4)
        m = (length - 2) // 2
        table = self.num_keys + torch.randint(self.num_values, (batch_size, self.num_keys), generator=generator)
        keys = torch.randint(self.num_keys, (batch_size, m), generator=generator)  # (B, m)
        pairs = torch.stack([keys, table.gather(1, keys)], dim=2).reshape(batch_size, 2 * m)
        query = keys.gather(1, torch.randint(m, (batch_size, 1), generator=generator))  # (B, 1)
        prompt = torch.cat([pairs, torch.full((batch_size, 1), self.separator), query], dim=1)
        return next_token_batch(prompt, table.gather(1, query), length)

    def chance_level(self) -> float:
        """Accuracy of a constant guess of the value."""
        return 1.0 / self.num_values
