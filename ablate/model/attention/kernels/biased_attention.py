"""SDPA under an additive mask that carries gradients: the fused kernel forward, a lean explicit backward.

SDPA differentiates a float mask only on its unfused math path (forward and backward),
which keeps the ``(B, H, Lq, Lk)`` probabilities and writes several more such
temporaries (NaN guards, copies). :class:`BiasedAttention` runs the fused kernel forward,
keeping each row's log-sum-exp, and recomputes the probabilities in backward
``backward_rows`` query rows at a time, so a mask shared by the whole sequence costs no
``(B, H, L, L)`` temporary either. A learned bias's shared mask in training, and a
block's learned bias, go through it (:func:`masked_attention`); a mask without
gradient (static ALiBi) keeps plain SDPA and its fused backward.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from ablate.model.attention.kernels.registry import Kernel, register_kernel
from ablate.model.attention.masks import allowed_keys
from ablate.model.attention.plan import AttentionPlan
from ablate.model.attention.softmax_backward import SoftmaxBackward, attention_with_logsumexp, batch_summed
from ablate.model.attention.traits import TUNING, Case, Traits, Tuning


class BiasedAttention(torch.autograd.Function):
    """``apply(q, k, v, mask, backward_rows)``: ``(B, H, Lq, Dh)``, ``(B, H, Lk, Dh)`` x2 and a mask
    ``(1|B, H, Lq, Lk)`` (``-inf`` where a key is masked) -> ``(B, H, Lq, Dh)``."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,  # noqa: D102
                backward_rows: int) -> torch.Tensor:
        out, logsumexp = attention_with_logsumexp(q.detach(), k.detach(), v.detach(), mask.detach())
        ctx.save_for_backward(q, k, v, mask, out, logsumexp)
        ctx.backward_rows = backward_rows
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        q, k, v, mask, out, logsumexp = ctx.saved_tensors
        gradients = SoftmaxBackward(q, k, v, out, grad_out)
        grad_mask = torch.empty_like(mask) if ctx.needs_input_grad[3] else None
        keys = k.shape[-2]
        # Rows at a time, so the two (B, H, rows, Lk) temporaries stay small for a long shared mask.
        for start in range(0, q.shape[-2], ctx.backward_rows):
            stop = min(start + ctx.backward_rows, q.shape[-2])
            probs = gradients.masked_probs(start, stop, keys, mask[:, :, start:stop], logsumexp)
            grad_logits = gradients.add(start, stop, 0, keys, probs)
            del probs
            if grad_mask is not None:
                grad_mask[:, :, start:stop] = batch_summed(grad_logits, mask)
        return gradients.grad_q, gradients.grad_k, gradients.grad_v, grad_mask, None


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, *,
                     backward_rows: int = TUNING.backward_rows) -> torch.Tensor:
    """SDPA ``(B, H, Lq, Dh), (B, H, Lk, Dh) x2 -> (B, H, Lq, Dh)`` under ``mask`` (additive or boolean, 4-D, or None).

    A mask that carries gradients goes through :class:`BiasedAttention` (SDPA would take
    its unfused math path to differentiate it).
    """
    if mask is not None and mask.requires_grad and torch.is_grad_enabled():
        return BiasedAttention.apply(q, k, v, mask, backward_rows)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _applies(traits: Traits, case: Case, tuning: Tuning) -> bool:
    learned = traits.learned_bias or traits.bias_needs_query  # the mask is differentiable
    return case.grad and traits.has_bias and learned and not traits.mixes_values


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """The whole sequence under one mask (a path runs it on a shared mask's row blocks, or per block)."""
    mask = plan.encoding.bias(plan.positions, plan.positions, q).to(q.dtype)  # (H|B,H, L, L)
    mask = mask if mask.dim() == 4 else mask.unsqueeze(0)
    allowed = allowed_keys(plan.padding_mask, causal=plan.causal, length=q.shape[-2], device=q.device)
    mask = mask if allowed is None else mask.masked_fill(~allowed, float("-inf"))
    return BiasedAttention.apply(q, k, v, mask, plan.tuning.backward_rows)


register_kernel(Kernel(
    name="biased-attention", function=BiasedAttention, kind="mask",
    when="training with a mask that carries gradients: a learned bias's shared mask, or a block's learned bias",
    applies=_applies, attend=_attend, rows=lambda traits, case, tuning: tuning.backward_rows,
))
