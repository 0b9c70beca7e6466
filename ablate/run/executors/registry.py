"""The executor registry (``--executor``): every module of :mod:`ablate.run.executors` registers its own.

Modules are imported on first use; the Ray executor's module imports Ray only
when a :class:`~ablate.run.executors.ray_executor.RayExecutor` is built, so listing
executors never needs Ray.
"""

from __future__ import annotations

from typing import Any

from ablate.run.executors.base import Executor
from ablate.core.registry import Registry

EXECUTORS: Registry[Executor] = Registry("executor", package="ablate.run.executors", base=Executor, parameter="option")


def create_executor(name: str, **options: Any) -> Executor:
    """An executor by name; an option it does not take is a ``ValueError`` naming the ones it does."""
    return EXECUTORS.build({"name": name, **options})
