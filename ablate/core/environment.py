"""The environment a run executed in, recorded with every result (``env.*`` columns)."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch

import ablate
from ablate.core import fingerprint


@functools.cache
def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def git_commit() -> str | None:
    """The commit of the ablate checkout (``+dirty`` with local changes), or None outside git."""
    root = Path(ablate.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_facts(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Name and comparable facts of ``device`` (GPU model, capability, SMs, memory, CUDA version)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return {"device": "cpu", "device_name": cpu_model()}
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "device": f"cuda:{index}",
        "device_name": props.name,
        "cuda_capability": f"{props.major}.{props.minor}",
        "cuda_sms": props.multi_processor_count,
        "cuda_memory_bytes": props.total_memory,
        "cuda_version": torch.version.cuda,
        "cuda_driver": _nvidia_driver(),
    }


@functools.cache
def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def device_environment(device: str | torch.device = "cpu", *, threads: int | None = None) -> dict[str, Any]:
    """Facts of where work on ``device`` runs (``auto`` resolves): versions, host, CPU, threads, commit,
    code fingerprint (:mod:`ablate.core.fingerprint`), device.

    Never raises: a device whose facts cannot be read is named ``unavailable``.
    """
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    facts = {
        "ablate_version": ablate.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads() if threads is None else int(threads),
        "git_commit": git_commit(),
        "fingerprint": fingerprint.current(),
    }
    try:
        facts.update(device_facts(device))
    except Exception:  # noqa: BLE001 - a missing fact never fails a run or a measurement
        facts.update({"device": str(device), "device_name": "unavailable"})
    return facts


def environment(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts recorded with a run: :func:`device_environment` of the device its config names."""
    config = config or {}
    device = (config.get("train") or {}).get("device") or (config.get("measure") or {}).get("device") or "cpu"
    return device_environment(device)
