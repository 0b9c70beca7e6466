"""Tasks: a registry of :class:`~ablate.tasks.base.Task` classes and a factory.

One file per family, each registering its classes; the registry imports
every module of this package on first use, so a new task is one module:

* :mod:`~ablate.tasks.formal` — Delétang et al. (2023) formal languages:
  ``parity``, ``even_pairs``, ``modular_arithmetic``, ``cycle_navigation``,
  ``missing_duplicate``
* :mod:`~ablate.tasks.probes` — ``majority``, ``first_token``, ``sorted``, ``needle``, ``order``
* :mod:`~ablate.tasks.dyck` — ``dyck`` (one or two bracket types)
* :mod:`~ablate.tasks.sequence` — causal token-level ``copy``, ``reverse``, ``associative_recall``
* :mod:`~ablate.tasks.text` — ``text_lm``, ``text_genre`` (Shakespeare), ``text_file``, ``csv_classification``
* :mod:`~ablate.tasks.images` — ``digits`` (8x8 images as patches)

Validation and test data never occur in training: generated tasks implement
``draw`` and keep each split's own sequences by a hash of their tokens
(:mod:`~ablate.tasks.heldout`, ``docs/held-out-data.md``); corpus tasks draw each
split from its own documents.
"""

from __future__ import annotations

from ablate.tasks.base import Batch, Task
from ablate.tasks.registry import TASKS, create_task

__all__ = ["TASKS", "Batch", "Task", "create_task"]
