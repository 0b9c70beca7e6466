"""Facts about where a measurement ran, stored with every record as ``env.*`` columns.

Built on :mod:`ablate.core.environment` (the facts every run records); this adds what
matters for timing: the threads actually used, the CPUs this process may run
on, and the CUDA device's details when measuring on one. Nothing here raises:
a device whose facts cannot be read is named ``unavailable``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ablate.core.environment import cpu_model, device_environment, git_commit

__all__ = ["cpu_model", "environment_facts", "git_commit"]


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def environment_facts(device: str | torch.device = "cpu", *, threads: int | None = None) -> dict[str, Any]:
    """The run facts of :func:`ablate.core.environment.device_environment`, plus what timing needs.

    Args:
        device: the measured device (``cpu``, ``cuda``, ``cuda:N``; ``auto`` resolves).
        threads: the torch threads the measurement uses (default: ``torch.get_num_threads()``).

    Returns:
        Those facts (``torch``, ``python``, ``hostname``, ``cpu``, ``threads``, ``git_commit``,
        ``device``, ``device_name`` and, on CUDA, ``cuda_*``) with ``cpus`` (usable by this
        process) and ``interop_threads``.
    """
    return {**device_environment(device, threads=threads), "cpus": _usable_cpus(),
            "interop_threads": torch.get_num_interop_threads()}
