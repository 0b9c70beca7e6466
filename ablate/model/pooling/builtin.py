"""The built-in poolings: a variable-length sequence of vectors -> one vector, correct under padding.

Every pooling takes hidden states ``h`` of shape ``(B, L, D)`` and a padding mask
``(B, L)`` (``True`` at real tokens, ``None`` when nothing is padded) and must
give the same vector for a sequence whatever padding surrounds it, left or right.
Names combine with ``+``: ``"mean+max"`` concatenates both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ablate.core.dims import head_dim
from ablate.model.pooling.base import Pooling, masked_sum, real_lengths, token_rank
from ablate.model.pooling.registry import POOLINGS


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

    reads_end = "first"

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return h[:, 0]
        index = mask.long().argmax(-1)  # first True
        return h[torch.arange(h.shape[0], device=h.device), index]


@POOLINGS.register("last")
class LastPooling(Pooling):
    """The last real token (before any right padding); the natural choice in a causal decoder."""

    reads_end = "last"

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return h[:, -1]
        length = mask.shape[1]
        index = length - 1 - mask.flip(-1).long().argmax(-1)  # last True
        return h[torch.arange(h.shape[0], device=h.device), index]


@POOLINGS.register("mean")
class MeanPooling(Pooling):
    """Mean over real tokens."""

    symmetric = True

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return masked_sum(h, mask) / real_lengths(h, mask)


@POOLINGS.register("mean_sqrt_len")
class MeanSqrtLenPooling(Pooling):
    """Sum over real tokens divided by ``sqrt(n)`` (sentence-transformers' ``mean_sqrt_len_tokens``)."""

    symmetric = True

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return masked_sum(h, mask) / real_lengths(h, mask).sqrt()


@POOLINGS.register("max")
class MaxPooling(Pooling):
    """Element-wise max over real tokens.

    Padding is filled with the dtype's most negative finite value, not ``-inf``,
    so float16/bfloat16 never produce ``-inf`` or NaN; an all-padding row gives 0.
    """

    symmetric = True

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

    symmetric = True  # a learned query attends to a set of keys: no position enters

    def __init__(self, *, d_model: int, num_heads: int = 4, num_queries: int = 1) -> None:
        super().__init__(d_model=d_model)
        head_dim(d_model, num_heads)
        self.num_heads, self.num_queries = num_heads, num_queries
        self.query = nn.Parameter(torch.randn(num_queries, d_model) * d_model**-0.5)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def out_dim(self) -> int:
        return self.d_model * self.num_queries

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, dim = h.shape
        dh = dim // self.num_heads
        k, v = self.kv(h).view(batch, length, 2, self.num_heads, dh).permute(2, 0, 3, 1, 4)  # (B, H, L, Dh)
        q = self.query.to(h.dtype).view(1, self.num_queries, self.num_heads, dh).transpose(1, 2)
        q = q.expand(batch, -1, -1, -1)  # (B, H, Q, Dh)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, Q, Dh)
        out = self.proj(out.transpose(1, 2).reshape(batch, self.num_queries, dim))
        return out.reshape(batch, self.num_queries * dim)
