"""Checking registered components named in a suite (name and parameters) without building them."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ablate.registry import Registry, UnknownNameError, did_you_mean

#: Constructor arguments the harness supplies itself; a suite must not set them.
SUPPLIED = {"d_model", "num_heads", "causal", "self"}


def normalize(spec: Any) -> dict[str, Any]:
    """``"rope"`` -> ``{"name": "rope"}``; tables are copied with ``name`` first."""
    if isinstance(spec, str):
        return {"name": spec}
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(f"a component table needs a 'name' key, got {spec!r}")
        return {"name": spec["name"], **{k: v for k, v in sorted(spec.items()) if k != "name"}}
    raise ValueError(f"expected a name or a table with 'name', got {spec!r}")


def label(spec: Any) -> str:
    """Short display label: ``rope`` or ``rope[factor=4,scaling=pi]``."""
    spec = normalize(spec)
    params = {k: v for k, v in spec.items() if k != "name"}
    if not params:
        return str(spec["name"])
    inner = ",".join(f"{k}={label(v) if isinstance(v, dict) else v}" for k, v in params.items())
    return f"{spec['name']}[{inner}]"


def accepted_parameters(factory: Callable[..., Any]) -> list[str] | None:
    """Keyword parameters ``factory`` accepts, or ``None`` if it takes ``**kwargs``."""
    signature = inspect.signature(factory)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return [name for name in signature.parameters if name not in SUPPLIED]


def check_component(registry: Registry[Any], spec: Any, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` if the name or a parameter is unknown."""
    try:
        spec = normalize(spec)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    names = str(spec["name"]).split("+") if registry.kind == "pooling" else [str(spec["name"])]
    for name in names:
        try:
            factory = registry.get(name.strip())
        except UnknownNameError as error:
            raise ValueError(f"{where}: {error}") from None
        accepted = accepted_parameters(factory)
        if accepted is None:
            continue
        for param in spec:
            if param != "name" and param not in accepted:
                hint = did_you_mean(param, accepted, n=2)
                raise ValueError(
                    f"{where}: {registry.kind} {name!r} has no parameter {param!r}.{hint} "
                    f"Its parameters: {', '.join(accepted) or 'none'}."
                )
    if registry.kind == "encoding" and spec["name"] == "randomized" and "base" in spec:
        check_component(registry, spec["base"], f"{where}.base")
