"""Formal-language classification tasks after Delétang et al. (2023).

"Neural Networks and the Chomsky Hierarchy" (ICLR 2023); definitions follow
``google-deepmind/neural_networks_chomsky_hierarchy`` (``tasks/regular`` and
``tasks/cs``). ``length`` is the number of input tokens, with the per-task
padding rule documented on each class. Where the reference sampler's labels are
not uniform at short lengths, :func:`~ablate.tasks.sampling.sample_balanced`
conditions on a uniformly drawn label, so chance is always ``1 / num_classes``.
"""

from __future__ import annotations

import torch

from ablate.tasks.registry import TASKS
from ablate.tasks.base import Batch, Task
from ablate.tasks.sampling import check_at_least, check_request, sample_balanced


@TASKS.register("parity")
class Parity(Task):
    """Parity of the number of ``1`` tokens ("parity check", regular).

    Inputs are ``length`` tokens uniform over ``{0, ..., vocab - 1}``; the label
    is ``count(token == 1) mod 2``. Balance: a uniformly drawn label is imposed
    by toggling one uniformly chosen position between ``1`` and another token
    when the parity disagrees; for ``vocab = 2`` this leaves strings exactly
    uniform (Delétang's distribution), for larger vocabularies it makes the
    labels uniform at every length.
    """

    kind = "classification"

    def __init__(self, *, vocab: int = 2) -> None:
        check_at_least("parity", "vocab", vocab, 2)
        self.vocab = vocab
        self.vocab_size = vocab
        self.num_classes = 2

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("parity", batch_size, length)
        x = torch.randint(self.vocab, (batch_size, length), generator=generator)  # (B, L)
        label = torch.randint(2, (batch_size,), generator=generator)
        pos = torch.randint(length, (batch_size,), generator=generator)
        other = torch.randint(self.vocab - 1, (batch_size,), generator=generator)
        other = other + (other >= 1).long()  # a uniform token other than 1
        rows = torch.arange(batch_size)
        current = x[rows, pos]
        toggled = torch.where(current == 1, other, torch.ones_like(other))  # changes the count of 1s by one
        flip = (x == 1).sum(1) % 2 != label
        x[rows[flip], pos[flip]] = toggled[flip]
        return Batch(x, label)


@TASKS.register("even_pairs")
class EvenPairs(Task):
    """Whether the number of ``01`` plus ``10`` pairs is odd ("even pairs", regular).

    Inputs are ``length`` uniform binary tokens; label 0 when the count of
    unequal adjacent pairs is even, 1 when odd (Delétang's classes). The count
    is even exactly when the first token equals the last, so uniform strings
    give exactly balanced labels for ``length >= 2`` (``length = 1`` is always
    class 0 and is refused).
    """

    kind = "classification"
    label_changes_under = frozenset({"permutation"})  # first symbol == last symbol

    def __init__(self) -> None:
        self.vocab_size = 2
        self.num_classes = 2

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("even_pairs", batch_size, length, min_length=2)
        x = torch.randint(2, (batch_size, length), generator=generator)  # (B, L)
        return Batch(x, self.label(x))

    def label(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, L) -> (B,)``: the parity of the number of unequal adjacent pairs."""
        return (inputs[:, 1:] != inputs[:, :-1]).sum(1) % 2


@TASKS.register("modular_arithmetic")
class ModularArithmetic(Task):
    """Value modulo ``modulus`` of an expression without brackets (regular).

    Delétang's token layout: digits ``0 .. m-1`` at even positions, operators
    ``+`` (id ``m``), ``-`` (``m+1``), ``*`` (``m+2``) at odd positions, usual
    precedence (``*`` before ``+``/``-``), e.g. ``1 - 2 * 3 = 0 (mod 5)``. The
    expression has ``length`` tokens when ``length`` is odd; for even
    ``length`` it has ``length - 1`` tokens and a trailing blank ``_`` (id
    ``m+3``, Delétang's fourth operator symbol) pads it. Labels are made uniform
    by rejection (short expressions are biased towards 0 otherwise).
    """

    kind = "classification"

    def __init__(self, *, modulus: int = 5) -> None:
        check_at_least("modular_arithmetic", "modulus", modulus, 2)
        self.modulus = modulus
        self.vocab_size = modulus + 4
        self.num_classes = modulus

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("modular_arithmetic", batch_size, length)
        size = length if length % 2 == 1 else length - 1

        def candidates(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            digits = torch.randint(self.modulus, (n, size // 2 + 1), generator=generator)  # (n, K)
            ops = torch.randint(3, (n, size // 2), generator=generator)  # (n, K-1): 0 +, 1 -, 2 *
            x = torch.full((n, length), self.modulus + 3, dtype=torch.long)
            x[:, 0:size:2] = digits
            x[:, 1:size:2] = self.modulus + ops
            return x, evaluate_expression(digits, ops, self.modulus)

        x, label = sample_balanced("modular_arithmetic", generator, batch_size, self.modulus, candidates)
        return Batch(x, label)


def evaluate_expression(digits: torch.Tensor, ops: torch.Tensor, modulus: int) -> torch.Tensor:
    """Vectorised value of ``d0 op0 d1 op1 ... dK`` modulo ``modulus``.

    Args:
        digits: ``(N, K)`` int64 in ``[0, modulus)``.
        ops: ``(N, K-1)`` int64, 0 ``+``, 1 ``-``, 2 ``*``.

    Returns:
        ``(N,)`` int64 labels.
    """
    n, k = digits.shape
    mul = ops == 2
    # The sign of a product term rides on its first factor; multiplication carries it.
    sign = torch.cat([torch.ones(n, 1, dtype=torch.long), torch.where(ops == 1, -1, 1)], dim=1)
    value = (digits * sign) % modulus  # (N, K)
    starts = torch.cat([torch.ones(n, 1, dtype=torch.bool), ~mul], dim=1)  # a factor that opens a term
    ends = torch.cat([~mul, torch.ones(n, 1, dtype=torch.bool)], dim=1)  # a factor that closes a term
    # Segmented prefix product (Hillis-Steele): log2(K) vectorised steps instead of a loop over K.
    offset = 1
    while offset < k:
        prev_value = torch.ones_like(value)
        prev_value[:, offset:] = value[:, :-offset]
        prev_start = torch.ones_like(starts)
        prev_start[:, offset:] = starts[:, :-offset]
        value = torch.where(starts, value, value * prev_value % modulus)
        starts = starts | prev_start
        offset *= 2
    return (value * ends).sum(1) % modulus


@TASKS.register("cycle_navigation")
class CycleNavigation(Task):
    """Final position on a cycle after moves (regular).

    Tokens ``0, 1, 2`` are the moves ``-1, 0, +1`` (Delétang's encoding); the
    walk starts at 0 and the label is the final position modulo
    ``cycle_length``. ``length`` is the number of moves. Labels are made
    uniform by rejection; lengths too short to reach every position are refused.
    """

    kind = "classification"

    def __init__(self, *, cycle_length: int = 5) -> None:
        check_at_least("cycle_navigation", "cycle_length", cycle_length, 2)
        self.cycle_length = cycle_length
        self.vocab_size = 3
        self.num_classes = cycle_length

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        # 2L + 1 reachable sums must cover every residue.
        check_request("cycle_navigation", batch_size, length, min_length=self.cycle_length // 2)

        def candidates(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randint(3, (n, length), generator=generator)
            return x, (x - 1).sum(1) % self.cycle_length

        x, label = sample_balanced("cycle_navigation", generator, batch_size, self.cycle_length, candidates)
        return Batch(x, label)


@TASKS.register("missing_duplicate")
class MissingDuplicate(Task):
    """The masked token of a duplicated string ``w w`` (context-sensitive).

    ``w`` has ``length // 2`` tokens uniform over ``{0, ..., vocab - 1}``; one
    uniformly chosen position of ``w w`` is replaced by the mask token
    (``vocab``) and its token is the label. Odd lengths end with a pad token
    (``vocab + 1``), as in Delétang. The label is a uniform token at a uniform
    position, so classes are exactly balanced.
    """

    kind = "classification"

    def __init__(self, *, vocab: int = 2) -> None:
        check_at_least("missing_duplicate", "vocab", vocab, 2)
        self.vocab = vocab
        self.vocab_size = vocab + 2
        self.num_classes = vocab

    def draw(self, generator: torch.Generator, batch_size: int, length: int) -> Batch:
        check_request("missing_duplicate", batch_size, length, min_length=2)
        half = length // 2
        w = torch.randint(self.vocab, (batch_size, half), generator=generator)
        x = torch.full((batch_size, length), self.vocab + 1, dtype=torch.long)
        x[:, : 2 * half] = torch.cat([w, w], dim=1)
        pos = torch.randint(2 * half, (batch_size,), generator=generator)
        rows = torch.arange(batch_size)
        label = x[rows, pos].clone()
        x[rows, pos] = self.vocab
        return Batch(x, label)
