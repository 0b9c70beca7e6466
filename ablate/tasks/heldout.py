"""Held-out data for tasks that generate their sequences: one split per sequence, by a hash of its tokens.

A generated task (``Task.splits == "hash"``) draws from one distribution for
every split. Every input sequence belongs to exactly one split, by a fixed hash
of its tokens (:func:`split_of`: 80% train, 10% validation, 10% test), and
:func:`sample` keeps only sequences of the requested split. Validation and test
sequences therefore never occur in training, whatever the seed or the number of
steps. Labels stay as the task draws them: the first natural draw fixes each
slot's label, and each slot takes the next drawn sequence of its label and split,
so a balanced task stays balanced and each class keeps its own distribution
(restricted to the split).

Where a length is too small for that, the splits are shared, and the run says so.
:func:`probe` decides it once per task and length: it draws :func:`probe_size`
sequences with a fixed seed and counts the distinct ones of every (split, label)
cell; the splits are held out when every cell has at least
:data:`MIN_DISTINCT` of them (at smaller counts a label may have no sequence at
all in a split). Otherwise every split draws from the whole space, as if there
were no splits, and :class:`HeldOut` carries a note with the measured sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ablate.tasks.batch import Batch
from ablate.tasks.sampling import SPLITS, fill_by_label

#: A task's ``draw(generator, batch_size, length)``: a batch of its whole distribution, every split together.
Draw = Callable[[torch.Generator, int, int], Batch]

#: Hash buckets (out of 10) of each split, in :data:`~ablate.tasks.sampling.SPLITS` order.
BUCKETS: dict[str, range] = {"train": range(0, 8), "validation": range(8, 9), "test": range(9, 10)}
#: Distinct sequences every (split, label) cell of the probe needs for the splits to be held out.
MIN_DISTINCT = 8
#: Seed of the probe's generator (fixed: whether a length is held out never depends on a run's seed).
PROBE_SEED = 20_231
_MASK = 0xFFFF_FFFF


@dataclass(frozen=True)
class HeldOut:
    """Whether validation and test sequences at one length are disjoint from training.

    Attributes:
        held_out: ``True`` when no validation or test sequence can occur in training.
        note: what was measured, for the run's record (``None`` when there is nothing to say).
    """

    held_out: bool
    note: str | None = None


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A bijection of 32-bit values (xor-shift-multiply): int64 in ``[0, 2**32)`` -> same."""
    # The multiplier is odd and below 2**31, so products stay inside int64.
    x = x ^ (x >> 16)
    x = (x * 0x045D_9F3B) & _MASK
    x = x ^ (x >> 16)
    x = (x * 0x045D_9F3B) & _MASK
    return x ^ (x >> 16)


def _lane(tokens: torch.Tensor, seed: int) -> torch.Tensor:
    """A 32-bit hash of each row: ``(B, L)`` int64 -> ``(B,)`` int64 in ``[0, 2**32)``."""
    positions = torch.arange(tokens.shape[1], dtype=torch.int64)
    # Per position, (token, position) -> a bijective mix; rows that differ in one position always differ in the sum.
    cells = _mix(((tokens & _MASK) * 0x2C1B_3C6D + positions * 0x297A_2D39 + seed) & _MASK)
    return _mix((cells.sum(1) + tokens.shape[1]) & _MASK)


def sequence_hash(inputs: torch.Tensor) -> torch.Tensor:
    """A fixed 62-bit hash of each input sequence: ``(B, L)`` int tokens -> ``(B,)`` int64.

    Pure integer arithmetic, so it is the same on every machine and torch version.
    """
    if inputs.dtype.is_floating_point or inputs.dim() != 2:
        raise ValueError(f"held-out splits hash (B, L) integer tokens, got {tuple(inputs.shape)} {inputs.dtype}")
    tokens = inputs.to("cpu", torch.int64)
    return (_lane(tokens, 0x1234_5678) << 30) | (_lane(tokens, 0x0BAD_5EED) >> 2)


def split_of(inputs: torch.Tensor) -> torch.Tensor:
    """The split of each sequence: ``(B, L)`` -> ``(B,)`` int64 index into :data:`~ablate.tasks.sampling.SPLITS`."""
    return _split_of_hash(sequence_hash(inputs))


def _split_of_hash(hashes: torch.Tensor) -> torch.Tensor:
    bucket = (hashes >> 30) % 10  # from the first lane alone
    split = torch.empty_like(bucket)
    for index, name in enumerate(SPLITS):
        split[(bucket >= BUCKETS[name].start) & (bucket < BUCKETS[name].stop)] = index
    return split


def _labels(batch: Batch) -> torch.Tensor:
    """Class labels of a classification batch, one shared label for token-level targets: ``(B,)``."""
    return batch.targets if batch.targets.dim() == 1 else torch.zeros(len(batch.targets), dtype=torch.long)


def probe_size(classes: int) -> int:
    """Draws of the probe: 64 expected sequences per (smallest split, label) cell of a large space."""
    smallest = min(len(b) for b in BUCKETS.values()) / 10
    return math.ceil(64 * max(classes, 4) / smallest)


def probe(draw: Draw, classes: int, length: int) -> HeldOut:
    """Decide whether a task (its ``draw``, its number of labels) can hold out validation and test at ``length``.

    Draws :func:`probe_size` sequences with a fixed seed and counts the distinct
    ones per (split, label); held out when every cell has :data:`MIN_DISTINCT`.
    A first quarter with no sequence twice and full cells settles it early (a
    large space: long sequences never need the whole probe).
    """
    draws = probe_size(classes)
    generator = torch.Generator().manual_seed(PROBE_SEED)
    first = _hashes_and_labels(draw(generator, draws // 4, length))
    if len(torch.unique(first[0])) == len(first[0]) and _smallest_cell(*first) >= MIN_DISTINCT:
        return HeldOut(True)
    rest = _hashes_and_labels(draw(generator, draws - draws // 4, length))
    hashes, labels = torch.cat([first[0], rest[0]]), torch.cat([first[1], rest[1]])
    splits = _split_of_hash(hashes)
    distinct = len(torch.unique(hashes))
    per_split = {name: len(torch.unique(hashes[splits == i])) for i, name in enumerate(SPLITS)}
    counted = f"{distinct} distinct inputs in {draws} draws at length {length} " \
              f"({per_split['validation']} validation, {per_split['test']} test)"
    if _smallest_cell(hashes, labels) < MIN_DISTINCT:
        return HeldOut(False, f"not held out: {counted}, fewer than {MIN_DISTINCT} of some label in a split; "
                              "validation and test are drawn from the training sequences")
    # A probe that saw each sequence twice on average has enumerated (most of) the space: say how small it is.
    return HeldOut(True, f"held out: {counted}" if distinct <= draws // 2 else None)


def _hashes_and_labels(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    return sequence_hash(batch.inputs), _labels(batch)


def _smallest_cell(hashes: torch.Tensor, labels: torch.Tensor) -> int:
    """The fewest distinct sequences of any (split, label) cell, over the labels present."""
    splits = _split_of_hash(hashes)
    return min(len(torch.unique(hashes[(splits == i) & (labels == c)]))
               for i in range(len(SPLITS)) for c in torch.unique(labels).tolist())


def sample(draw: Draw, generator: torch.Generator, batch_size: int, length: int, split: str,
           held_out: HeldOut, *, what: str = "task") -> Batch:
    """A batch of ``split`` only (by :func:`split_of`), labels distributed as ``draw`` draws them.

    Args:
        draw: the task's sampler of its whole space (``Task.draw``).
        held_out: :func:`probe` of the task at ``length``; when not held out, one plain draw.
        what: the task, for an error message.

    Returns:
        The batch: ``inputs (B, L)``, targets and masks as ``draw`` gives them.
    """
    first = draw(generator, batch_size, length)
    if not held_out.held_out:
        return first
    index = SPLITS.index(split)
    batches = [first]

    def of_split(batch: Batch) -> torch.Tensor:
        return torch.where(split_of(batch.inputs) == index, _labels(batch), -1)

    def candidates(n: int) -> torch.Tensor:
        batches.append(draw(generator, n, length))
        return of_split(batches[-1])

    fraction = len(BUCKETS[split]) / 10
    rows = fill_by_label(what, _labels(first), candidates, math.ceil(2 * batch_size / fraction) + 16,
                         drawn=of_split(first))
    return Batch.cat(batches).rows(rows)
