"""The task registry: every module of :mod:`ablate.tasks` that registers a class is found on first use."""

from __future__ import annotations

import inspect
from typing import Any

from ablate.registry import Registry, did_you_mean
from ablate.tasks.base import Task

TASKS: Registry[Task] = Registry("task", package="ablate.tasks")


def create_task(spec: str | dict[str, Any]) -> Task:
    """Build a task from ``"parity"`` or ``{"name": "parity", "vocab": 2}``.

    Raises:
        ValueError: unknown name (with the nearest names), a missing ``name``,
            or a parameter the task does not take (naming the ones it does).
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a task is a name or a table with a 'name' key, got {spec!r}")
    name = spec["name"]
    factory = TASKS.get(name)
    params = {k: v for k, v in spec.items() if k != "name"}
    accepted = [p for p in inspect.signature(factory).parameters if p != "self"]
    for key in params:
        if key not in accepted:
            raise ValueError(f"task {name!r} has no parameter {key!r}.{did_you_mean(key, accepted, n=2)} "
                             f"Its parameters: {', '.join(accepted) or 'none'}.")
    return factory(**params)
