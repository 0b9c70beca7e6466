"""The encoding registry: every module of :mod:`ablate.model.encodings` that registers a class is found on first use."""

from __future__ import annotations

from typing import Any, Mapping

from ablate.model.encodings.base import PositionalEncoding
from ablate.core.registry import Registry

ENCODINGS: Registry[PositionalEncoding] = Registry("encoding", package="ablate.model.encodings",
                                                   base=PositionalEncoding)

#: What every encoding class says about itself in its ``family`` attribute (see ``PositionalEncoding.family``).
FAMILIES = ("none", "absolute", "rotary", "bias", "query-bias", "wrapper")


def create_encoding(
    spec: str | Mapping[str, Any], *, d_model: int, num_heads: int, causal: bool
) -> PositionalEncoding:
    """Build an encoding from its suite spec (``"rope"`` or ``{"name": "rope", ...}``) and the model's dimensions."""
    return ENCODINGS.build(spec, d_model=d_model, num_heads=num_heads, causal=causal)


def encodings_of_family(*families: str) -> list[str]:
    """Registered encoding names whose class's ``family`` is one of ``families`` (registration order)."""
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown encoding family {sorted(unknown)}; families: {', '.join(FAMILIES)}")
    return [name for name, cls in ENCODINGS.items() if getattr(cls, "family", None) in families]
