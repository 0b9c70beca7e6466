"""Trained weights kept per run: ``results/<suite>/checkpoints/<run_id>.pt``.

A train run's worker serialises its model (:func:`serialize`) into the record;
the driver writes it here (:func:`write`, atomically) *before* it stores the
record, so a run stored as ``ok`` always has its checkpoint unless the user
removed it (``ablate clean``). Evaluation-only variants (:mod:`ablate.run.variants`)
load these instead of retraining. A checkpoint that is missing or fails to load
raises :class:`~ablate.core.errors.CheckpointError`; nothing is ever retrained silently.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from ablate.core.errors import CheckpointError


#: Folder of a suite's results that holds the checkpoints.
DIRECTORY = "checkpoints"
#: Version of the checkpoint payload (``{"format", "run_id", "config", "state_dict"}``).
FORMAT = 1


def serialize(model: torch.nn.Module, run_id: str | None, config: dict[str, Any]) -> bytes:
    """The model's weights (on CPU) and its resolved run config, as bytes for the driver to write."""
    state = {name: tensor.detach().to("cpu") for name, tensor in model.state_dict().items()}  # saved at once: no copy needed
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "run_id": run_id, "config": config, "state_dict": state}, buffer)
    return buffer.getvalue()


def path_of(results_dir: str | Path, run_id: str) -> Path:
    """Where ``run_id``'s checkpoint lives under a suite's results folder."""
    return Path(results_dir) / DIRECTORY / f"{run_id}.pt"


def write(results_dir: str | Path, run_id: str, payload: bytes) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, rename, fsync of the folder)."""
    target = path_of(results_dir, run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power loss
    finally:
        os.close(folder)
    return target


def missing_error(results_dir: str | Path, run_id: str) -> CheckpointError:
    """The error for a stored run without its checkpoint file, saying how to retrain it."""
    return CheckpointError(
        f"run {run_id} has no checkpoint at {path_of(results_dir, run_id)} (it finished before checkpoints were "
        f"kept, or `ablate clean` removed it); to retrain it run `ablate clean {Path(results_dir)} --retrain-missing` "
        "and then `ablate run` again"
    )


def load(results_dir: str | Path, run_id: str) -> dict[str, Any]:
    """The stored payload of ``run_id``; raises :class:`CheckpointError` saying what to do."""
    path = path_of(results_dir, run_id)
    if not path.is_file():
        raise missing_error(results_dir, run_id)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT or "state_dict" not in payload:
            raise ValueError(f"not an ablate checkpoint of format {FORMAT}")
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded ({type(error).__name__}: {error}); "
            f"run `ablate clean {Path(results_dir)} --retrain-missing` to retrain that run"
        ) from None
    return payload


def stored(results_dir: str | Path) -> set[str]:
    """Run ids that have a checkpoint file."""
    folder = Path(results_dir) / DIRECTORY
    return {p.stem for p in folder.glob("*.pt")} if folder.is_dir() else set()


def delete(results_dir: str | Path, run_ids: set[str] | None = None) -> list[Path]:
    """Delete the checkpoints of ``run_ids`` (all when ``None``); returns the deleted paths."""
    targets = sorted(stored(results_dir) if run_ids is None else stored(results_dir) & set(run_ids))
    deleted = []
    for run_id in targets:
        path = path_of(results_dir, run_id)
        path.unlink(missing_ok=True)
        deleted.append(path)
    return deleted
