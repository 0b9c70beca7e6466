"""Labels for ``ablate compare A B``: short, distinct names of two result folders.

The usual comparison is the same suite in two places (``results/A/det`` and
``results/B/det``: two commits, two machines), so the folder names alone are often
equal. The first of these that tells the two apart is used: the folder names,
the git commits recorded with the runs, the machines' host names, the shortest
part of the two paths that differs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _single(frame: pd.DataFrame, column: str) -> str | None:
    """The one value of ``column`` in ``frame`` (``None`` when absent, empty or mixed)."""
    if column not in frame.columns:
        return None
    values = pd.unique(frame[column].dropna().astype(str))
    return str(values[0]) if len(values) == 1 and values[0] else None


def _distinct_suffixes(a: Path, b: Path) -> tuple[str, str]:
    """The shortest trailing parts of two paths that differ: ``.../A/det``, ``.../B/det`` -> ``A/det``, ``B/det``."""
    for depth in range(1, max(len(a.parts), len(b.parts)) + 1):
        tail_a, tail_b = a.parts[-depth:], b.parts[-depth:]
        if tail_a != tail_b:
            return str(Path(*tail_a)), str(Path(*tail_b))
    return str(a), str(b)


def derive_labels(path_a: str | Path, path_b: str | Path, frame_a: pd.DataFrame, frame_b: pd.DataFrame) -> tuple[str, str]:
    """Two distinct labels for the folders ``path_a`` and ``path_b`` holding ``frame_a`` and ``frame_b``.

    Raises:
        ValueError: both paths are the same folder (nothing can tell them apart).
    """
    a, b = Path(path_a).resolve(), Path(path_b).resolve()
    if a == b:
        raise ValueError(f"{path_a} and {path_b} are the same folder; compare two different result folders")
    if a.name != b.name:
        return a.name, b.name
    for column, short in (("env.git_commit", 7), ("env.hostname", 24)):
        value_a, value_b = _single(frame_a, column), _single(frame_b, column)
        if value_a and value_b and value_a[:short] != value_b[:short]:
            return f"{a.name}@{value_a[:short]}", f"{b.name}@{value_b[:short]}"
    return _distinct_suffixes(a, b)
