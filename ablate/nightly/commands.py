"""The asv command lines of the nightly job, running them, git, and the index of stored results.

Every command uses this interpreter and the repository's ``asv.conf.json``. A run
that saves results measures through :func:`ablate.nightly.machine.stable_python`,
so its environment name survives Python patch updates.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.nightly.results import asv_results

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "asv.conf.json"

#: ``--check`` trains the accuracy runs this short: it checks that they run, not what they reach.
CHECK_OVERRIDES = "train.steps=20"


@dataclass
class Command:
    """One asv invocation: argv and extra environment variables."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return (prefix + " " if prefix else "") + shlex.join(self.argv)


def asv(*args: str) -> list[str]:
    """An asv command line with this interpreter and the repository's configuration."""
    return [sys.executable, "-m", "asv", *args, "--config", str(CONFIG)]


def same_python_env() -> dict[str, str]:
    """Benchmarks run in an existing Python import ablate from the working tree (asv drops PYTHONPATH)."""
    paths = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"ASV_PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def launch_method(cuda: bool) -> str | None:
    """``None`` (the configuration's ``spawn``) with CUDA; ``forkserver`` on CPU-only machines.

    ``spawn`` starts a fresh interpreter per parameter combination, which CUDA
    needs but which costs an import of torch (about 2 s) each: about 7 minutes
    of a CPU nightly run. On a machine without CUDA the forkserver imports the
    benchmarks once and forks, with identical measurements.
    """
    return None if cuda else "forkserver"


def _launch(method: str | None) -> list[str]:
    return ["--launch-method", method] if method else []


def machine_command(name: str) -> Command:
    """Register this machine under ``name`` without questions (asv fills in CPU, RAM, OS)."""
    return Command(asv("machine", "--yes", "--machine", name))


def run_command(machine: str, commit: str, method: str | None, *, python: str | None, quick: bool = False,
                first: bool = False) -> Command:
    """The ``asv run`` of the stored-results job.

    Args:
        python: an existing interpreter (the stable launcher) to measure the working tree in as
            ``commit``; ``None``: asv's own virtualenv builds of the new commits.
        first: a machine's first run measures the newest commit only, not the whole history.
    """
    common = ["--machine", machine, "--show-stderr", *_launch(method), *(["--quick"] if quick else [])]
    if python is not None:
        return Command(asv("run", f"--environment=existing:{python}", "--set-commit-hash", commit, *common),
                       same_python_env())
    return Command(asv("run", f"{commit}^!" if first else "NEW", *common))


def discover_command(machine: str, python: str) -> Command:
    """Discover the benchmarks and write ``benchmarks.json`` without running any (for the dashboard)."""
    return Command(asv("run", f"--environment=existing:{python}", "--bench", "just-discover", "--machine", machine),
                   same_python_env())


def publish_command() -> Command:
    """Write the dashboard to ``html_dir`` (``results/asv/html``)."""
    return Command(asv("publish"))


def check_selection(plan: Any) -> list[str]:
    """``--bench`` regexes of ``--check``: every benchmark function, a cheap set of its combinations.

    Every encoding with the first pooling and every pooling with the first
    encoding at the shortest length (all measurement benchmarks), every encoding
    at the longest length for ``time_forward`` (exercises the skips of
    unsupported lengths), every accuracy combination and ``track_threads``.
    """
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.common import measure_params
    finally:
        sys.path.remove(str(REPO))
    params, _ = measure_params(plan)
    encodings, poolings, lengths = params[0], params[1], params[2]
    rest = [values[0] for values in params[3:]]

    def combo(*values: Any) -> str:
        return re.escape("(" + ", ".join(repr(v) for v in (*values, *rest)) + ")").replace("\\ ", " ") + "$"

    shortest, longest = min(lengths), max(lengths)
    regexes = [combo(e, poolings[0], shortest) for e in encodings]
    regexes += [combo(encodings[0], p, shortest) for p in poolings[1:]]
    regexes += [r"\.time_forward" + combo(e, poolings[0], longest) for e in encodings]
    regexes += [r"\.track_accuracy\(", r"\.track_threads$"]
    return regexes


def check_commands(plan: Any, machine: str, method: str | None) -> list[Command]:
    """``--check``: import-check the suite, then run the selection once without saving anything."""
    env = same_python_env()
    quick_env = dict(env, ABLATE_NIGHTLY_SET=CHECK_OVERRIDES)
    bench = [arg for regex in check_selection(plan) for arg in ("--bench", regex)]
    return [
        machine_command(machine),
        Command(asv("check", "--python=same"), env),
        Command(asv("run", "--python=same", "--quick", "--dry-run", "--show-stderr", "--machine", machine,
                    *_launch(method), *bench), quick_env),
    ]


#: asv prints a failed benchmark as "failed" in its result column (and exits 2); ``--check`` saves no file.
FAILED = re.compile(r"^\s*(?:\[[ \d.]+%\]\s*)?[·.]{2,}\s+\S.*\bfailed\b", re.MULTILINE)


def failed_benchmarks(output: str) -> list[str]:
    """Lines of ``asv run`` output that report a failed benchmark (``--check``'s unsaved run)."""
    return [m.group(0).strip() for m in FAILED.finditer(output)]


def execute(command: Command, dry_run: bool = False) -> tuple[int, str]:
    """Run ``command`` from the repository root, echoing its output; returns (status, output)."""
    print(f"$ {command}", flush=True)
    if dry_run:
        return 0, ""
    process = subprocess.Popen(command.argv, cwd=REPO, env={**os.environ, **command.env}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        lines.append(line)
    return process.wait(), "".join(lines)


# ----------------------------------------------------------------------------- git and stored results
def git(*args: str) -> str:
    """Output of a git command in the repository."""
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def is_ancestor(commit: str, head: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", commit, head], cwd=REPO,
                          capture_output=True, check=False).returncode == 0


def read_config() -> dict[str, Any]:
    """``asv.conf.json`` (asv allows ``//`` comment lines in it)."""
    text = "\n".join(line for line in CONFIG.read_text().splitlines() if not line.lstrip().startswith("//"))
    return json.loads(text)


def results_dir() -> Path:
    return REPO / read_config()["results_dir"]


def result_index(results: Path, machine: str | None = None) -> list[tuple[str, int, str]]:
    """``(commit hash, commit date, environment name)`` of every stored result file (of ``machine``, or all)."""
    machines = [machine] if machine else sorted(p.name for p in Path(results).iterdir() if p.is_dir()) \
        if Path(results).is_dir() else []
    return [(data["commit_hash"], int(data.get("date") or 0), str(data.get("env_name")))
            for name in machines for _, data in asv_results(results, name)]


def result_commits(results: Path, machine: str | None = None, env_names: set[str] | None = None) -> dict[str, int]:
    """``{commit hash: commit date}`` of the stored results (of ``machine``; of some environments)."""
    return {commit: date for commit, date, env in result_index(results, machine)
            if env_names is None or env in env_names}


def previous_commit(commits: dict[str, int], head: str, ancestor: Any = None) -> str | None:
    """The newest commit with results that is an ancestor of ``head`` (not ``head`` itself)."""
    ancestor = ancestor or is_ancestor
    for commit, _ in sorted(commits.items(), key=lambda item: item[1], reverse=True):
        if commit != head and ancestor(commit, head):
            return commit
    return None
