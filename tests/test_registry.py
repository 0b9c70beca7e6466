"""Registries: registration, building, and errors that suggest the nearest name."""

from __future__ import annotations

import pytest

from ablate.registry import Registry, UnknownNameError


def test_register_build_and_suggest() -> None:
    registry: Registry[object] = Registry("widget")

    @registry.register("alibi")
    class Alibi:
        def __init__(self, slope: float = 1.0) -> None:
            self.slope = slope

    assert registry.names() == ["alibi"] and "alibi" in registry and len(registry) == 1
    assert registry.build("alibi", slope=2.0).slope == 2.0
    with pytest.raises(UnknownNameError, match=r"unknown widget 'allibi'\. Did you mean 'alibi'\?"):
        registry.get("allibi")
    with pytest.raises(UnknownNameError, match="Known widgets: alibi"):
        registry.get("zzz")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("alibi")(Alibi)
