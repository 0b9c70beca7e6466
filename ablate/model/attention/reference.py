"""The reference path: attention as written in the papers, every ``(B, H, L, L)`` tensor built, plain autograd.

Selected by ``attention_backend = "reference"`` (a model setting) or the environment
variable ``ABLATE_ATTENTION=reference``, so any result can be recomputed without a
fast path; ``tests/test_kernels.py`` checks every kernel against it. Memory grows as
``L^2`` per layer: a check, not a way to train long sequences.
"""

from __future__ import annotations

import math

import torch

from ablate.model.attention.masks import allowed_keys
from ablate.model.encodings.base import PositionalEncoding
from ablate.model.encodings.clipped import value_term


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, encoding: PositionalEncoding, positions: torch.Tensor,
    padding_mask: torch.Tensor | None, *, causal: bool,
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(Dh) + bias) v`` plus the encoding's value term: ``(B, H, L, Dh) x3 -> (B, H, L, Dh)``.

    Args:
        q, k, v: queries, keys and values (rotated already).
        encoding: supplies the dense ``bias`` and (``clipped_relative``) the value term.
        positions: ``(L,)`` or ``(B, L)``.
        padding_mask: ``(B, L)`` bool, ``True`` at real tokens, or ``None``; real queries
            never see padding keys, a padding query sees itself.
        causal: keys after a query are masked.
    """
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, L, L)
    bias = encoding.bias(positions, positions, q)
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    allowed = allowed_keys(padding_mask, causal=causal, length=q.shape[-2], device=q.device)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    out = probs @ v
    relative = encoding.clipped_relative() if encoding.mixes_values else None
    if relative is None:
        return out
    return out + value_term(relative, probs, positions, positions).to(out.dtype)
