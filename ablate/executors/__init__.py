"""Executors that need optional dependencies, imported only when asked for.

``ablate.runner.create_executor("ray")`` imports :mod:`ablate.executors.ray_executor`,
which registers ``"ray"`` in :data:`ablate.runner.EXECUTORS`. Nothing here imports
Ray at package import time, so ``ablate`` works without it.
"""
