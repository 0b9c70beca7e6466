"""The ``shared-mask`` path: a static bias's mask built once per forward pass and shared by every layer.

A bias from positions alone is the same in every layer (T5 shares it across layers by
design), and so are padding and causality: one combined additive mask, handed to SDPA
in every layer. A causal model gets row blocks instead, each reading keys up to its
last query, so the masked half is neither built nor read. A learned bias in training
is built in row blocks too, in checkpointed regions of ``trained_mask_rows`` rows: what
the bias computes on the way (FIRE's MLP on every distance) is kept for one region at a
time in backward; its blocks carry gradients and run the ``biased-attention`` kernel.
Inference keeps the mask in the model's :class:`~ablate.model.attention.mask_cache.MaskCache`.
"""

from __future__ import annotations

import functools

import torch
from torch.utils.checkpoint import checkpoint

from ablate.model.attention.kernels.biased_attention import masked_attention
from ablate.model.attention.mask_cache import MaskCache
from ablate.model.attention.masks import block_ranges, static_block_mask
from ablate.model.attention.plan import AttentionPlan

#: ``(mask, None)`` or ``(None, row blocks)``; see :class:`~ablate.model.attention.plan.AttentionPlan`.
SharedMasks = tuple[torch.Tensor | None, list[tuple[int, int, torch.Tensor]] | None]


def prepare_shared_mask(plan: AttentionPlan, *, dtype: torch.dtype, trained: bool, cache: MaskCache | None) -> bool:
    """Put the shared mask (or its row blocks) into ``plan``; ``False`` when the encoding has no bias here."""
    encoding = plan.encoding
    key = MaskCache.key(plan.positions, plan.padding_mask, causal=plan.causal, dtype=dtype, training=encoding.training)
    masks = None if cache is None else cache.get(key, encoding)
    if masks is None:
        masks = _build(plan, dtype=dtype, trained=trained)
        if cache is not None and masks is not None:
            cache.put(key, encoding, masks)
    if masks is None:
        return False
    plan.attn_mask, plan.row_blocks = masks
    return True


def _build(plan: AttentionPlan, *, dtype: torch.dtype, trained: bool) -> SharedMasks | None:
    """The mask ``(1|B, H, L, L)``, or row blocks ``(start, stop, (1|B, H, rows, keys))``; ``None`` without a bias."""
    length = plan.positions.shape[-1]
    rows = plan.path.rows or length
    block_mask = functools.partial(static_block_mask, plan.encoding, plan.positions, plan.padding_mask, plan.causal,
                                   dtype)
    region = plan.tuning.trained_mask_rows
    blocks = []
    for start, stop, keys in block_ranges(length, rows, plan.causal):
        if trained:
            regions = [checkpoint(block_mask, first, min(first + region, stop), keys, use_reentrant=False)
                       for first in range(start, stop, region)]
            mask = None if regions[0] is None else torch.cat(regions, dim=-2)
        else:
            mask = block_mask(start, stop, keys)
        if mask is None:
            return None
        blocks.append((start, stop, mask))
    return (None, blocks) if plan.path.rows is not None else (blocks[0][2], None)


def attend_shared_mask(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """SDPA ``(B, H, L, Dh) x3 -> (B, H, L, Dh)`` under the shared mask, row block by row block when it has them."""
    rows = plan.tuning.backward_rows
    if plan.row_blocks is None:
        return masked_attention(q, k, v, plan.attn_mask, backward_rows=rows)
    return torch.cat([masked_attention(q[:, :, a:b], k[:, :, : mask.shape[-1]], v[:, :, : mask.shape[-1]], mask,
                                       backward_rows=rows)
                      for a, b, mask in plan.row_blocks], dim=2)  # a causal block's keys stop at its last row
