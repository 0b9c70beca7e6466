"""Which results compare: a machine named by what decides its timings, and an asv environment named stably.

A hosted CI runner gets a new hostname every job, so a name built from the
hostname registers a new machine every night and nothing ever compares. The
machine is named by its *class* instead - CPU model, usable cores, memory class,
GPU model and torch build - so two jobs on two runners of the same class share a
history, and two CPU models never do. ``--machine NAME`` or ``$ABLATE_MACHINE``
overrides the name (a dedicated box with a name of its own).

asv names an existing-Python environment after the interpreter's path, and a
hosted runner's Python lives under its patch version
(``/opt/hostedtoolcache/Python/3.11.9/...``): a patch update would start a new
history. The benchmarks therefore run through a small launcher at a path that
names only the major and minor version (:func:`stable_python`).
"""

from __future__ import annotations

import getpass
import math
import os
import re
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

import ablate.core.environment

#: Overrides the machine name (as ``--machine`` does).
MACHINE_VARIABLE = "ABLATE_MACHINE"
#: Words of CPU model names that do not tell two CPUs apart.
CPU_NOISE = re.compile(r"\((?:R|TM|tm|r)\)|\b(?:CPU|Processor|with Radeon Graphics)\b")


def slug(text: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class MachineClass:
    """What decides a machine's timings; two machines of one class share a benchmark history.

    Attributes:
        cpu: the CPU model name.
        cores: logical CPUs this process may use.
        memory_gib: total memory rounded to a power of two (a 15.6 GiB runner is a 16 GiB one).
        gpu: the first CUDA device's name, or None.
        torch: the torch build (``torch.__version__``, e.g. ``2.13.0+cpu``).
    """

    cpu: str
    cores: int
    memory_gib: int
    gpu: str | None
    torch: str

    def name(self) -> str:
        """A readable asv machine name, e.g. ``amd-epyc-7763-64-core-4cpu-16gib-cpu-torch-2-13-0-cpu``."""
        cpu = slug(CPU_NOISE.sub(" ", self.cpu)) or "cpu"
        device = slug(self.gpu) if self.gpu else "cpu"
        return f"{cpu}-{self.cores}cpu-{self.memory_gib}gib-{device}-torch-{slug(self.torch)}"


def memory_class(total_bytes: float) -> int:
    """Total memory in GiB rounded to the nearest power of two (0 when unknown)."""
    if total_bytes <= 0:
        return 0
    return 2 ** round(math.log2(total_bytes / 2**30)) if total_bytes >= 2**29 else 1


def total_memory() -> int:
    """Physical memory in bytes (0 where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 0


def usable_cores() -> int:
    """Logical CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def this_machine() -> MachineClass:
    """The class of the machine this runs on."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return MachineClass(ablate.core.environment.cpu_model(), usable_cores(), memory_class(total_memory()), gpu,
                        torch.__version__)


def machine_name(override: str | None = None, *, environ: Mapping[str, str] | None = None,
                 machine: MachineClass | None = None) -> str:
    """The asv machine name: ``override`` (``--machine``), else ``$ABLATE_MACHINE``, else the machine's class."""
    environ = os.environ if environ is None else environ
    chosen = override or environ.get(MACHINE_VARIABLE)
    if chosen:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", chosen):
            raise ValueError(f"machine name {chosen!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
        return chosen
    return (machine or this_machine()).name()


def launcher_path(version: tuple[int, int] | None = None) -> Path:
    """Where :func:`stable_python` puts its launcher: a path naming the major.minor version only."""
    major, minor = version or sys.version_info[:2]
    root = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    return root / f"ablate-asv-{slug(getpass.getuser()) or 'user'}" / f"python{major}.{minor}"


def stable_python(executable: str | None = None) -> str:
    """A launcher of ``executable`` (default this Python) at :func:`launcher_path`; its path for ``--python``.

    asv's environment name is then ``existing-py_tmp_ablate-asv-<user>_python3.11`` on every
    runner, whatever the interpreter's own path and patch version. Where no launcher can be
    written (no POSIX shell), the interpreter's own path is returned.
    """
    executable = executable or sys.executable
    if os.name != "posix":
        return executable
    path = launcher_path()
    text = f'#!/bin/sh\nexec "{executable}" "$@"\n'
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError:
        return executable
    return str(path)
