"""Executors: how a plan's runs are executed (``--executor local | process | ray``).

One module per executor, each registering its class in :data:`EXECUTORS`;
the registry imports them on first use. Nothing here imports Ray: the Ray
executor imports it when one is built, so ``ablate`` works without it.
"""

from ablate.run.executors.base import Executor, crashed
from ablate.run.executors.worker import execute_spec
from ablate.run.executors.registry import EXECUTORS, create_executor

__all__ = ["EXECUTORS", "Executor", "crashed", "create_executor", "execute_spec"]
