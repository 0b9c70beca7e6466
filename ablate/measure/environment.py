"""Facts about where a measurement ran, stored with every record as ``env.*`` columns.

Built on :mod:`ablate.environment` (the facts every run records); this adds what
matters for timing: the threads actually used, the CPUs this process may run
on, and the CUDA device's details when measuring on one. Nothing here raises:
a fact that cannot be read is ``None``.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import torch

from ablate.environment import cpu_model, device_facts, git_commit

__all__ = ["cpu_model", "environment_facts", "git_commit"]


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def environment_facts(device: str | torch.device = "cpu", *, threads: int | None = None) -> dict[str, Any]:
    """Versions, host, CPU, threads, git commit and (on CUDA) the GPU of a measurement.

    Args:
        device: the measured device (``cpu``, ``cuda``, ``cuda:N``; ``auto`` resolves).
        threads: the torch threads the measurement uses (default: ``torch.get_num_threads()``).

    Returns:
        ``torch``, ``python``, ``hostname``, ``cpu``, ``cpus`` (usable by this process),
        ``threads``, ``interop_threads``, ``git_commit``, ``device``, ``device_name`` and,
        on CUDA, ``cuda_version``, ``cuda_driver``, ``cuda_capability``, ``cuda_sms``,
        ``cuda_memory_bytes``.
    """
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    facts: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "hostname": _safe(socket.gethostname),
        "cpu": _safe(cpu_model),
        "cpus": _usable_cpus(),
        "threads": torch.get_num_threads() if threads is None else int(threads),
        "interop_threads": _safe(torch.get_num_interop_threads),
        "git_commit": _safe(git_commit),
    }
    try:
        facts.update(device_facts(device))
    except Exception:  # noqa: BLE001 - a missing fact never fails a measurement
        facts.update({"device": str(device), "device_name": None})
    return facts


def _safe(read: Any) -> Any:
    try:
        return read()
    except Exception:  # noqa: BLE001
        return None
