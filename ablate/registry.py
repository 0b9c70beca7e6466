"""Name -> factory registries that discover their entries, with "did you mean" errors.

Every pluggable component (encodings, poolings, tasks, executors, metrics) lives
in a :class:`Registry`. A registry that names a ``package`` imports every module
of that package the first time it is asked for a name, so adding a component is
one module holding its class and its ``register`` line: no list to keep in sync,
and no package ``__init__`` importing its own submodules. A module whose entry
needs an optional dependency (Ray) imports it only when the entry is built, so
discovery never needs it. A misspelled name gets a suggestion instead of a traceback.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


def did_you_mean(name: object, known: Iterable[str], *, n: int = 3, cutoff: float = 0.6,
                 sep: str = " or ") -> str:
    """``" Did you mean 'alibi'?"`` for the names in ``known`` closest to ``name``, or ``""``.

    The one place the package phrases a suggestion: registries, suite keys,
    suite files, task and component parameters, claim ids.
    """
    close = difflib.get_close_matches(str(name), list(known), n=n, cutoff=cutoff)
    return f" Did you mean {sep.join(repr(c) for c in close)}?" if close else ""


class UnknownNameError(ValueError):
    """A name that is not registered; the message suggests the closest ones."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        hint = did_you_mean(name, known, cutoff=0.5)
        super().__init__(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(sorted(known))}.")


class Registry(Generic[T]):
    """A mapping from names to factories (usually classes) of one kind.

    Args:
        kind: what an entry is, for messages (``"encoding"``).
        package: a package whose modules register entries when imported; they
            are all imported on the first lookup (:meth:`discover`).
    """

    def __init__(self, kind: str, *, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._entries: dict[str, Callable[..., T]] = {}
        self._discovered = package is None

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@REGISTRY.register("alibi")`` above a class or function."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return decorate

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a throwaway entry clean up with this)."""
        self._entries.pop(name, None)

    def discover(self) -> None:
        """Import every module of ``package`` once, so their ``register`` lines run."""
        if self._discovered:
            return
        self._discovered = True  # first: a module imported below may look names up
        package = importlib.import_module(str(self.package))
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``; raises :class:`UnknownNameError`."""
        self.discover()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.kind, name, self.names()) from None

    def build(self, name: str, /, **kwargs: Any) -> T:
        """Instantiate ``name`` with keyword arguments."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        """Registered names in registration order (modules are discovered in name order)."""
        self.discover()
        return list(self._entries)

    def items(self) -> list[tuple[str, Callable[..., T]]]:
        """``(name, factory)`` of every entry."""
        self.discover()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def split_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A component as a suite gives it -> ``(name, params)``.

    ``"rope"`` -> ``("rope", {})``; ``{"name": "rope", "factor": 4}`` -> ``("rope", {"factor": 4})``.
    """
    if isinstance(spec, str):
        return spec, {}
    params = dict(spec)
    if "name" not in params:
        raise ValueError(f"a component given as a table needs a 'name' key, got {dict(spec)!r}")
    return str(params.pop("name")), params
