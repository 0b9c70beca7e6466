"""The code fingerprint of a run: the package version plus a hash of the sources that make its numbers.

Every run records :func:`current` as ``env.fingerprint``. A stored run whose
fingerprint differs from the code now installed is **stale**: its numbers came
from other code (a run id hashes the configuration only, so ``ablate run`` would
otherwise skip it as done). ``ablate run --rerun-stale`` and ``ablate reproduce
--rerun-stale`` run stale runs again; reports name the fingerprints they rest on.

The hashed sources are every file of the package (modules and data such as the
play table), except the parts listed in :data:`NOT_RUN`: analysis, presentation,
the command line and the driver that schedules runs, which no training or
measurement run imports (a test runs both kinds and checks it), so editing them
leaves every stored number valid. Anything new is hashed unless listed there.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import pandas as pd

import ablate

#: Package-relative paths (folders or files) that no run executes: their changes change no stored number.
NOT_RUN: tuple[str, ...] = (
    "__main__.py", "analysis/plots", "analysis/report", "claims", "cli", "core/console.py", "nightly",
    "results/export.py", "run/adaptive.py", "run/progress.py", "run/runner.py",
)
#: What :func:`fingerprints` calls the code of runs stored before fingerprints were recorded.
UNRECORDED = "unrecorded"
_COLUMN = "env.fingerprint"


def package_root() -> Path:
    """The folder of the installed ``ablate`` package."""
    return Path(ablate.__file__).resolve().parent


def source_files(root: Path | None = None) -> list[Path]:
    """The files the fingerprint hashes, sorted: every file under ``root`` except :data:`NOT_RUN` and caches."""
    root = root or package_root()
    excluded = {root / part for part in NOT_RUN}
    files = []
    for path in root.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        if any(path == e or e in path.parents for e in excluded):
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def compute(root: Path | None = None, version: str | None = None) -> str:
    """``"<version>+<12 hex digits>"``: the version and a SHA-256 over the paths and bytes of :func:`source_files`."""
    root = root or package_root()
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return f"{version or ablate.__version__}+{digest.hexdigest()[:12]}"


@functools.cache
def current() -> str:
    """The fingerprint of the code installed now (computed once per process)."""
    return compute()


def _per_run(frame: pd.DataFrame) -> pd.Series:
    """``run_id -> fingerprint`` (:data:`UNRECORDED` where a run has none) of a tidy results frame."""
    if frame.empty or "run_id" not in frame.columns:
        return pd.Series([], dtype=str)
    runs = frame.drop_duplicates("run_id").set_index("run_id")
    if _COLUMN not in runs.columns:
        return pd.Series(UNRECORDED, index=runs.index, dtype=str)
    return runs[_COLUMN].where(runs[_COLUMN].notna(), UNRECORDED).astype(str)


def fingerprints(frame: pd.DataFrame) -> list[str]:
    """The code fingerprints a results frame rests on, most runs first (:data:`UNRECORDED` for old runs)."""
    counts = _per_run(frame).value_counts(sort=False)
    return sorted(counts.index, key=lambda f: (-counts[f], f))


def stale_runs(frame: pd.DataFrame, current_fingerprint: str | None = None) -> list[str]:
    """Run ids of ``frame`` whose fingerprint is not ``current_fingerprint`` (default: :func:`current`)."""
    per_run = _per_run(frame)
    now = current_fingerprint or current()
    return sorted(per_run.index[per_run != now])


def describe(frame: pd.DataFrame, current_fingerprint: str | None = None) -> str:
    """One line for a report: the fingerprints with their run counts, and what is stale or mixed."""
    per_run = _per_run(frame)
    if per_run.empty:
        return "Code fingerprint: no runs."
    now = current_fingerprint or current()
    counts = per_run.value_counts()
    listed = ", ".join(f"{f} ({n} run{'s' if n != 1 else ''})" for f, n in
                       sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    text = f"Code fingerprint{'s' if len(counts) > 1 else ''}: {listed}."
    if len(counts) > 1:
        text += f" These results mix {len(counts)} code versions."
    stale = int((per_run != now).sum())
    if stale:
        text += (f" {stale} of {len(per_run)} runs are stale (the code now installed is {now}); "
                 "re-run them with --rerun-stale.")
    return text
