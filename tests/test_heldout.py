"""Held-out data: validation and test sequences of a generated task never occur in its training stream."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import torch

import ablate.run.train as train_module
from ablate.suite import load_plan
from ablate.suite.run_config import parse_train_run
from ablate.tasks import TASKS, create_task
from ablate.tasks.base import Task
from ablate.tasks.heldout import MIN_DISTINCT, sequence_hash, split_of

#: Every registered task that generates its sequences (a new one is covered the moment it registers).
GENERATED = [name for name in TASKS.names() if TASKS.get(name).splits == "hash"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rows(inputs: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(row) for row in inputs.tolist()}


@functools.cache
def _smallest_held_out_length(name: str) -> int:
    """The shortest length at which ``name`` holds its splits out: where the space is smallest,
    so a training stream of a few thousand sequences covers much of it."""
    task = create_task(name)
    for length in range(1, 17):
        try:
            if task.held_out(length).held_out:
                return length
        except ValueError:  # shorter than the task allows
            continue
    raise AssertionError(f"{name} holds nothing out up to length 16")


@pytest.mark.parametrize("name", GENERATED)
def test_validation_and_test_sequences_never_occur_in_training(name: str) -> None:
    task, length = create_task(name), _smallest_held_out_length(name)
    training = _rows(torch.cat([task.sample(_gen(seed), 64, length).inputs for seed in range(40)]))
    for split in ("validation", "test"):
        held = _rows(task.sample(_gen(7), 256, length, split=split).inputs)
        assert not held & training, f"{name} at length {length}: {split} sequences in training"
    # The control: the same number of sequences drawn without splits does meet the training stream here.
    assert _rows(task.draw(_gen(7), 256, length).inputs) & training


@pytest.mark.parametrize("name", GENERATED)
def test_each_split_is_the_same_for_the_same_seed_and_keeps_its_own_sequences(name: str) -> None:
    task, length = create_task(name), _smallest_held_out_length(name)
    for index, split in enumerate(("train", "validation", "test")):
        first, again = task.sample(_gen(3), 32, length, split=split), task.sample(_gen(3), 32, length, split=split)
        for field in ("inputs", "targets", "padding_mask", "loss_mask"):
            a, b = getattr(first, field), getattr(again, field)
            assert (a is None and b is None) or torch.equal(a, b), (split, field)
        assert split_of(first.inputs).eq(index).all()


@pytest.mark.parametrize("name", [n for n in GENERATED if TASKS.get(n).kind == "classification"])
def test_every_split_keeps_the_class_balance(name: str) -> None:
    task, length = create_task(name), _smallest_held_out_length(name)
    for split in ("train", "validation", "test"):
        labels = task.sample(_gen(1), 3000, length, split=split).targets
        freq = torch.bincount(labels, minlength=task.num_classes).double() / len(labels)
        assert (freq - 1 / task.num_classes).abs().max() < 0.04, (split, freq.tolist())


@pytest.mark.parametrize("name", GENERATED)
def test_lengths_too_small_to_hold_out_say_so_with_the_measured_space(name: str) -> None:
    task = create_task(name)
    length = _smallest_held_out_length(name) - 1
    try:
        held = task.held_out(length)
    except ValueError:
        return  # the task refuses the length altogether
    assert not held.held_out and f"fewer than {MIN_DISTINCT}" in held.note and "distinct inputs" in held.note
    for split in ("train", "validation", "test"):  # still served, from the whole space
        assert task.sample(_gen(0), 4, length, split=split).inputs.shape[0] == 4


def test_the_hash_is_pinned_and_splits_eighty_ten_ten() -> None:
    inputs = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 4]])
    assert sequence_hash(inputs).tolist() == [62020865645797271, 1140205388342316730, 2416670092010923106]
    many = torch.randint(5, (20_000, 12), generator=_gen(0))
    share = torch.bincount(split_of(many), minlength=3).double() / len(many)
    assert share.tolist() == pytest.approx([0.8, 0.1, 0.1], abs=0.01)
    with pytest.raises(ValueError, match="integer tokens"):
        sequence_hash(torch.rand(2, 3))


def test_held_out_splits_are_decided_once_per_length_whatever_the_seed() -> None:
    task = create_task("parity")
    assert task.held_out(8) is task.held_out(8)
    assert not task.held_out(4).held_out and "16 distinct inputs" in task.held_out(4).note
    assert task.held_out(32).held_out and task.held_out(32).note is None


def test_a_task_with_its_own_sample_is_not_called_held_out() -> None:
    class Own(Task):
        def sample(self, generator, batch_size, length, *, split="train"):  # noqa: ANN001, ANN201
            return create_task("parity").draw(generator, batch_size, length)

    held = Own().held_out(8)
    assert not held.held_out and "samples its splits itself" in held.note


class _Spy(Task):
    """A task that records which split each batch came from, at which length."""

    def __init__(self, inner: Task, calls: list[tuple[str, int]]) -> None:
        self.inner, self.calls = inner, calls
        self.kind, self.vocab_size, self.num_classes = inner.kind, inner.vocab_size, inner.num_classes

    def sample(self, generator, batch_size, length, *, split="train"):  # noqa: ANN001, ANN201
        self.calls.append((split, length))
        return self.inner.sample(generator, batch_size, length, split=split)

    def held_out(self, length: int):  # noqa: ANN201
        return self.inner.held_out(length)


def test_the_criterion_reads_validation_and_every_reported_metric_reads_test(monkeypatch) -> None:
    torch.set_num_threads(1)
    quickstart = Path(__file__).resolve().parents[1] / "suites" / "quickstart.toml"
    config = copy.deepcopy(load_plan(str(quickstart)).train_runs()[0].config)
    config["train"].update(steps=4, until={"every": 2, "batches": 1})
    config["eval"].update(batches=1, batch_size=8)
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(train_module, "create_task", lambda spec: _Spy(create_task(spec), calls))
    run = parse_train_run(config)
    status, _, rows, curve = train_module.train_evaluate_curve(run)
    assert status == "ok" and len(curve) == 2
    train_length, lengths = run.train.length, run.eval.lengths
    assert [c for c in calls if c[0] == "train"] == [("train", train_length)] * 4
    assert [c for c in calls if c[0] == "validation"] == [("validation", train_length)]  # drawn once, scored twice
    assert sorted(n for split, n in calls if split == "test") == sorted(lengths)
    assert {split for split, _ in calls} == {"train", "validation", "test"}
    held = {r.eval_length: r.value for r in rows if r.metric == "held_out"}
    assert held == {n: 1.0 for n in sorted({train_length, *lengths})}
