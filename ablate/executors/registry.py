"""The executor registry (``--executor``): every module of :mod:`ablate.executors` registers its own.

Modules are imported on first use; the Ray executor's module imports Ray only
when a :class:`~ablate.executors.ray_executor.RayExecutor` is built, so listing
executors never needs Ray.
"""

from __future__ import annotations

import inspect
from typing import Any

from ablate.executors.base import Executor
from ablate.registry import Registry, did_you_mean

EXECUTORS: Registry[Executor] = Registry("executor", package="ablate.executors")


def create_executor(name: str, **options: Any) -> Executor:
    """An executor by name; an option it does not take is a ``ValueError`` naming the ones it does."""
    factory = EXECUTORS.get(name)
    accepted = [p for p in inspect.signature(factory).parameters if p != "self"]
    for key in options:
        if key not in accepted:
            raise ValueError(f"executor {name!r} has no option {key!r}.{did_you_mean(key, accepted, n=2)} "
                             f"Its options: {', '.join(accepted)}.")
    return factory(**options)
