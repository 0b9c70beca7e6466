"""Pooling: a variable-length sequence of vectors -> one vector, correct under padding.

Every pooling takes hidden states ``h`` of shape ``(B, L, D)`` and a padding mask
``(B, L)`` (``True`` at real tokens, ``None`` when nothing is padded) and must
give the same vector for a sequence whatever padding surrounds it, left or right.
Names combine with ``+``: ``"mean+max"`` concatenates both.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from ablate.registry import Registry


class Pooling(nn.Module):
    """Base class. Subclasses implement :meth:`forward` and may change the flags."""

    #: The model prepends a learned [CLS] token at index 0 for this pooling.
    prepends_cls: bool = False
    #: Output stays per token, ``(B, L, D)`` (language modelling, seq2seq).
    token_level: bool = False

    def __init__(self, *, d_model: int, num_heads: int = 4) -> None:
        super().__init__()
        self.d_model = d_model

    def out_dim(self) -> int:
        """Width of the pooled vector."""
        return self.d_model

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``(B, L, D)``, ``(B, L)|None`` -> ``(B, out_dim)``."""
        raise NotImplementedError


POOLINGS: Registry[Pooling] = Registry("pooling")


def token_rank(mask: torch.Tensor) -> torch.Tensor:
    """Index of each real token among the real tokens of its row: ``(B, L) bool -> (B, L) int64``.

    Padding positions get the rank of the nearest real token on their left (or 0);
    callers mask them out.
    """
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def _lengths(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Real tokens per row, ``(B, 1)`` in ``h``'s dtype, at least 1 (empty rows give 0 vectors)."""
    if mask is None:
        return h.new_full((h.shape[0], 1), h.shape[1])
    return mask.sum(-1, keepdim=True).clamp(min=1).to(h.dtype)


def _masked_sum(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return h.sum(1)
    return (h * mask.unsqueeze(-1).to(h.dtype)).sum(1)


@POOLINGS.register("none")
class NoPooling(Pooling):
    """Token-level output ``(B, L, D)`` for language modelling and sequence tasks."""

    token_level = True

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return h


@POOLINGS.register("cls")
class ClsPooling(Pooling):
    """The hidden state of a learned [CLS] token the model prepends (BERT)."""

    prepends_cls = True

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return h[:, 0]


@POOLINGS.register("first")
class FirstPooling(Pooling):
    """The first real token (after any left padding)."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return h[:, 0]
        index = mask.long().argmax(-1)  # first True
        return h[torch.arange(h.shape[0], device=h.device), index]


@POOLINGS.register("last")
class LastPooling(Pooling):
    """The last real token (before any right padding); the natural choice in a causal decoder."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return h[:, -1]
        length = mask.shape[1]
        index = length - 1 - mask.flip(-1).long().argmax(-1)  # last True
        return h[torch.arange(h.shape[0], device=h.device), index]


@POOLINGS.register("mean")
class MeanPooling(Pooling):
    """Mean over real tokens."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return _masked_sum(h, mask) / _lengths(h, mask)


@POOLINGS.register("mean_sqrt_len")
class MeanSqrtLenPooling(Pooling):
    """Sum over real tokens divided by ``sqrt(n)`` (sentence-transformers' ``mean_sqrt_len_tokens``)."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return _masked_sum(h, mask) / _lengths(h, mask).sqrt()


@POOLINGS.register("max")
class MaxPooling(Pooling):
    """Element-wise max over real tokens.

    Padding is filled with the dtype's most negative finite value, not ``-inf``,
    so float16/bfloat16 never produce ``-inf`` or NaN; an all-padding row gives 0.
    """

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return h.amax(1)
        filled = h.masked_fill(~mask.unsqueeze(-1), torch.finfo(h.dtype).min)
        pooled = filled.amax(1)
        return pooled.masked_fill(~mask.any(-1, keepdim=True), 0.0)


@POOLINGS.register("weighted_mean")
class WeightedMeanPooling(Pooling):
    """Position-weighted mean, weight ``i`` for the ``i``-th real token (SGPT, Muennighoff 2022).

    Later tokens weigh more, which suits causal models where they have seen
    more context. Weights count real tokens only, so padding never shifts them.
    """

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            weights = torch.arange(1, h.shape[1] + 1, device=h.device, dtype=h.dtype).expand(h.shape[0], -1)
        else:
            weights = (token_rank(mask) + 1).to(h.dtype) * mask.to(h.dtype)
        weights = weights / weights.sum(-1, keepdim=True).clamp(min=1)
        return torch.einsum("bl,bld->bd", weights, h)


@POOLINGS.register("attention")
class AttentionPooling(Pooling):
    """Multi-head attention pooling with a learned query (Set Transformer PMA; timm ``AttentionPoolLatent``).

    Args:
        num_heads: heads of the pooling attention.
        num_queries: learned seed vectors; their outputs are concatenated.
    """

    def __init__(self, *, d_model: int, num_heads: int = 4, num_queries: int = 1) -> None:
        super().__init__(d_model=d_model)
        if d_model % num_heads:
            raise ValueError(f"attention pooling: d_model={d_model} not divisible by num_heads={num_heads}")
        self.num_heads, self.num_queries = num_heads, num_queries
        self.query = nn.Parameter(torch.randn(num_queries, d_model) * d_model**-0.5)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def out_dim(self) -> int:
        return self.d_model * self.num_queries

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, dim = h.shape
        head_dim = dim // self.num_heads
        k, v = self.kv(h).view(batch, length, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)  # (B, H, L, Dh)
        q = self.query.to(h.dtype).view(1, self.num_queries, self.num_heads, head_dim).transpose(1, 2)
        q = q.expand(batch, -1, -1, -1)  # (B, H, Q, Dh)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, Q, Dh)
        out = self.proj(out.transpose(1, 2).reshape(batch, self.num_queries, dim))
        return out.reshape(batch, self.num_queries * dim)


class ConcatPooling(Pooling):
    """Several poolings side by side (``"mean+max"``)."""

    def __init__(self, parts: list[Pooling]) -> None:
        super().__init__(d_model=parts[0].d_model)
        if any(p.token_level for p in parts):
            raise ValueError("pooling 'none' (token-level) cannot be combined with other poolings")
        self.parts = nn.ModuleList(parts)
        self.prepends_cls = any(p.prepends_cls for p in parts)

    def out_dim(self) -> int:
        return sum(p.out_dim() for p in self.parts)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([p(h, mask) for p in self.parts], dim=-1)


def create_pooling(spec: str | Mapping[str, Any], *, d_model: int, num_heads: int = 4) -> Pooling:
    """Build a pooling from ``"mean"``, ``"mean+max"`` or ``{name = "attention", num_queries = 2}``."""
    from ablate.encodings import split_spec

    name, params = split_spec(spec)
    parts = []
    for part in name.split("+"):
        factory = POOLINGS.get(part.strip())
        try:
            parts.append(factory(d_model=d_model, num_heads=num_heads, **params))
        except TypeError as error:
            raise ValueError(f"pooling {part!r}: {error}") from None
    return parts[0] if len(parts) == 1 else ConcatPooling(parts)


def pooling_is_token_level(spec: str | Mapping[str, Any]) -> bool:
    """Whether ``spec`` names the token-level pooling ``"none"``."""
    from ablate.encodings import split_spec

    return split_spec(spec)[0] == "none"


