"""Attention with a bias over blocks of query rows: memory linear in the length, in training too.

A dense bias makes autograd keep ``(B, H, L, L)`` tensors (the bias, the masked
logits, SDPA's saved probabilities) in every layer. Here queries go ``block_rows``
at a time and only ``q``, ``k``, ``v`` and the output are kept; backward recomputes
each block's bias and probabilities, and the gradient of the bias parameters is
reduced into their small tables (T5 buckets, KERPLE's ``r1, r2``, FIRE's MLP,
NEZHA's per-distance query scores) one block at a time. In a causal model a block
reads only the keys up to its last row, so the masked upper triangle is skipped
block by block, bias or not.

A bias from positions alone goes through :class:`StaticBiasBlocks`, one autograd
node for all blocks. A term of the clipped distance over contiguous positions (T5's
buckets, NEZHA's vectors) goes through
:class:`~ablate.relative_regions.ClippedRelativeRegions` instead (unpadded, CPU: the
far keys on the fused kernel), and NEZHA elsewhere through
:class:`~ablate.relative_blocks.ClippedVectorBlocks`.
Any other bias that reads the queries, or adds to the output through
``mix_values`` (per-sequence positions), makes each block a
:func:`torch.utils.checkpoint.checkpoint` region instead; ``mix_values`` needs the
probabilities, so those blocks run an explicit softmax. Elsewhere the fused SDPA
kernel runs with the block's ``(Lb, Lk)`` bias as its float mask.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from ablate.attention_gradients import AttentionGradients, attention_with_logsumexp, fused_backward
from ablate.block_masks import block_allowed, block_ranges
from ablate.encodings.base import PositionalEncoding, is_contiguous_range
from ablate.relative_blocks import ClippedVectorBlocks
from ablate.relative_regions import ClippedRelativeRegions

#: Query rows per block: the per-block transients are ``(B, H, rows, L)``, so at
#: batch 8 and 4 heads 64 rows cost about as much as one ``(B, L, d_ff)`` activation
#: of a ``d_model=128`` feed-forward at every length.
BLOCK_ROWS = 64

#: Query rows per block where the fused kernel runs forward and backward (a bias without
#: parameters): only the block's ``(H, rows, L)`` mask is materialised, and fewer, larger
#: kernel calls run faster.
FUSED_BLOCK_ROWS = 256

#: A term of the clipped distance puts its far keys on the fused kernel once the sequence is
#: longer than this many times the clipping distance (NEZHA's 64 from L = 1024 on): below,
#: the band is most of each row, and all-explicit blocks ran faster in our measurements.
FAR_KEYS_LENGTH_PER_DISTANCE = 8

#: Query rows per step of :class:`BiasedAttention`'s backward (a shared mask has all ``L`` rows).
BACKWARD_ROWS = 128


def blockwise_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, encoding: PositionalEncoding, positions: torch.Tensor,
    padding_mask: torch.Tensor | None, *, causal: bool, block_rows: int | None = None,
) -> torch.Tensor:
    """Attention ``(B, H, L, Dh) x3 -> (B, H, L, Dh)`` with the encoding's bias, one block of queries at a time.

    Args:
        q, k, v: queries, keys and values (rotated already).
        encoding: supplies ``bias`` (called per block with the block's queries) and ``mix_values``.
        positions: ``(L,)`` or ``(B, L)``.
        padding_mask: ``(B, L)`` bool, ``True`` at real tokens, or ``None``.
        causal: keys after a query are masked, and key blocks past a query block skipped.
        block_rows: query rows per block (default: ``BLOCK_ROWS``, or ``FUSED_BLOCK_ROWS`` where the
            fused kernel runs forward and backward).
    """
    if block_rows is not None and block_rows < 1:
        raise ValueError(f"blockwise attention needs block_rows >= 1, got {block_rows}")
    rows = block_rows or BLOCK_ROWS
    relative = encoding.clipped_relative()
    if relative is not None and positions.dim() == 1 and is_contiguous_range(positions):
        far_keys_dominate = q.shape[-2] > FAR_KEYS_LENGTH_PER_DISTANCE * relative.max_distance
        if padding_mask is None and q.device.type == "cpu" and far_keys_dominate:  # the far keys fused
            return ClippedRelativeRegions.apply(q, k, v, relative.table, relative.keys, relative.values,
                                                relative.max_distance, causal, rows)
        if relative.table is None and relative.keys is not None:
            return ClippedVectorBlocks.apply(q, k, v, relative.keys, relative.values, relative.max_distance,
                                             padding_mask, causal, rows)
    length = q.shape[-2]
    needs_grad = [q, k, v, *encoding.parameters()]
    recompute = torch.is_grad_enabled() and any(t.requires_grad for t in needs_grad)
    if recompute and not encoding.mixes_values and not encoding.bias_needs_query:
        block_mask = functools.partial(static_block_mask, encoding, positions, padding_mask, causal, q.dtype)
        params = [p for p in encoding.parameters() if p.requires_grad]
        if not params and q.device.type == "cpu":  # nothing of the mask to differentiate (ALiBi)
            rows = block_rows or FUSED_BLOCK_ROWS
        return StaticBiasBlocks.apply(q, k, v, block_mask, rows, causal, *params)
    outputs = []
    for start, stop, keys in block_ranges(length, rows, causal):
        block = functools.partial(_attend_block, encoding=encoding, positions=positions,
                                  padding_mask=padding_mask, causal=causal, start=start)
        args = (q[:, :, start:stop], k[:, :, :keys], v[:, :, :keys])
        outputs.append(checkpoint(block, *args, use_reentrant=False) if recompute else block(*args))
    return torch.cat(outputs, dim=2)  # (B, H, L, Dh)


def _attend_block(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, encoding: PositionalEncoding, positions: torch.Tensor,
    padding_mask: torch.Tensor | None, causal: bool, start: int,
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
    if not encoding.mixes_values:
        if mask is not None and mask.requires_grad and torch.is_grad_enabled():
            return BiasedAttention.apply(q, k, v, mask)  # SDPA would fall back to its math path
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    # In place on the product (its backward needs q and k only): every fresh (B, H, Lb, Lk)
    # temporary of a block is another chunk for the heap to fragment on.
    logits = torch.matmul(q, k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))  # (B, H, Lb, Lk)
    if mask is not None:
        logits = logits.masked_fill_(~mask, float("-inf")) if mask.dtype == torch.bool else logits.add_(mask)
    probs = torch.softmax(logits, dim=-1)
    out = probs @ v  # (B, H, Lb, Dh)
    extra = encoding.mix_values(probs, q_positions, k_positions)
    return out if extra is None else out + extra.to(out.dtype)


def static_block_mask(
    encoding: PositionalEncoding, positions: torch.Tensor, padding_mask: torch.Tensor | None, causal: bool,
    dtype: torch.dtype, start: int, stop: int, keys: int,
) -> torch.Tensor | None:
    """The additive mask ``(1|B, H, stop - start, keys)`` of a bias from positions alone, or ``None`` without one.

    Padding and (when ``causal``) later keys are ``-inf``. Contiguous and 4-D: SDPA's fused
    CPU/CUDA kernels take a 4-D mask (a 3-D one falls back to the unfused math path) and
    read a strided one several times slower.
    """
    bias = encoding.bias(positions[..., start:stop], positions[..., :keys])  # (H|B,H, rows, keys)
    if bias is None:
        return None
    mask = bias.to(dtype)
    mask = (mask if mask.dim() == 4 else mask.unsqueeze(0)).contiguous()
    allowed = block_allowed(padding_mask, causal=causal, start=start, stop=stop, keys=keys, device=mask.device)
    return mask if allowed is None else mask.masked_fill(~allowed, float("-inf"))


def _batch_summed(grad_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The gradient of a mask broadcast over the batch (``(1, H, ...)``) sums over it."""
    return grad_logits.sum(0, keepdim=True) if mask.shape[0] == 1 else grad_logits


class StaticBiasBlocks(torch.autograd.Function):
    """Blockwise attention with a position-only bias as one autograd node.

    Per-block checkpoints would give autograd one small graph per block, and every
    block's gradients of its ``q``, ``k``, ``v`` slices would come back as full-size
    tensors to be summed; here backward writes them into one ``grad_q``, ``grad_k``,
    ``grad_v`` and reduces each block's bias gradient into the encoding's parameters
    with :func:`torch.autograd.grad` on that block's recomputed bias. The forward keeps
    only ``q, k, v``, the output and its rows' log-sum-exp. A bias without parameters to
    train (ALiBi) needs no logit gradient, so its backward is the fused kernel's, per block.

    ``apply(q, k, v, block_mask, block_rows, causal, *params)``: ``(B, H, L, Dh)`` x3,
    ``block_mask(start, stop, keys) -> (1|B, H, rows, keys)`` differentiable in ``params``
    -> ``(B, H, L, Dh)``.
    """

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: Any, block_rows: int,  # noqa: D102
                causal: bool, *params: torch.Tensor) -> torch.Tensor:
        ctx.block_mask, ctx.block_rows, ctx.causal = block_mask, block_rows, causal
        # One layout for every block's kernel call and for backward (a fused projection's views are strided).
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        length = q.shape[-2]
        out = torch.empty_like(q)
        block_logsumexps = []
        for start, stop, keys in block_ranges(length, block_rows, causal):
            out[:, :, start:stop], block_logsumexp = attention_with_logsumexp(
                q[:, :, start:stop], k[:, :, :keys], v[:, :, :keys], block_mask(start, stop, keys))
            block_logsumexps.append(block_logsumexp)
        logsumexp = None if block_logsumexps[0] is None else torch.cat(block_logsumexps, dim=-1)  # (B, H, L)
        ctx.save_for_backward(q, k, v, out, logsumexp, *params)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        q, k, v, out, logsumexp, *params = ctx.saved_tensors
        if not params and logsumexp is not None:  # nothing to differentiate in the mask (ALiBi)
            return (*StaticBiasBlocks._fused_backward(ctx, q, k, v, out, logsumexp, grad_out), None, None, None)
        gradients = AttentionGradients(q, k, v, out, grad_out, logsumexp)
        grad_params = [torch.zeros_like(p) for p in params]
        for start, stop, keys in block_ranges(q.shape[-2], ctx.block_rows, ctx.causal):
            with torch.enable_grad():
                mask = ctx.block_mask(start, stop, keys)  # (1|B, H, rows, keys), a graph to the parameters
            grad_logits = gradients.add_block(start, stop, keys, mask.detach())
            if params:
                grads = torch.autograd.grad(mask, params, _batch_summed(grad_logits, mask), allow_unused=True)
                for total, grad in zip(grad_params, grads):
                    if grad is not None:
                        total.add_(grad)
        return (gradients.grad_q, gradients.grad_k, gradients.grad_v, None, None, None, *grad_params)

    @staticmethod
    def _fused_backward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                        logsumexp: torch.Tensor, grad_out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q/k/v gradients block by block through the fused kernel's backward, each block's mask rebuilt."""
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for start, stop, keys in block_ranges(q.shape[-2], ctx.block_rows, ctx.causal):
            rows = slice(start, stop)
            grad_q[:, :, rows], block_k, block_v = fused_backward(
                grad_out[:, :, rows], q[:, :, rows], k[:, :, :keys], v[:, :, :keys], out[:, :, rows],
                logsumexp[:, :, rows], ctx.block_mask(start, stop, keys))
            grad_k[:, :, :keys].add_(block_k)
            grad_v[:, :, :keys].add_(block_v)
        return grad_q, grad_k, grad_v


class BiasedAttention(torch.autograd.Function):
    """SDPA with a differentiable additive mask: the fused kernel forward, a lean explicit backward.

    SDPA itself differentiates a float mask only on its unfused math path (forward and
    backward), which writes several extra ``(B, H, Lq, Lk)`` temporaries (NaN guards,
    copies); this backward recomputes the probabilities ``BACKWARD_ROWS`` query rows at a
    time and needs two such row tensors, updated in place, so a mask shared by the whole
    sequence costs no ``(B, H, L, L)`` temporary either. A mask without gradient (static
    ALiBi) needs none of this: plain SDPA keeps its fused backward.

    ``forward(q, k, v, mask)``: ``(B, H, Lq, Dh)``, ``(B, H, Lk, Dh)`` x2 and a mask
    ``(1|B, H, Lq, Lk)`` (``-inf`` where a key is masked) -> ``(B, H, Lq, Dh)``.
    """

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out, logsumexp = attention_with_logsumexp(q.detach(), k.detach(), v.detach(), mask.detach())
        ctx.save_for_backward(q, k, v, mask, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        q, k, v, mask, out, logsumexp = ctx.saved_tensors
        gradients = AttentionGradients(q, k, v, out, grad_out, logsumexp)
        grad_mask = torch.empty_like(mask) if ctx.needs_input_grad[3] else None
        # Rows at a time, so the two (B, H, rows, Lk) temporaries stay small for a long shared mask.
        for start in range(0, q.shape[-2], BACKWARD_ROWS):
            stop = min(start + BACKWARD_ROWS, q.shape[-2])
            grad_logits = gradients.add_block(start, stop, k.shape[-2], mask[:, :, start:stop])
            if grad_mask is not None:
                grad_mask[:, :, start:stop] = _batch_summed(grad_logits, mask)
        return gradients.grad_q, gradients.grad_k, gradients.grad_v, grad_mask
