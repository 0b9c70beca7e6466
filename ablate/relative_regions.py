"""Clipped relative vectors (NEZHA) over query blocks, with the far keys on the fused kernel.

Left of a block's band every pair has ``c = 0``, right of it ``c = 2k``: there the key
term is one number per query row (``q_i . a_c / sqrt(Dh)``) and the value term one vector
(``a_c``). Such a region is plain attention shifted per row, so the fused CPU kernel
runs it, forward and backward (given the whole row's log-sum-exp less the shift, and
the output less ``a_c``), and only the band of ``rows + 2k`` columns is computed
explicitly. The parts combine by their log-sum-exps. Forward keeps, besides ``q, k, v``
and the output, each side region's own output and log-sum-exp (linear in the length),
which give the gradient of the two far scores. Unpadded attention on the CPU only;
:class:`~ablate.relative_blocks.ClippedVectorBlocks` is the general form.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ablate.relative_blocks import clipped_band

_flash_forward = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
_flash_backward = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward


class ClippedVectorRegions(torch.autograd.Function):
    """``softmax((q k^T + q A_K^T[c]) / sqrt(Dh)) (v + A_V[c])`` over blocks of query rows, band explicit, far keys fused.

    ``apply(q, k, v, key_vectors, value_vectors, max_distance, causal, block_rows)``:
    ``(B, H, L, Dh)`` x3 on the CPU, constant vectors ``(2k + 1, Dh)`` (``value_vectors``
    may be ``None``) -> ``(B, H, L, Dh)``. No padding.
    """

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_vectors: torch.Tensor,  # noqa: D102
                value_vectors: torch.Tensor | None, max_distance: int, causal: bool, block_rows: int) -> torch.Tensor:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        parts = _Parts(q, k, v, key_vectors, value_vectors, max_distance, causal)
        out = torch.empty_like(q)
        logsumexp = torch.empty(q.shape[:-1], dtype=parts.stats_dtype, device=q.device)  # (B, H, L)
        side_out = [torch.zeros_like(q), torch.zeros_like(q)]  # each far region's own softmax output
        side_logsumexp = [torch.full_like(logsumexp, -math.inf), torch.full_like(logsumexp, -math.inf)]
        for start, stop, keys in parts.ranges(block_rows):
            rows = slice(start, stop)
            scores = parts.scores(start, stop)
            probs, band_lo, band_hi, index = parts.band_logits(start, stop, keys, scores)
            row_max = probs.amax(-1, keepdim=True)
            row_sum = probs.sub_(row_max).exp_().sum(-1, keepdim=True)
            pieces = [((row_max + row_sum.log()).squeeze(-1).to(parts.stats_dtype),
                       parts.mix(probs.div_(row_sum), band_lo, band_hi, index))]
            for side, first, last, c in parts.sides(band_lo, band_hi, keys):
                side_out[side][:, :, rows], side_logsumexp[side][:, :, rows] = _flash_forward(
                    q[:, :, rows], k[:, :, first:last], v[:, :, first:last])
                shifted = side_out[side][:, :, rows]
                if parts.values is not None:
                    shifted = shifted + parts.values[c]
                pieces.append((side_logsumexp[side][:, :, rows] + scores[..., c], shifted))
            total = torch.logsumexp(torch.stack([piece_lse for piece_lse, _ in pieces]), dim=0)  # (B, H, rows)
            logsumexp[:, :, rows] = total
            out[:, :, rows] = sum((piece_lse - total).exp().unsqueeze(-1).to(q.dtype) * piece_out
                                  for piece_lse, piece_out in pieces)
        ctx.save_for_backward(q, k, v, out, logsumexp, *side_out, *side_logsumexp, key_vectors, value_vectors)
        ctx.max_distance, ctx.causal, ctx.block_rows = max_distance, causal, block_rows
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        q, k, v, out, logsumexp, *saved = ctx.saved_tensors
        side_out, side_logsumexp, (key_vectors, value_vectors) = saved[:2], saved[2:4], saved[4:]
        parts = _Parts(q, k, v, key_vectors, value_vectors, ctx.max_distance, ctx.causal)
        grad_out = grad_out.contiguous()
        grad_out_dot_out = (grad_out * out).sum(-1, keepdim=True)  # (B, H, L, 1)
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        flat_grad_k, flat_grad_v = grad_k.flatten(0, 1), grad_v.flatten(0, 1)
        for start, stop, keys in parts.ranges(ctx.block_rows):
            rows = slice(start, stop)
            block_q, block_grad_out, block_dot = q[:, :, rows], grad_out[:, :, rows], grad_out_dot_out[:, :, rows]
            scores = parts.scores(start, stop)
            probs, band_lo, band_hi, index = parts.band_logits(start, stop, keys, scores)
            probs.sub_(logsumexp[:, :, rows, None]).exp_()
            flat_grad_v[:, band_lo:band_hi].baddbmm_(probs.flatten(0, 1).transpose(1, 2), block_grad_out.flatten(0, 1))
            grad_logits = torch.matmul(block_grad_out, parts.v_t[..., band_lo:band_hi])
            if parts.values is not None:
                value_scores = block_grad_out @ parts.values.T  # (B, H, rows, 2k + 1)
                grad_logits.add_(value_scores.gather(-1, index.expand(*grad_logits.shape)))
            grad_logits.sub_(block_dot).mul_(probs)
            del probs
            grad_scores = torch.zeros_like(scores).scatter_add_(-1, index.expand(*grad_logits.shape), grad_logits)
            block_grad_q = torch.matmul(grad_logits, k[:, :, band_lo:band_hi]).mul_(parts.scale)
            flat_grad_k[:, band_lo:band_hi].baddbmm_(
                grad_logits.flatten(0, 1).transpose(1, 2), block_q.flatten(0, 1), alpha=parts.scale)
            for side, first, last, c in parts.sides(band_lo, band_hi, keys):
                shift = scores[..., c]  # (B, H, rows): the region's key term
                shifted_out, extra = out[:, :, rows], torch.zeros_like(shift)
                if parts.values is not None:  # the region's value term: dO . a_c
                    shifted_out, extra = shifted_out - parts.values[c], value_scores[..., c]
                region_q, region_k, region_v = _flash_backward(
                    block_grad_out, block_q, k[:, :, first:last], v[:, :, first:last], shifted_out.contiguous(),
                    (logsumexp[:, :, rows] - shift).contiguous(), 0.0, False)
                block_grad_q.add_(region_q)
                grad_k[:, :, first:last].add_(region_k)
                grad_v[:, :, first:last].add_(region_v)
                # The region's share of the row's probability and its logits' gradient summed over it.
                weight = (side_logsumexp[side][:, :, rows] + shift - logsumexp[:, :, rows]).exp().to(q.dtype)
                own = (block_grad_out * side_out[side][:, :, rows]).sum(-1)
                grad_scores[..., c] += weight * (own + extra - block_dot.squeeze(-1))
            grad_q[:, :, rows] = block_grad_q.add_(grad_scores @ parts.key_vectors, alpha=parts.scale)
        return grad_q, grad_k, grad_v, None, None, None, None, None


class _Parts:
    """What forward and backward share: layouts, the scale, a block's scores, band logits and band output."""

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_vectors: torch.Tensor,
                 value_vectors: torch.Tensor | None, max_distance: int, causal: bool) -> None:
        self.q, self.v, self.causal, self.distance = q, v, causal, max_distance
        self.scale = 1.0 / math.sqrt(q.shape[-1])
        self.stats_dtype = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        self.k_t = k.transpose(-1, -2).contiguous()  # (B, H, Dh, L)
        self.v_t = v.transpose(-1, -2).contiguous()
        self.key_vectors = key_vectors.to(q.dtype)  # (2k + 1, Dh)
        self.values = None if value_vectors is None else value_vectors.to(q.dtype)

    def ranges(self, block_rows: int) -> list[tuple[int, int, int]]:
        """``(start, stop, keys)`` per block; a causal block reads keys up to its last row."""
        length = self.q.shape[-2]
        stops = [min(start + block_rows, length) for start in range(0, length, block_rows)]
        return [(start, stop, stop if self.causal else length) for start, stop in zip(range(0, length, block_rows), stops)]

    def scores(self, start: int, stop: int) -> torch.Tensor:
        """The block's queries against every vector: ``(B, H, rows, 2k + 1)``."""
        return torch.matmul(self.q[:, :, start:stop] * self.scale, self.key_vectors.T)

    def band_logits(self, start: int, stop: int, keys: int,
                    scores: torch.Tensor) -> tuple[torch.Tensor, int, int, torch.Tensor]:
        """Logits of the block's band ``(B, H, rows, hi - lo)``, a fresh tensor, with ``lo``, ``hi`` and ``c`` there."""
        lo, hi, index = clipped_band(start, stop - start, 0, keys, self.distance, self.q.device)
        logits = torch.matmul(self.q[:, :, start:stop] * self.scale, self.k_t[..., lo:hi])
        logits.add_(scores.gather(-1, index.expand(*logits.shape)))
        if self.causal:
            future = torch.arange(lo, hi, device=logits.device) > torch.arange(start, stop, device=logits.device)[:, None]
            logits.masked_fill_(future, float("-inf"))
        return logits, lo, hi, index

    def mix(self, probs: torch.Tensor, lo: int, hi: int, index: torch.Tensor) -> torch.Tensor:
        """The band's output under its own normalisation, value term included: ``(B, H, rows, Dh)``."""
        out = torch.matmul(probs, self.v[:, :, lo:hi])
        if self.values is not None:
            per_distance = probs.new_zeros((*probs.shape[:-1], 2 * self.distance + 1))
            out.add_(per_distance.scatter_add_(-1, index.expand(*probs.shape), probs) @ self.values)
        return out

    def sides(self, lo: int, hi: int, keys: int) -> list[tuple[int, int, int, int]]:
        """The far regions ``(side, first key, last key, c)`` that hold keys: side 0 left of the band
        (``c = 0``), side 1 right of it (``c = 2k``)."""
        regions = [(0, 0, lo, 0), (1, hi, keys, 2 * self.distance)]
        return [region for region in regions if region[1] < region[2]]
