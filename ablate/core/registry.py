"""Name -> factory registries that discover their entries, with "did you mean" errors.

Every pluggable component (encodings, poolings, tasks, executors, metrics) lives
in a :class:`Registry`. A registry that names a ``package`` imports every module
of that package the first time it is asked for a name, so adding a component is
one module holding its class and its ``register`` line: no list to keep in sync,
and no package ``__init__`` importing its own submodules. A module whose entry
needs an optional dependency (Ray) imports it only when the entry is built, so
discovery never needs it. A misspelled name or parameter gets a suggestion instead
of a traceback: :meth:`Registry.build` and :meth:`Registry.check` validate a
component's parameters against its constructor, the same way for every registry, and
registration checks that an entry is a subclass of the registry's base class.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
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
        base: the class every entry must subclass (checked on registration).
        parameter: what a constructor argument is called in messages (``"option"``
            for executors).
    """

    def __init__(self, kind: str, *, package: str | None = None, base: type | None = None,
                 parameter: str = "parameter") -> None:
        self.kind = kind
        self.package = package
        self.base = base
        self.parameter = parameter
        self._entries: dict[str, Callable[..., T]] = {}
        self._discovered = package is None

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@REGISTRY.register("alibi")`` above a class or function."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if self.base is not None and not (isinstance(factory, type) and issubclass(factory, self.base)):
                raise TypeError(f"{self.kind} {name!r}: {factory!r} is not a subclass of {self.base.__name__}")
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

    def build(self, spec: Any, /, **supplied: Any) -> T:
        """Build a component from its spec, ``"rope"`` or ``{"name": "rope", **params}``.

        ``supplied`` are the arguments the harness passes itself (``d_model``, ...); the
        spec's parameters are checked first (:meth:`check`), so an unknown or missing one
        is a ``ValueError`` naming what the constructor takes.
        """
        name, params = split_spec(spec)
        factory = self.check(spec, supplied=supplied)
        try:
            inspect.signature(factory).bind(**supplied, **params)
        except TypeError as error:  # a required parameter is missing
            raise ValueError(f"{self.kind} {name!r}: {error}") from None
        except ValueError:  # no signature to read (a builtin): the call itself checks
            pass
        return factory(**supplied, **params)

    def check(self, spec: Any, *, supplied: Iterable[str] = ()) -> Callable[..., T]:
        """The factory of ``spec`` once its name and parameters are known to it, without building it.

        Raises:
            UnknownNameError: an unregistered name (with the nearest ones).
            ValueError: a parameter the constructor does not take (with the nearest
                ones and the list of those it does); ``supplied`` names are the harness's.
        """
        name, params = split_spec(spec)
        factory = self.get(name)
        accepted = self.parameters(name, supplied=supplied)
        for key in params:
            if accepted is not None and key not in accepted:
                raise ValueError(f"{self.kind} {name!r} has no {self.parameter} {key!r}."
                                 f"{did_you_mean(key, accepted, n=2)} "
                                 f"Its {self.parameter}s: {', '.join(accepted) or 'none'}.")
        return factory

    def parameters(self, name: str, *, supplied: Iterable[str] = ()) -> list[str] | None:
        """The keyword parameters ``name``'s constructor takes besides ``supplied`` (``None``: any, ``**kwargs``)."""
        try:
            signature = inspect.signature(self.get(name))
        except ValueError:  # no signature to read
            return None
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
            return None
        skip = {"self", *supplied}
        return [p for p in signature.parameters if p not in skip]

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


def split_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """A component as a suite gives it -> ``(name, params)``.

    ``"rope"`` -> ``("rope", {})``; ``{"name": "rope", "factor": 4}`` -> ``("rope", {"factor": 4})``;
    a typed spec (an object with ``name`` and ``params``) -> its two parts.
    """
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        params = dict(spec)
        if "name" not in params:
            raise ValueError(f"a component given as a table needs a 'name' key, got {params!r}")
        return str(params.pop("name")), params
    name, params = getattr(spec, "name", None), getattr(spec, "params", None)
    if isinstance(name, str) and isinstance(params, Mapping):
        return name, dict(params)
    raise ValueError(f"a component is a name or a table with a 'name' key, got {spec!r}")
