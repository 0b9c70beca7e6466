"""Positional encodings: a registry of :class:`PositionalEncoding` subclasses.

Importing this package registers every built-in family. Suite files refer to an
encoding by name with parameters, e.g. ``{name = "rope", scaling = "pi", factor = 4}``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ablate.encodings.base import (
    PositionalEncoding,
    ScoreMod,
    UnsupportedLengthError,
    relative_positions,
)
from ablate.registry import Registry

ENCODINGS: Registry[PositionalEncoding] = Registry("encoding")

# Families register themselves on import; keep this list in sync with the files.
from ablate.encodings import absolute, bias, rotary, randomized  # noqa: E402,F401


def split_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``"rope"`` or ``{"name": "rope", "factor": 4}`` -> ``("rope", {"factor": 4})``."""
    if isinstance(spec, str):
        return spec, {}
    params = dict(spec)
    if "name" not in params:
        raise ValueError(f"a component given as a table needs a 'name' key, got {dict(spec)!r}")
    return str(params.pop("name")), params


def create_encoding(
    spec: str | Mapping[str, Any], *, d_model: int, num_heads: int, causal: bool
) -> PositionalEncoding:
    """Build an encoding from its suite spec and the model's dimensions."""
    name, params = split_spec(spec)
    factory = ENCODINGS.get(name)
    try:
        return factory(d_model=d_model, num_heads=num_heads, causal=causal, **params)
    except TypeError as error:  # unexpected keyword from a suite file
        raise ValueError(f"encoding {name!r}: {error}") from None


__all__ = [
    "ENCODINGS",
    "PositionalEncoding",
    "ScoreMod",
    "UnsupportedLengthError",
    "create_encoding",
    "relative_positions",
    "split_spec",
]
