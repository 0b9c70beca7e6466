"""``ablate clean``: delete what the user asks for in a suite's results, and nothing else.

* ``--checkpoints`` deletes the stored checkpoints (all, or those of ``--runs``);
  the results stay, but variants added later need the runs retrained.
* ``--retrain-missing`` forgets (deletes from the results database) every ``ok``
  train run whose checkpoint is missing or cannot be loaded, with its variant
  rows, so the next ``ablate run`` trains it again.

Without a flag it only says what is there.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from rich.console import Console

from ablate.run import checkpoints
from ablate.cli.args import add_out
from ablate.core.errors import CheckpointError, UserError
from ablate.suite import load_suite


def results_dir_of(target: str, results_root: str) -> Path:
    """A results folder given directly, or the folder of a suite (file or built-in name) under ``results_root``."""
    path = Path(target)
    if (path / "results.sqlite").is_file():
        return path
    suite, _ = load_suite(target)
    directory = Path(results_root) / suite.name
    if not (directory / "results.sqlite").is_file():
        raise UserError(f"no results for suite {suite.name!r} at {directory}; give the results folder itself")
    return directory


def unloadable_runs(results_dir: Path) -> list[str]:
    """``ok`` train runs whose checkpoint is missing or does not load."""
    with sqlite3.connect(results_dir / "results.sqlite") as db:
        ok = [r for (r,) in db.execute("SELECT run_id FROM runs WHERE status = 'ok' AND kind = 'train' ORDER BY rowid")]
    bad = []
    for run_id in ok:
        try:
            checkpoints.load(results_dir, run_id)
        except CheckpointError:
            bad.append(run_id)
    return bad


def forget_runs(results_dir: Path, run_ids: list[str]) -> None:
    """Delete runs in one transaction; their metric and variant rows go with them (ON DELETE CASCADE)."""
    db = sqlite3.connect(results_dir / "results.sqlite", timeout=30)
    try:
        db.execute("PRAGMA foreign_keys=ON")
        with db:
            db.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in run_ids])
    finally:
        db.close()


def main(args: argparse.Namespace) -> int:
    """Run ``ablate clean``; prints what it deleted."""
    console = Console(stderr=True)
    results_dir = results_dir_of(args.target, args.results)
    if not args.checkpoints and not args.retrain_missing:
        kept = checkpoints.stored(results_dir)
        console.print(f"{results_dir}: {len(kept)} checkpoint(s); nothing deleted "
                      "(pass --checkpoints to delete them, --retrain-missing to forget runs without one)")
        return 0
    if args.checkpoints:
        deleted = checkpoints.delete(results_dir, set(args.runs) if args.runs else None)
        console.print(f"deleted {len(deleted)} checkpoint(s) under {results_dir / checkpoints.DIRECTORY}")
    if args.retrain_missing:
        bad = unloadable_runs(results_dir)
        forget_runs(results_dir, bad)
        checkpoints.delete(results_dir, set(bad))
        console.print(f"forgot {len(bad)} run(s) without a loadable checkpoint; `ablate run` trains them again")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``clean`` subcommand."""
    what = "delete stored checkpoints, or forget runs whose checkpoint is gone"
    clean = sub.add_parser("clean", help=what, description=what)
    clean.add_argument("target", help="a results folder, or a suite file / built-in name")
    add_out(clean, "results", "results root of a suite name, as 'ablate run --out' (default: results/)",
            dest="results", old="--results")
    clean.add_argument("--checkpoints", action="store_true", help="delete checkpoints (all, or those of --runs)")
    clean.add_argument("--runs", nargs="+", default=None, metavar="RUN_ID", help="only these runs' checkpoints")
    clean.add_argument("--retrain-missing", action="store_true",
                       help="forget ok runs whose checkpoint is missing or unloadable, so the next run retrains them")
    clean.set_defaults(handler=main)
