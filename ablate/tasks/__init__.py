"""Tasks: a registry of :class:`~ablate.tasks.base.Task` classes and a factory.

One file per family; importing this package registers them all:

* :mod:`~ablate.tasks.formal` — Delétang et al. (2023) formal languages:
  ``parity``, ``even_pairs``, ``modular_arithmetic``, ``cycle_navigation``,
  ``missing_duplicate``
* :mod:`~ablate.tasks.probes` — ``majority``, ``first_token``, ``sorted``, ``needle``, ``order``
* :mod:`~ablate.tasks.dyck` — ``dyck`` (one or two bracket types)
* :mod:`~ablate.tasks.sequence` — causal token-level ``copy``, ``reverse``, ``associative_recall``
* :mod:`~ablate.tasks.text` — ``text_lm``, ``text_genre`` (Shakespeare), ``text_file``, ``csv_classification``
* :mod:`~ablate.tasks.images` — ``digits`` (8x8 images as patches)
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from ablate.registry import Registry
from ablate.tasks.base import Batch, Task

TASKS: Registry[Task] = Registry("task")


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
            close = difflib.get_close_matches(key, accepted, n=2, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"task {name!r} has no parameter {key!r}.{hint} "
                             f"Its parameters: {', '.join(accepted) or 'none'}.")
    return factory(**params)


# Imported for their registrations; after TASKS exists, since each imports it.
from ablate.tasks import formal, probes, dyck, sequence, text, images  # noqa: E402,F401

__all__ = ["TASKS", "Batch", "Task", "create_task"]
