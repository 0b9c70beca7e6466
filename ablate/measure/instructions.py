"""Instruction counts of a step under callgrind: a deterministic cost figure where wall time is noise.

The step runs in a separate Python process under valgrind's callgrind tool and
the instructions it executes (``Ir``) are counted, with torch's callgrind
bindings (``torch._C._valgrind_toggle`` / ``_valgrind_toggle_and_dump_stats``,
what :meth:`torch.utils.benchmark.Timer.collect_callgrind` drives) switching the
count on around each call only. A count does not move with the load of the
machine, its frequency or its neighbours: two runs of the same step give
(nearly) the same number, so a ratio of counts repeats where a ratio of wall
times does not. What it does not see: memory stalls, cache misses, vector width
- a count is a proxy for CPU time that ranks kernels of one library on one CPU,
not a time.

All configurations of a length are counted in one valgrind process (importing
torch under valgrind takes minutes; once is enough), in interleaved rounds like
the timed protocol: round ``r`` counts one call of each configuration in turn.
The process builds the same :class:`~ablate.measure.workload.Workload` from the
picklable :class:`~ablate.measure.workload.WorkloadSpec` (it imports this
checkout's ``ablate``) and warms each up first. One thread always: threads that
spin while waiting for work would count instructions that do none. Each dump's
total is read from callgrind's own output file (its ``totals:`` line), so no
``callgrind_annotate`` run is needed. Needs ``valgrind`` (Debian/Ubuntu:
``apt-get install valgrind``), under which a step runs hundreds of times slower.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import ablate
from ablate.measure.workload import WorkloadSpec

#: What runs under valgrind: builds the workloads, warms them up, counts ``rounds`` rounds of one call each.
CHILD = """\
import json, os, subprocess, sys
import torch
torch.set_num_threads(1)
if hasattr(torch._C, "_valgrind_toggle"):
    bindings = torch._C
else:  # a torch built without the bindings: torch compiles them (as Timer.collect_callgrind does)
    from torch.utils.benchmark.utils.valgrind_wrapper import cpp_jit
    bindings = cpp_jit.get_compat_bindings()
from ablate.measure.workload import Workload, WorkloadSpec
specs = json.loads(open(sys.argv[1]).read())
steps = [Workload(WorkloadSpec(**spec)).step for spec in specs]
for step in steps:
    step()
# Instrument from here on only: running the imports and builds uninstrumented is ~10x faster.
subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True, capture_output=True)
for step in steps:
    step()
for _ in range(int(sys.argv[2])):
    for step in steps:
        bindings._valgrind_toggle()
        step()
        bindings._valgrind_toggle_and_dump_stats()
"""
TOTALS = re.compile(r"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


class InstructionsUnavailable(RuntimeError):
    """valgrind is missing, or callgrind failed to count."""


def available() -> bool:
    """Whether valgrind is on the ``PATH``."""
    return shutil.which("valgrind") is not None


def instruction_rounds(specs: Sequence[WorkloadSpec], *, rounds: int, timeout: float = 3600.0) -> list[list[float]]:
    """Instructions of one call of each spec's step, in ``rounds`` interleaved rounds: ``[config][round]``.

    Args:
        specs: the steps to count, all on the CPU (callgrind sees host code only).
        rounds: calls counted per step, one per round.
        timeout: seconds before the valgrind process is stopped.

    Raises:
        InstructionsUnavailable: valgrind is missing, failed or timed out.
        ValueError: no specs, ``rounds < 1``, or a spec on another device than the CPU.
    """
    if not specs or rounds < 1:
        raise ValueError(f"instruction_rounds needs workloads and rounds >= 1, got {len(specs)} and {rounds}")
    for spec in specs:
        if not spec.device.startswith("cpu"):
            raise ValueError(f"instruction counts see host code only; measure on the CPU, not {spec.device!r}")
    if not available():
        raise InstructionsUnavailable("instruction counts need valgrind on the PATH; install it (Debian/Ubuntu: "
                                      "apt-get install valgrind) or use [measure] protocol = 'rounds'")
    with tempfile.TemporaryDirectory(prefix="ablate-callgrind-") as folder:
        work = Path(folder)
        (work / "child.py").write_text(CHILD)
        (work / "specs.json").write_text(json.dumps([dataclasses.asdict(spec) for spec in specs]))
        out = work / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
                   "--instr-atstart=no", sys.executable, str(work / "child.py"), str(work / "specs.json"), str(rounds)]
        root = str(Path(ablate.__file__).resolve().parents[1])  # the counted process imports this checkout's ablate
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [root, os.environ.get("PYTHONPATH")] if p)}
        try:
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InstructionsUnavailable(f"callgrind did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            raise InstructionsUnavailable(f"callgrind failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
        counts = dump_totals(work, out.name)
    expected = rounds * len(specs)
    if len(counts) != expected:
        raise InstructionsUnavailable(f"callgrind wrote {len(counts)} counts, expected {expected}")
    return [counts[k::len(specs)] for k in range(len(specs))]


def dump_totals(folder: Path, stem: str) -> list[float]:
    """The instruction total of every numbered dump ``<stem>.<n>`` in ``folder``, in dump order."""
    dumps = sorted(folder.glob(f"{stem}.*"), key=lambda path: int(path.suffix[1:]) if path.suffix[1:].isdigit() else -1)
    totals = []
    for path in dumps:
        if not path.suffix[1:].isdigit():
            continue
        match = TOTALS.search(path.read_text(errors="replace"))
        if match is None:
            raise InstructionsUnavailable(f"{path.name}: no totals line in callgrind's output")
        totals.append(float(match.group(1)))
    return totals
