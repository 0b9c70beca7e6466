"""The one explicit backward of softmax attention, a block of query rows at a time.

For ``out = P v`` with ``P = softmax(S)`` row by row::

    dv += P^T dO        dP = dO v^T (+ what the output adds per pair)
    dS = P * (dP - rowsum(dO * out))
    dq += dS k / sqrt(Dh)        dk += dS^T q / sqrt(Dh)

Every kernel that recomputes probabilities in backward (``ablate.model.attention.kernels``)
computes a block's ``P`` its own way (from a mask, a band of clipped distances, ...)
and hands it to :class:`SoftmaxBackward`, which returns ``dS``: the gradient of the
block's logits, which is its bias's. A block costs two ``(B, H, rows, keys)``
temporaries, updated in place, and the gradients of ``k`` and ``v`` are accumulated
into one tensor each through ``(B*H, keys, Dh)`` views.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.nn import functional as F

from ablate.model.attention.private_ops import flash_attention


def attention_with_logsumexp(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``softmax(q k^T / sqrt(Dh) + mask) v`` ``(B, H, Lq, Dh)`` and its rows' log-sum-exp ``(B, H, Lq)``.

    ``q``: ``(B, H, Lq, Dh)``; ``k, v``: ``(B, H, Lk, Dh)``; ``mask``: ``(1|B, H, Lq, Lk)``
    or ``None``. The log-sum-exp comes from the fused CPU kernel; elsewhere it is ``None``
    and :meth:`SoftmaxBackward.masked_probs` normalises the recomputed rows itself.
    """
    if q.device.type == "cpu":
        return flash_attention(q, k, v, mask=mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None


def batch_summed(grad_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The gradient of a mask broadcast over the batch (``(1, H, ...)``) sums over it."""
    return grad_logits.sum(0, keepdim=True) if mask.shape[0] == 1 else grad_logits


class SoftmaxBackward:
    """The ``q``, ``k``, ``v`` gradients of softmax attention, built up block by block of query rows.

    ``q, out, grad_out``: ``(B, H, Lq, Dh)``; ``k, v``: ``(B, H, Lk, Dh)``. The gradients
    ``grad_q``, ``grad_k``, ``grad_v`` start at zero and callers may add to them (a
    kernel's own terms). Keys and values are laid out once for every block's products
    (a transposed view costs each product a copy).
    """

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                 grad_out: torch.Tensor) -> None:
        self.scale = 1.0 / math.sqrt(q.shape[-1])
        self.q, self.k = q.contiguous(), k.contiguous()
        self.v_t = v.transpose(-1, -2).contiguous()  # (B, H, Dh, Lk)
        self.grad_out = grad_out.contiguous()
        self.grad_out_dot_out = (self.grad_out * out).sum(-1, keepdim=True)  # (B, H, Lq, 1)
        self.grad_q = torch.zeros_like(self.q)
        self.grad_k = torch.zeros_like(self.k)
        self.grad_v = torch.zeros_like(self.v_t.transpose(-1, -2))

    @functools.cached_property
    def k_t(self) -> torch.Tensor:
        """Keys laid out for ``q k^T`` products: ``(B, H, Dh, Lk)``."""
        return self.k.transpose(-1, -2).contiguous()

    def grad_probs(self, start: int, stop: int, lo: int, hi: int) -> torch.Tensor:
        """``dO v^T`` of rows ``start:stop`` and keys ``lo:hi``: ``(B, H, rows, hi - lo)``, a fresh tensor."""
        return torch.matmul(self.grad_out[:, :, start:stop], self.v_t[..., lo:hi])

    def add(self, start: int, stop: int, lo: int, hi: int, probs: torch.Tensor,
            grad_probs: torch.Tensor | None = None) -> torch.Tensor:
        """Add the gradients of rows ``start:stop`` against keys ``lo:hi`` with probabilities ``probs``.

        Args:
            probs: ``(B, H, rows, hi - lo)``, normalised over the whole row.
            grad_probs: :meth:`grad_probs`, plus what the output adds per pair (a value
                term), or ``None`` for :meth:`grad_probs` itself. Overwritten.

        Returns:
            The gradient of the block's logits ``(B, H, rows, hi - lo)`` (the bias's,
            before any sum over a batch it was broadcast over).
        """
        grad_out, q = self.grad_out[:, :, start:stop], self.q[:, :, start:stop]
        self.grad_v.flatten(0, 1)[:, lo:hi].baddbmm_(probs.flatten(0, 1).transpose(1, 2), grad_out.flatten(0, 1))
        if grad_probs is None:
            grad_probs = self.grad_probs(start, stop, lo, hi)
        grad_logits = grad_probs.sub_(self.grad_out_dot_out[:, :, start:stop]).mul_(probs)
        self.grad_q[:, :, start:stop].add_(torch.matmul(grad_logits, self.k[:, :, lo:hi]), alpha=self.scale)
        self.grad_k.flatten(0, 1)[:, lo:hi].baddbmm_(
            grad_logits.flatten(0, 1).transpose(1, 2), q.flatten(0, 1), alpha=self.scale)
        return grad_logits

    def masked_probs(self, start: int, stop: int, keys: int, mask: torch.Tensor,
                     logsumexp: torch.Tensor | None) -> torch.Tensor:
        """Probabilities of rows ``start:stop`` against keys ``:keys`` under an additive ``mask`` ``(1|B, H, rows, keys)``.

        ``logsumexp`` ``(B, H, Lq)`` of the forward (one ``exp``), or ``None`` to normalise here.
        """
        probs = torch.matmul(self.q[:, :, start:stop] * self.scale, self.k_t[..., :keys]).add_(mask)  # logits
        if logsumexp is not None:
            return probs.sub_(logsumexp[:, :, start:stop, None]).exp_()
        probs.sub_(probs.amax(-1, keepdim=True)).exp_()
        return probs.div_(probs.sum(-1, keepdim=True))
