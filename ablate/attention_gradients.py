"""Attention with an additive mask, differentiated one block of query rows at a time.

SDPA differentiates a float mask only on its unfused math path, which keeps the
``(B, H, L, L)`` probabilities. Here the forward is the fused kernel, keeping only
each row's log-sum-exp of the logits, and :class:`AttentionGradients` recomputes the
probabilities of a block of rows in backward from that log-sum-exp (one ``exp``, no
max or sum over the row) and accumulates ``grad_k``, ``grad_v`` in place; it returns
each block's gradient of the logits, which is the mask's.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def fused_backward(
    grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
    logsumexp: torch.Tensor, mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fused CPU kernel's backward of :func:`attention_with_logsumexp` for a mask without gradient.

    Shapes as there; returns ``grad_q (B, H, Lq, Dh)`` and ``grad_k``, ``grad_v`` ``(B, H, Lk, Dh)``.
    """
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        grad_out, q, k, v, out, logsumexp, 0.0, False, attn_mask=mask)


def attention_with_logsumexp(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``softmax(q k^T / sqrt(Dh) + mask) v`` ``(B, H, Lq, Dh)`` and its rows' log-sum-exp ``(B, H, Lq)``.

    ``q``: ``(B, H, Lq, Dh)``; ``k, v``: ``(B, H, Lk, Dh)``; ``mask``: ``(1|B, H, Lq, Lk)``
    or ``None``. The log-sum-exp comes from the fused CPU kernel; elsewhere it is ``None``
    and :class:`AttentionGradients` normalises the recomputed rows itself.
    """
    if q.device.type == "cpu":
        out, logsumexp = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, attn_mask=mask)
        return out, logsumexp
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None


class AttentionGradients:
    """The ``q``, ``k``, ``v`` gradients of masked softmax attention, built up block by block of query rows.

    ``q, out, grad_out``: ``(B, H, Lq, Dh)``; ``k, v``: ``(B, H, Lk, Dh)``;
    ``logsumexp``: ``(B, H, Lq)`` from :func:`attention_with_logsumexp`, or ``None``.
    Keys and values are laid out once for every block's products (a transposed view
    costs each product a copy); a block's recomputation needs two ``(B, H, rows, Lk)``
    temporaries, updated in place.
    """

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                 grad_out: torch.Tensor, logsumexp: torch.Tensor | None) -> None:
        self.scale = 1.0 / math.sqrt(q.shape[-1])
        self.q, self.logsumexp = q.contiguous(), logsumexp
        self.k = k.contiguous()
        self.k_t = k.transpose(-1, -2).contiguous()  # (B, H, Dh, Lk)
        self.v_t = v.transpose(-1, -2).contiguous()
        self.grad_out = grad_out.contiguous()
        self.grad_out_dot_out = (self.grad_out * out).sum(-1, keepdim=True)  # (B, H, Lq, 1)
        self.grad_q = torch.empty_like(self.q)
        self.grad_k = torch.zeros_like(self.k)
        self.grad_v = torch.zeros_like(self.v_t.transpose(-1, -2))

    def add_block(self, start: int, stop: int, keys: int, mask: torch.Tensor) -> torch.Tensor:
        """Rows ``start:stop`` against keys ``:keys`` under ``mask`` ``(1|B, H, rows, keys)``.

        Writes those rows of ``grad_q``, adds their shares to ``grad_k`` and ``grad_v``,
        and returns the gradient of their logits ``(B, H, rows, keys)`` (the mask's,
        before any sum over a batch it was broadcast over).
        """
        q = self.q[:, :, start:stop]
        grad_out = self.grad_out[:, :, start:stop]
        probs = torch.matmul(q * self.scale, self.k_t[..., :keys]).add_(mask)  # logits
        if self.logsumexp is not None:
            probs.sub_(self.logsumexp[:, :, start:stop, None]).exp_()
        else:
            probs.sub_(probs.amax(-1, keepdim=True)).exp_()
            probs.div_(probs.sum(-1, keepdim=True))
        # (B*H, keys, Dh) views of the contiguous gradients, accumulated in place.
        self.grad_v.flatten(0, 1)[:, :keys].baddbmm_(probs.flatten(0, 1).transpose(1, 2), grad_out.flatten(0, 1))
        grad_logits = torch.matmul(grad_out, self.v_t[..., :keys])
        grad_logits.sub_(self.grad_out_dot_out[:, :, start:stop]).mul_(probs)
        del probs
        self.grad_q[:, :, start:stop] = torch.matmul(grad_logits, self.k[:, :, :keys]).mul_(self.scale)
        self.grad_k.flatten(0, 1)[:, :keys].baddbmm_(
            grad_logits.flatten(0, 1).transpose(1, 2), q.flatten(0, 1), alpha=self.scale)
        return grad_logits
