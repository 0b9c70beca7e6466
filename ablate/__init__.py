"""ablate: a benchmark and ablation harness for positional encodings and pooling.

The package has one sub-package per layer of docs/architecture.md. Module paths
that users and the README relied on before that layout (:data:`ALIASES`) still
import: ``import ablate.stats`` gives the very module object
``ablate.analysis.stats``, not a copy. The package root itself imports nothing
heavy (no torch, no pandas): it runs before every submodule import.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

__version__ = "0.1.0"

#: Earlier public module paths -> where they live now. A submodule follows its
#: package: ``ablate.stats.verdict`` is ``ablate.analysis.stats.verdict``.
ALIASES: dict[str, str] = {
    "ablate.stats": "ablate.analysis.stats",
    "ablate.plots": "ablate.analysis.plots",
    "ablate.report": "ablate.analysis.report",
    "ablate.store": "ablate.results.store",
    "ablate.encodings": "ablate.model.encodings",
    "ablate.pooling": "ablate.model.pooling",
    "ablate.metrics": "ablate.core.metrics",
    "ablate.registry": "ablate.core.registry",
}


def aliased(name: str) -> str | None:
    """The module path now behind the earlier path ``name``, or None if ``name`` is no alias."""
    for old, new in ALIASES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an alias as the module it names: the same object, under both names in ``sys.modules``."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        # Ahead of the path finder: a submodule of an alias found on disk would otherwise load a second copy.
        return importlib.machinery.ModuleSpec(fullname, self) if aliased(fullname) else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(aliased(spec.name))
        spec.loader_state = module.__spec__  # the import system overwrites __spec__ next; exec_module puts it back
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())


def load_results(path):  # noqa: ANN001, ANN201 - thin re-export, typed in ablate.results.store
    """Load stored results as one tidy DataFrame; see :func:`ablate.results.store.load_results`.

    Imported on call: the package root stays free of torch and pandas
    (``import ablate.core.errors`` costs nothing else).
    """
    from ablate.results.store import load_results as _load

    return _load(path)


def load_curves(path):  # noqa: ANN001, ANN201 - thin re-export, typed in ablate.results.store
    """Every run's learning curve (step, train loss, validation metric).

    See :func:`ablate.results.store.load_curves`.
    """
    from ablate.results.store import load_curves as _load

    return _load(path)
