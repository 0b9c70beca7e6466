"""A bias from positions alone over blocks of query rows, as one autograd node (training; ALiBi, T5, KERPLE, FIRE).

Forward runs the fused kernel block by block with the block's ``(1|B, H, rows, keys)``
mask and keeps only ``q, k, v``, the output and its rows' log-sum-exp; backward
recomputes each block's mask and probabilities, writes the block's gradients into one
``grad_q``, ``grad_k``, ``grad_v`` (:class:`~ablate.model.attention.softmax_backward.SoftmaxBackward`)
and reduces the block's bias gradient into the encoding's parameters with
:func:`torch.autograd.grad` on that block's recomputed mask (T5 buckets, KERPLE's
``r1, r2``, FIRE's MLP, one block at a time). Per-block checkpoints would give autograd
one small graph per block and full-size gradients of each block's ``q``, ``k``, ``v``
slices to sum. A bias without parameters to train (ALiBi) needs no logit gradient: its
backward is the fused kernel's, per block, with larger blocks.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from ablate.model.attention.kernels.registry import Kernel, register_kernel
from ablate.model.attention.masks import block_ranges, static_block_mask
from ablate.model.attention.plan import AttentionPlan
from ablate.model.attention.private_ops import flash_attention_backward
from ablate.model.attention.softmax_backward import SoftmaxBackward, attention_with_logsumexp, batch_summed
from ablate.model.attention.traits import Case, Traits, Tuning, over_blocks


class StaticBiasBlocks(torch.autograd.Function):
    """Blockwise attention with a position-only bias as one autograd node.

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
        gradients = SoftmaxBackward(q, k, v, out, grad_out)
        grad_params = [torch.zeros_like(p) for p in params]
        for start, stop, keys in block_ranges(q.shape[-2], ctx.block_rows, ctx.causal):
            with torch.enable_grad():
                mask = ctx.block_mask(start, stop, keys)  # (1|B, H, rows, keys), a graph to the parameters
            probs = gradients.masked_probs(start, stop, keys, mask.detach(), logsumexp)
            grad_logits = gradients.add(start, stop, 0, keys, probs)
            del probs
            if params:
                grads = torch.autograd.grad(mask, params, batch_summed(grad_logits, mask), allow_unused=True)
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
            grad_q[:, :, rows], block_k, block_v = flash_attention_backward(
                grad_out[:, :, rows], q[:, :, rows], k[:, :, :keys], v[:, :, :keys], out[:, :, rows],
                logsumexp[:, :, rows], mask=ctx.block_mask(start, stop, keys))
            grad_k[:, :, :keys].add_(block_k)
            grad_v[:, :, :keys].add_(block_v)
        return grad_q, grad_k, grad_v


def _applies(traits: Traits, case: Case, tuning: Tuning) -> bool:
    return over_blocks(traits, case, tuning) and case.grad and traits.static_bias and not traits.mixes_values


def _rows(traits: Traits, case: Case, tuning: Tuning) -> int:
    # Without parameters to train the fused kernel runs forward and backward: larger blocks.
    return tuning.fused_block_rows if not traits.learned_bias and case.device == "cpu" else tuning.block_rows


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    encoding = plan.encoding
    block_mask = functools.partial(static_block_mask, encoding, plan.positions, plan.padding_mask, plan.causal, q.dtype)
    params = [p for p in encoding.parameters() if p.requires_grad]
    return StaticBiasBlocks.apply(q, k, v, block_mask, plan.path.rows, plan.causal, *params)


register_kernel(Kernel(
    name="static-bias-blocks", function=StaticBiasBlocks, kind="blocks", order=30,
    when="training over blocks with a bias from positions alone (no value term)",
    applies=_applies, attend=_attend, rows=_rows,
))
