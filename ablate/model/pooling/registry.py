"""The pooling registry: every module of :mod:`ablate.model.pooling` that registers a class is found on first use.

Names combine with ``+``: ``"mean+max"`` concatenates both (:class:`ConcatPooling`).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ablate.model.pooling.base import Pooling
from ablate.core.registry import Registry, split_spec

POOLINGS: Registry[Pooling] = Registry("pooling", package="ablate.model.pooling", base=Pooling)


class ConcatPooling(Pooling):
    """Several poolings side by side (``"mean+max"``)."""

    def __init__(self, parts: list[Pooling]) -> None:
        super().__init__(d_model=parts[0].d_model)
        if any(p.token_level for p in parts):
            raise ValueError("pooling 'none' (token-level) cannot be combined with other poolings")
        self.parts = nn.ModuleList(parts)
        self.prepends_cls = any(p.prepends_cls for p in parts)
        self.symmetric = all(p.symmetric for p in parts)

    def out_dim(self) -> int:
        return sum(p.out_dim() for p in self.parts)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([p(h, mask) for p in self.parts], dim=-1)


def create_pooling(spec: str | Mapping[str, Any], *, d_model: int, num_heads: int = 4) -> Pooling:
    """Build a pooling from ``"mean"``, ``"mean+max"`` or ``{name = "attention", num_queries = 2}``."""
    name, params = split_spec(spec)
    parts = [POOLINGS.build({"name": part, **params}, d_model=d_model, num_heads=num_heads)
             for part in pooling_names(name)]
    return parts[0] if len(parts) == 1 else ConcatPooling(parts)


def pooling_names(spec: str | Mapping[str, Any]) -> list[str]:
    """The registered poolings a spec names: ``"mean+max"`` -> ``["mean", "max"]``."""
    return [part.strip() for part in split_spec(spec)[0].split("+")]


def pooling_classes(spec: str | Mapping[str, Any]) -> list[type[Pooling]]:
    """The classes of the poolings a spec names (their traits: ``token_level``, ``symmetric``, ...)."""
    return [POOLINGS.get(name) for name in pooling_names(spec)]  # type: ignore[misc]


def pooling_is_token_level(spec: str | Mapping[str, Any]) -> bool:
    """Whether ``spec`` names a token-level pooling (its class says so: ``token_level``)."""
    return any(cls.token_level for cls in pooling_classes(spec))


