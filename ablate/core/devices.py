"""Devices, dtypes and out-of-memory errors: the one place training, measurement and asv resolve them."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from ablate.core.errors import UnsupportedRun

#: Suite dtype names; ``bfloat16``/``float16`` run under autocast with float32 parameters.
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_device_name(name: str) -> str:
    """``name`` if it names a device (``cpu``, ``cuda``, ``cuda:N``, ``auto``), else ``ValueError``.

    Only the spelling: whether this machine has it is :func:`resolve_device`'s question.
    """
    if name in ("cpu", "cuda", "auto") or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {name!r}")


def check_dtype(device: torch.device, dtype: str) -> None:
    """``UnsupportedRun`` for float16 off CUDA (CPU float16 kernels are slow fallbacks nobody trains with)."""
    if dtype == "float16" and device.type != "cuda":
        raise UnsupportedRun("float16 is only supported (trained and measured) on CUDA; use bfloat16 on the CPU")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU.

    Raises:
        UnsupportedRun: a CUDA device on a machine without it (the run is ``unsupported``).
        ValueError: not a device name.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(check_device_name(str(device)))
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UnsupportedRun(f"device {str(device)!r} requested but CUDA is not available on this machine")
        index = resolved.index if resolved.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise UnsupportedRun(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    return resolved


def autocast(device: torch.device, dtype: str) -> AbstractContextManager[Any]:
    """Mixed precision as training uses it (parameters stay float32); nothing for float32.

    Raises:
        UnsupportedRun: float16 off CUDA (:func:`check_dtype`).
    """
    check_dtype(device, dtype)
    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def is_oom(error: BaseException) -> bool:
    """Whether ``error`` says memory ran out (CUDA caching allocator, CPU allocator, Python)."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(
        phrase in text for phrase in ("out of memory", "can't allocate memory", "cannot allocate memory",
                                      "could not allocate", "failed to allocate"))
