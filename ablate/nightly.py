"""The nightly asv job: register the machine, run the benchmarks, compare, publish.

``python -m ablate.nightly`` (or ``ablate nightly``) drives asv with the
repository's ``asv.conf.json``; the benchmarks live in ``benchmarks/`` and take
their params from ``suites/nightly.toml``. Modes:

* default: ``asv run NEW`` in asv's own virtualenvs (a clean build of every new
  commit on ``main``), then compare the newest commit with the previous one.
* ``--existing``: run the current commit in *this* Python (``--python=same
  --set-commit-hash HEAD``), no rebuild; how a GPU box with torch already
  installed runs it. The working tree is what gets measured.
* ``--quick``: every benchmark once (asv does not save quick results, so there
  is nothing to compare or publish): a smoke test of the nightly job.
* ``--check``: what CI (``tox``, after the tests) runs in a few minutes on 2 cores:
  ``asv check`` and a quick, unsaved run of every benchmark function on a
  cheap selection of its parameter combinations, failing if any benchmark fails.

Exit status: 0 when everything ran and nothing regressed, 1 on a regression
(slower or more memory by more than the factor ``--threshold``; accuracy down by
``--accuracy-drop`` points or more, see :mod:`ablate.nightly_accuracy`), 2 when
a benchmark or an asv command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.cli_args import fraction
from ablate.nightly_accuracy import DEFAULT_MAX_DROP, asv_results, compare_accuracy

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "asv.conf.json"

#: Benchmarks judged by an absolute drop in points (ablate.nightly_accuracy), not by asv's ratio.
ACCURACY = re.compile(r"\btrack_accuracy\b")

#: ``--check`` trains the accuracy runs this short: it checks that they run, not what they reach.
CHECK_OVERRIDES = "train.steps=20"


@dataclass
class Options:
    """What ``main`` was asked to do (from the CLI's namespace or ``python -m ablate.nightly``)."""

    check: bool = False
    quick: bool = False
    existing: bool = False
    threshold: float = 1.2
    accuracy_drop: float = DEFAULT_MAX_DROP
    dry_run: bool = False  # print the asv commands instead of running them
    machine: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(**{name: getattr(args, name) for name in cls.__dataclass_fields__
                      if getattr(args, name, None) is not None})


@dataclass
class Command:
    """One asv invocation: argv and extra environment variables."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return (prefix + " " if prefix else "") + shlex.join(self.argv)


# ------------------------------------------------------------------ the machine
def gpu_name() -> str | None:
    """The first CUDA device's name, or ``None`` on a machine without CUDA."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def slug(text: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_name(hostname: str | None = None, gpu: str | None = None) -> str:
    """``<hostname>-<gpu>`` or ``<hostname>-cpu``: results of different hardware never mix."""
    host = slug((hostname or socket.gethostname()).split(".")[0]) or "host"
    return f"{host}-{slug(gpu) if gpu else 'cpu'}"


def launch_method(cuda: bool) -> str | None:
    """``None`` (the configuration's ``spawn``) with CUDA; ``forkserver`` on CPU-only machines.

    ``spawn`` starts a fresh interpreter per parameter combination, which CUDA
    needs but which costs an import of torch (about 2 s) each: about 7 minutes
    of a CPU nightly run. On a machine without CUDA the forkserver imports the
    benchmarks once and forks, with identical measurements.
    """
    return None if cuda else "forkserver"


# -------------------------------------------------------------- the commands
def asv(*args: str) -> list[str]:
    """An asv command line with this interpreter and the repository's configuration."""
    return [sys.executable, "-m", "asv", *args, "--config", str(CONFIG)]


def same_python_env() -> dict[str, str]:
    """Benchmarks run with ``--python=same`` import ablate from the working tree (asv drops PYTHONPATH)."""
    paths = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"ASV_PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _launch(method: str | None) -> list[str]:
    return ["--launch-method", method] if method else []


def machine_command(name: str) -> Command:
    """Register this machine under ``name`` without questions (asv fills in CPU, RAM, OS)."""
    return Command(asv("machine", "--yes", "--machine", name))


def run_command(opts: Options, machine: str, commit: str, method: str | None, first: bool) -> Command:
    """The ``asv run`` of the nightly job (not ``--check``)."""
    common = ["--machine", machine, "--show-stderr", *_launch(method)]
    if opts.quick:
        common.append("--quick")
    if opts.existing:
        return Command(asv("run", "--python=same", "--set-commit-hash", commit, *common), same_python_env())
    # A machine's first run measures the newest commit only, not the whole history.
    return Command(asv("run", f"{commit}^!" if first else "NEW", *common))


def compare_command(opts: Options, machine: str, before: str, after: str) -> Command:
    """``asv compare`` of two commits' results on this machine, split into worse/better/same."""
    extra = ["--python=same"] if opts.existing else []
    return Command(asv("compare", before, after, "--factor", str(opts.threshold), "--split",
                       "--machine", machine, *extra))


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


# ------------------------------------------------------------ reading results
#: asv prints a failed benchmark as "failed" in its result column (and returns 2).
FAILED = re.compile(r"^\s*(?:\[[ \d.]+%\]\s*)?[·.]{2,}\s+\S.*\bfailed\b", re.MULTILINE)


def failed_benchmarks(output: str) -> list[str]:
    """Lines of ``asv run`` output that report a failed benchmark."""
    return [m.group(0).strip() for m in FAILED.finditer(output)]


@dataclass
class Change:
    """One row of ``asv compare``: mark (``+`` worse, ``-`` better, ``!`` newly failing), ratio, name."""

    mark: str
    before: str
    after: str
    ratio: str
    name: str

    @property
    def regression(self) -> bool:
        """Newly failing, or worse by the ratio; accuracy's ratio marks are not the rule (points are)."""
        if self.mark == "!":
            return True
        return self.mark == "+" and not ACCURACY.search(self.name)


def parse_compare(output: str) -> list[Change]:
    """The rows of an ``asv compare`` table (GitHub-style ``| ... |`` lines)."""
    changes = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] == "Change" or set(cells[0]) <= {"-", ":"} and len(cells[0]) > 1:
            continue
        changes.append(Change(*cells))
    return changes


def regressions(output: str) -> list[Change]:
    """Rows of ``asv compare`` output that are regressions (slower, more memory, newly failing)."""
    return [change for change in parse_compare(output) if change.regression]


def result_commits(results_dir: Path, machine: str, env_names: set[str] | None = None) -> dict[str, int]:
    """``{commit hash: commit date}`` of the stored results of ``machine`` (optionally of some environments)."""
    return {commit: date for commit, date, env in result_index(results_dir, machine)
            if env_names is None or env in env_names}


def result_index(results_dir: Path, machine: str) -> list[tuple[str, int, str]]:
    """``(commit hash, commit date, environment name)`` of every stored result file of ``machine``."""
    return [(data["commit_hash"], int(data.get("date") or 0), str(data.get("env_name")))
            for _, data in asv_results(results_dir, machine) if "commit_hash" in data]


def previous_commit(commits: dict[str, int], head: str, is_ancestor: Any = None) -> str | None:
    """The newest commit with results that is an ancestor of ``head`` (not ``head`` itself)."""
    is_ancestor = is_ancestor or _is_ancestor
    for commit, _ in sorted(commits.items(), key=lambda item: item[1], reverse=True):
        if commit != head and is_ancestor(commit, head):
            return commit
    return None


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def _is_ancestor(commit: str, head: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", commit, head], cwd=REPO,
                          capture_output=True, check=False).returncode == 0


def read_config() -> dict[str, Any]:
    """``asv.conf.json`` (asv allows ``//`` comment lines in it)."""
    text = "\n".join(line for line in CONFIG.read_text().splitlines() if not line.lstrip().startswith("//"))
    return json.loads(text)


def results_dir() -> Path:
    return REPO / read_config()["results_dir"]


# ------------------------------------------------------------------- running
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


def run_check(opts: Options) -> int:
    """``--check``: 0 when every selected benchmark ran (or was skipped), 2 otherwise."""
    import torch

    from ablate.suite import load_plan

    plan = load_plan(os.environ.get("ABLATE_NIGHTLY_SUITE") or str(REPO / "suites" / "nightly.toml"))
    cuda = torch.cuda.is_available()
    machine = opts.machine or machine_name(gpu=torch.cuda.get_device_name(0) if cuda else None)
    status = 0
    for command in check_commands(plan, machine, launch_method(cuda)):
        code, output = execute(command, opts.dry_run)
        failures = failed_benchmarks(output)
        if code != 0 or failures:
            print(f"asv check failed (exit {code}); failing benchmarks:", *failures, sep="\n  ", file=sys.stderr)
            status = 2
    return status


def run_nightly(opts: Options) -> int:
    """Register, run, compare with the previous results, publish."""
    gpu = gpu_name()
    machine = opts.machine or machine_name(gpu=gpu)
    head = _git("rev-parse", "HEAD")
    if opts.existing and _git("status", "--porcelain", "--untracked-files=no"):
        print("warning: the working tree has uncommitted changes; they are measured and recorded as "
              f"commit {head[:8]}", file=sys.stderr)
    before = result_commits(results_dir(), machine)
    steps = [machine_command(machine),
             run_command(opts, machine, head, launch_method(gpu is not None), first=not before)]
    status = 0
    for command in steps:
        code, output = execute(command, opts.dry_run)
        if code != 0:
            print(f"error: {command.argv[3]} exited {code}", file=sys.stderr)
            if command is steps[0]:
                return 2
            status = 2
    if opts.quick:
        return status  # asv keeps no results of a quick run: nothing to compare or publish
    # Compare like with like: the previous commit measured in the same environment(s) as this run.
    index = result_index(results_dir(), machine)
    envs = {env for commit, _, env in index if commit == head}
    previous = previous_commit(result_commits(results_dir(), machine, envs), head)
    if previous is None:
        print("no earlier results on this machine: nothing to compare yet")
    else:
        code, output = execute(compare_command(opts, machine, previous, head), opts.dry_run)
        if code != 0:
            print(f"error: asv compare exited {code}", file=sys.stderr)
            status = 2
        worse = regressions(output)
        if worse:
            print(f"\n{len(worse)} regression(s) beyond x{opts.threshold} against {previous[:8]}:", file=sys.stderr)
            for change in worse:
                print(f"  {change.mark} {change.before} -> {change.after} ({change.ratio})  {change.name}",
                      file=sys.stderr)
            status = status or 1
        drops = compare_accuracy(results_dir(), machine, previous, head, opts.accuracy_drop, envs)
        if drops:
            print(f"\n{len(drops)} accuracy drop(s) of {100 * opts.accuracy_drop:g} points or more "
                  f"against {previous[:8]}:", file=sys.stderr)
            for drop in drops:
                print(f"  {drop.before:.3f} -> {drop.after:.3f} (-{drop.points:.1f} points)  {drop.name}", file=sys.stderr)
            status = status or 1
    code, _ = execute(publish_command(), opts.dry_run)
    return status or (2 if code else 0)


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Entry point of ``ablate nightly`` (a namespace) and ``python -m ablate.nightly`` (argv)."""
    if not isinstance(args, argparse.Namespace):
        args = build_parser().parse_args(args)
    opts = Options.from_args(args)
    return run_check(opts) if opts.check else run_nightly(opts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ablate.nightly", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="CI: asv check + a quick unsaved run of every benchmark")
    mode.add_argument("--quick", action="store_true", help="run every benchmark once; nothing is saved")
    parser.add_argument("--existing", action="store_true", help="run in this Python, no rebuild (GPU box)")
    parser.add_argument("--threshold", type=float, default=1.2, help="regression factor of time and memory (default 1.2)")
    parser.add_argument("--accuracy-drop", type=fraction, default=DEFAULT_MAX_DROP,
                        help=f"regression of accuracy, absolute (default {DEFAULT_MAX_DROP}: {100 * DEFAULT_MAX_DROP:g} points)")
    parser.add_argument("--machine", default=None, help="asv machine name (default <hostname>-<gpu|cpu>)")
    parser.add_argument("--dry-run", action="store_true", help="print the asv commands without running them")
    return parser


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
