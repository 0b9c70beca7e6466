"""Checking registered components named in a suite (name and parameters) without building them."""

from __future__ import annotations

from typing import Any

from ablate.core.registry import Registry, split_spec

#: Constructor arguments the harness supplies itself; a suite must not set them.
SUPPLIED = {"d_model", "num_heads", "causal", "self"}


def normalize(spec: Any) -> dict[str, Any]:
    """``"rope"`` -> ``{"name": "rope"}``; tables (and typed specs) are copied with ``name`` first, then sorted."""
    name, params = split_spec(spec)
    return {"name": name, **dict(sorted(params.items()))}


def label(spec: Any) -> str:
    """Short display label: ``rope`` or ``rope[factor=4,scaling=pi]``."""
    spec = normalize(spec)
    params = {k: v for k, v in spec.items() if k != "name"}
    if not params:
        return str(spec["name"])
    inner = ",".join(f"{k}={label(v) if isinstance(v, dict) else v}" for k, v in params.items())
    return f"{spec['name']}[{inner}]"


def check_component(registry: Registry[Any], spec: Any, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` if the name or a parameter is unknown (:meth:`Registry.check`)."""
    try:
        spec = normalize(spec)
        params = {k: v for k, v in spec.items() if k != "name"}
        names = str(spec["name"]).split("+") if registry.kind == "pooling" else [str(spec["name"])]
        factories = [registry.check({"name": name.strip(), **params}, supplied=SUPPLIED) for name in names]
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    for factory in factories:  # a parameter that is itself a component of this registry (a wrapper's base)
        for key in getattr(factory, "component_parameters", ()):
            if key in params:
                check_component(registry, params[key], f"{where}.{key}")
