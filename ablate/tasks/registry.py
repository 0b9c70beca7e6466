"""The task registry: every module of :mod:`ablate.tasks` that registers a class is found on first use."""

from __future__ import annotations

from typing import Any

from ablate.core.registry import Registry
from ablate.tasks.base import Task

TASKS: Registry[Task] = Registry("task", package="ablate.tasks", base=Task)


def create_task(spec: str | dict[str, Any]) -> Task:
    """Build a task from ``"parity"`` or ``{"name": "parity", "vocab": 2}``.

    Raises:
        ValueError: unknown name (with the nearest names), a missing ``name``,
            or a parameter the task does not take (naming the ones it does).
    """
    return TASKS.build(spec)
