"""The general path over blocks of query rows: each block a checkpoint, memory linear in the length.

Taken when attention must go over blocks (:func:`~ablate.model.attention.traits.over_blocks`)
and no registered kernel applies: a bias that reads the queries or a value term with
per-sequence (padded) positions, or a value term without autograd. Queries go
``rows`` at a time; in training each block is a :func:`torch.utils.checkpoint.checkpoint`
region, so only the block's inputs are kept and backward recomputes its bias and
probabilities. In a causal model a block reads only the keys up to its last row. A
value term needs the probabilities, so its blocks run an explicit softmax; elsewhere
SDPA runs with the block's ``(Lb, Lk)`` bias as its mask.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.utils.checkpoint import checkpoint

from ablate.model.attention.kernels.biased_attention import masked_attention
from ablate.model.attention.masks import block_allowed, block_ranges
from ablate.model.attention.plan import AttentionPlan
from ablate.model.encodings.base import ClippedRelative, PositionalEncoding
from ablate.model.encodings.clipped import value_term


def attend_over_blocks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """Attention ``(B, H, L, Dh) x3 -> (B, H, L, Dh)`` with the encoding's bias, ``plan.path.rows`` queries at a time."""
    encoding = plan.encoding
    recompute = torch.is_grad_enabled() and any(t.requires_grad for t in [q, k, v, *encoding.parameters()])
    relative = encoding.clipped_relative() if encoding.mixes_values else None
    outputs = []
    for start, stop, keys in block_ranges(q.shape[-2], plan.path.rows, plan.causal):
        block = functools.partial(_attend_block, encoding=encoding, relative=relative, positions=plan.positions,
                                  padding_mask=plan.padding_mask, causal=plan.causal, start=start,
                                  backward_rows=plan.tuning.backward_rows)
        args = (q[:, :, start:stop], k[:, :, :keys], v[:, :, :keys])
        outputs.append(checkpoint(block, *args, use_reentrant=False) if recompute else block(*args))
    return torch.cat(outputs, dim=2)  # (B, H, L, Dh)


def _attend_block(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, encoding: PositionalEncoding,
    relative: ClippedRelative | None, positions: torch.Tensor, padding_mask: torch.Tensor | None, causal: bool,
    start: int, backward_rows: int,
) -> torch.Tensor:
    """One block: queries ``(B, H, Lb, Dh)`` of rows ``start:start+Lb`` against keys ``(B, H, Lk, Dh)``."""
    stop, keys = start + q.shape[-2], k.shape[-2]
    q_positions, k_positions = positions[..., start:stop], positions[..., :keys]
    bias = encoding.bias(q_positions, k_positions, q)  # None, (H, Lb, Lk) or (B, H, Lb, Lk)
    allowed = block_allowed(padding_mask, causal=causal, start=start, stop=stop, keys=keys, device=q.device)
    mask: torch.Tensor | None = allowed
    if bias is not None:
        mask = bias.to(q.dtype)
        if allowed is not None:
            mask = mask.masked_fill(~allowed, float("-inf"))
        # SDPA's fused CPU/CUDA kernels take a 4-D mask; a 3-D one falls back to the math path.
        mask = mask if mask.dim() == 4 else mask.unsqueeze(0)
    if relative is None or relative.values is None:
        return masked_attention(q, k, v, mask, backward_rows=backward_rows)
    # In place on the product (its backward needs q and k only): every fresh (B, H, Lb, Lk)
    # temporary of a block is another chunk for the heap to fragment on.
    logits = torch.matmul(q, k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))  # (B, H, Lb, Lk)
    if mask is not None:
        logits = logits.masked_fill_(~mask, float("-inf")) if mask.dtype == torch.bool else logits.add_(mask)
    probs = torch.softmax(logits, dim=-1)
    out = probs @ v  # (B, H, Lb, Dh)
    return out + value_term(relative, probs, q_positions, k_positions).to(out.dtype)
