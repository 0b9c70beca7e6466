"""Small sampling helpers shared by the task families.

Everything here draws only from the ``torch.Generator`` it is given, so a task
built on these helpers is reproducible from its seed alone.
"""

from __future__ import annotations

from typing import Callable

import torch

from ablate.tasks.batch import Batch

#: Target value that no loss counts (PyTorch's ``cross_entropy`` default ``ignore_index``).
IGNORE_INDEX = -100
SPLITS = ("train", "validation", "test")


def check_request(task: str, batch_size: int, length: int, split: str = "train", *, min_length: int = 1) -> None:
    """Raise ``ValueError`` for a batch request the task cannot serve."""
    check_split(task, split)
    if batch_size < 1:
        raise ValueError(f"task {task!r}: batch_size must be at least 1, got {batch_size}")
    if length < min_length:
        raise ValueError(f"task {task!r} needs length >= {min_length}, got {length}")


def check_split(task: str, split: str) -> None:
    """Raise ``ValueError`` unless ``split`` is one of :data:`SPLITS`."""
    if split not in SPLITS:
        raise ValueError(f"task {task!r}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def check_at_least(task: str, name: str, value: int, minimum: int) -> None:
    """Raise ``ValueError`` unless the constructor argument ``name`` is an int >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"task {task!r}: {name} must be an integer >= {minimum}, got {value!r}")


def rand_below(generator: torch.Generator, bound: torch.Tensor) -> torch.Tensor:
    """Uniform integers in ``[0, bound)`` per element: ``(N,) -> (N,)`` int64 (``bound >= 1``)."""
    # float64 keeps the floor exact for bounds up to millions (corpus offsets).
    u = torch.rand(bound.shape, generator=generator, dtype=torch.float64)
    return (u * bound.to(torch.float64)).long().clamp(max=bound - 1)


def random_subset_mask(generator: torch.Generator, candidates: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Choose ``counts[b]`` positions uniformly among the ``True`` entries of ``candidates[b]``.

    Args:
        candidates: ``(B, L)`` bool, the positions that may be chosen.
        counts: ``(B,)`` int64, how many to choose per row (at most the candidates).

    Returns:
        ``(B, L)`` bool, ``True`` at the chosen positions.
    """
    keys = torch.rand(candidates.shape, generator=generator)
    keys = keys.masked_fill(~candidates, 2.0)  # non-candidates sort last
    rank = keys.argsort(dim=1).argsort(dim=1)  # (B, L) rank of each position's key
    return rank < counts.unsqueeze(1)


def fill_by_label(
    task: str,
    wanted: torch.Tensor,
    draw: Callable[[int], torch.Tensor],
    round_size: int,
    *,
    drawn: torch.Tensor | None = None,
    max_rounds: int = 64,
) -> torch.Tensor:
    """Fill each slot with the next unused candidate of its label, drawing candidates in rounds.

    The candidates of one label are used in the order they were drawn, so each
    slot gets an independent draw of the task's distribution conditioned on the
    slot's label (and on whatever made a candidate acceptable).

    Args:
        task: the task's name, for the error message.
        wanted: ``(B,)`` int64, the label of each slot.
        draw: ``n -> (n,)`` int64 labels of ``n`` new candidates, ``-1`` for a rejected
            one; the caller keeps the candidates themselves, in the order drawn.
        round_size: candidates per call of ``draw``.
        drawn: ``(M,)`` labels of candidates the caller drew before (they come first).

    Returns:
        ``(B,)`` int64: for each slot, its candidate's index in the drawing order.

    Raises:
        ValueError: ``max_rounds`` rounds did not give every slot a candidate.
    """
    classes = int(wanted.max()) + 1 if len(wanted) else 0
    need = torch.bincount(wanted, minlength=classes)
    labels = [drawn] if drawn is not None else []
    have = torch.bincount(drawn[drawn >= 0], minlength=classes)[:classes] if drawn is not None else 0 * need
    rounds = 0
    while not bool((have >= need).all()):
        if rounds == max_rounds:
            missing = [c for c in range(classes) if have[c] < need[c]]
            raise ValueError(f"task {task!r} cannot produce classes {missing} at this length; use a longer length")
        new = draw(round_size)
        labels.append(new)
        have += torch.bincount(new[(new >= 0) & (new < classes)], minlength=classes)
        rounds += 1
    pool = torch.cat(labels)
    index = torch.empty(len(wanted), dtype=torch.long)
    for c in range(classes):
        slots = (wanted == c).nonzero().squeeze(1)
        index[slots] = (pool == c).nonzero().squeeze(1)[: len(slots)]
    return index


def sample_balanced(
    task: str,
    generator: torch.Generator,
    batch_size: int,
    num_classes: int,
    draw: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch whose labels are uniform over ``num_classes``, by rejection from ``draw``.

    Labels are drawn uniformly first; each slot is then filled with the next
    unused candidate of its class (:func:`fill_by_label`). The examples of one
    class therefore follow the task's natural distribution conditioned on that label.

    Args:
        draw: ``n -> (inputs (n, ...), labels (n,))``; must use ``generator`` only.

    Returns:
        ``inputs (B, ...)`` and ``labels (B,)`` int64.
    """
    wanted = torch.randint(num_classes, (batch_size,), generator=generator)
    inputs: list[torch.Tensor] = []

    def candidates(n: int) -> torch.Tensor:
        x, y = draw(n)
        inputs.append(x)
        return y

    index = fill_by_label(task, wanted, candidates, 2 * batch_size + 16)
    return torch.cat(inputs)[index], wanted


def next_token_batch(prompt: torch.Tensor, answer: torch.Tensor, length: int) -> Batch:
    """A causal-decoder batch: ``prompt`` then ``answer``, scored only on the answer.

    The full sequence ``S = prompt + answer`` must have ``length + 1`` tokens
    (then ``inputs = S[:-1]`` and every answer token is a target) or ``length``
    tokens (then ``inputs = S`` and the last target is :data:`IGNORE_INDEX`).
    ``targets[:, t]`` is the token after ``inputs[:, t]``.

    Args:
        prompt: ``(B, P)`` int64, including any separator.
        answer: ``(B, A)`` int64.
        length: model sequence length ``L``.

    Returns:
        Batch with ``inputs (B, L)``, ``targets (B, L)``, ``loss_mask (B, L)``
        (``True`` at the ``A`` positions whose target is an answer token).
    """
    sequence = torch.cat([prompt, answer], dim=1)  # (B, P + A)
    batch_size, total = sequence.shape
    if total not in (length, length + 1):
        raise ValueError(f"prompt + answer has {total} tokens; expected {length} or {length + 1}")
    targets = torch.full((batch_size, length), IGNORE_INDEX, dtype=torch.long)
    targets[:, : total - 1] = sequence[:, 1:length + 1]
    loss_mask = torch.zeros(batch_size, length, dtype=torch.bool)
    p, a = prompt.shape[1], answer.shape[1]
    loss_mask[:, p - 1 : p - 1 + a] = True
    return Batch(sequence[:, :length].contiguous(), targets, None, loss_mask)
