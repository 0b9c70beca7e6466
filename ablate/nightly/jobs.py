"""The nightly job's modes: ``--check`` (CI), stored results (a dedicated machine), ``--continuous`` (hosted CI).

Exit status of every mode: 0 when everything ran and nothing regressed, 1 on a
regression, 2 when a benchmark or an asv command failed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

import ablate.nightly.commands as commands
from ablate.nightly.commands import REPO, execute, git
from ablate.nightly.continuous import (
    Settings,
    WorkerProcess,
    compare_commits,
    describe,
    matched_cases,
    noise_summary,
)
from ablate.nightly.machine import machine_name, stable_python
from ablate.nightly.record import save_head_results
from ablate.nightly.results import DEFAULT_FACTOR, DEFAULT_MAX_DROP, compare_commits as compare_stored
from ablate.suite import load_plan


@dataclass
class Options:
    """What the job was asked to do (the flags of ``ablate nightly`` = ``python -m ablate.nightly``)."""

    check: bool = False
    quick: bool = False
    continuous: bool = False
    existing: bool = False
    base: str | None = None
    threshold: float = DEFAULT_FACTOR
    accuracy_drop: float = DEFAULT_MAX_DROP
    alpha: float = 0.05
    budget_s: float = 2400.0
    precision: float = 0.05
    sample_s: float = 0.05
    bench: str | None = None
    dry_run: bool = False  # print the commands instead of running them
    machine: str | None = None


def _cuda() -> bool:
    return torch.cuda.is_available()


def run_check(opts: Options) -> int:
    """``--check``: 0 when every selected benchmark ran (or was skipped), 2 otherwise."""
    plan = load_plan(os.environ.get("ABLATE_NIGHTLY_SUITE") or str(REPO / "suites" / "nightly.toml"))
    status = 0
    for command in commands.check_commands(plan, machine_name(opts.machine), commands.launch_method(_cuda())):
        code, output = execute(command, opts.dry_run)
        failures = commands.failed_benchmarks(output)
        if code != 0 or failures:
            print(f"asv check failed (exit {code}); failing benchmarks:", *failures, sep="\n  ", file=sys.stderr)
            status = 2
    return status


def run_stored(opts: Options) -> int:
    """A dedicated machine: run the new commit, compare with the previous results of this machine class, publish."""
    machine = machine_name(opts.machine)
    head = git("rev-parse", "HEAD")
    python = stable_python() if opts.existing else None
    if opts.existing and git("status", "--porcelain", "--untracked-files=no"):
        print("warning: the working tree has uncommitted changes; they are measured and recorded as "
              f"commit {head[:8]}", file=sys.stderr)
    results = commands.results_dir()
    before = commands.result_commits(results, machine)
    steps = [commands.machine_command(machine),
             commands.run_command(machine, head, commands.launch_method(_cuda()), python=python, quick=opts.quick,
                                  first=not before)]
    status = 0
    for command in steps:
        code, _ = execute(command, opts.dry_run)
        if code != 0:
            print(f"error: asv {command.argv[3]} exited {code}", file=sys.stderr)
            if command is steps[0]:
                return 2
            status = 2
    if opts.quick:
        return status  # asv keeps no results of a quick run: nothing to compare or publish
    # Compare like with like: the previous commit measured in the same environment(s) as this run.
    envs = {env for commit, _, env in commands.result_index(results, machine) if commit == head}
    previous = commands.previous_commit(commands.result_commits(results, machine, envs), head)
    if previous is None:
        print(f"no earlier results of machine {machine}: nothing to compare yet")
    else:
        found = compare_stored(results, machine, previous, head, factor=opts.threshold,
                               accuracy_drop=opts.accuracy_drop, env_names=envs)
        print(f"compared with {previous[:8]} on {machine}: {len(found)} regression(s)")
        for regression in found:
            print(f"regression: {regression.name}: {regression.reason}", file=sys.stderr)
        status = status or (1 if found else 0)
    code, _ = execute(commands.publish_command(), opts.dry_run)
    return status or (2 if code else 0)


def previous_benchmarked(head: str) -> str | None:
    """The newest ancestor of ``head`` with stored results on any machine, else its first parent."""
    previous = commands.previous_commit(commands.result_commits(commands.results_dir()), head)
    if previous is not None:
        return previous
    try:
        return git("rev-parse", f"{head}^")
    except Exception:  # noqa: BLE001 - a root commit has no parent
        return None


@contextlib.contextmanager
def checkout(commit: str, head: str) -> Iterator[Path]:
    """A detached worktree of ``commit`` (the repository itself when it is ``head``), removed afterwards."""
    if commit == head:
        yield REPO
        return
    folder = Path(tempfile.mkdtemp(prefix="ablate-nightly-base-")) / "checkout"
    git("worktree", "add", "--detach", str(folder), commit)
    try:
        yield folder
    finally:
        git("worktree", "remove", "--force", str(folder))


def run_continuous(opts: Options) -> int:
    """Hosted CI: measure the previous benchmarked commit and the new one in this job, interleaved, and compare.

    An A/A run (the old commit is ``HEAD`` itself) checks the mode: it saves and publishes nothing.
    """
    head = git("rev-parse", "HEAD")
    base = git("rev-parse", opts.base) if opts.base else previous_benchmarked(head)
    if base is None:
        print("no previous commit to compare with")
        return 0
    machine = machine_name(opts.machine)
    python = stable_python()
    record = base != head
    same = "" if record else " (the same commit twice: an A/A run, which must flag nothing; nothing is saved)"
    print(f"same-job comparison on {machine}: new {head[:8]} against old {base[:8]}{same}")
    settings = Settings(opts.threshold, opts.accuracy_drop, opts.alpha, opts.budget_s, opts.precision, opts.sample_s,
                        opts.bench)
    if opts.dry_run:
        then = ", save the new commit's numbers and publish" if record else ""
        print(f"would compare every benchmark of both commits in interleaved rounds ({settings}){then}")
        return 0
    for command in (commands.machine_command(machine), commands.discover_command(machine, python)) if record else ():
        if execute(command)[0] != 0:
            print(f"error: {command} failed", file=sys.stderr)
            return 2
    with checkout(base, head) as base_root:
        new, old = WorkerProcess(REPO), WorkerProcess(base_root)
        try:
            print("benchmark: ratio new/old [confidence sequence] verdict")
            outcomes = compare_commits(new, old, settings)
            benchmarks = new.request("list")["benchmarks"]
        finally:
            new.close()
            old.close()
    status = _conclude(outcomes)
    if record:
        date = int(git("show", "-s", "--format=%ct", head)) * 1000
        path = save_head_results(commands.results_dir(), machine, head, date, python, benchmarks, outcomes)
        print(f"saved the new commit's numbers: {path}")
        code, _ = execute(commands.publish_command())
        status = status or (2 if code else 0)
    return status


def _conclude(outcomes: list) -> int:
    """Print the noise, the regressions and the failures; 1 on a regression, 2 on a failure, else 0."""
    print(noise_summary(outcomes))
    found = [o for o in outcomes if o.regression]
    failed = [o for o in outcomes if o.status == "failed"]
    for outcome in found:
        print(f"regression: {outcome.case.name}: {outcome.regression}", file=sys.stderr)
    for outcome in failed:
        print(f"failed: {describe(outcome).strip()}", file=sys.stderr)
    compared = len([o for o in outcomes if o.status == "compared"])
    print(f"{compared} compared, {len(found)} regression(s), {len(failed)} failed")
    return 1 if found else (2 if failed else 0)


__all__ = ["Options", "checkout", "matched_cases", "previous_benchmarked", "run_check", "run_continuous",
           "run_stored"]
