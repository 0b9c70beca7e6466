"""The run layer: the runner and its executors (whose worker is a run's one entry point), adaptive
seeds, progress and evaluation-only variants; below them training (:mod:`~ablate.run.train`, a
sibling of :mod:`ablate.measure`) and the parts both use: the train step, the criterion, checkpoints.

Imports nothing itself: measurement imports ``ablate.run.step``, which runs this file first.
"""
