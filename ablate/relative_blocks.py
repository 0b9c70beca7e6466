"""Attention with Shaw-style clipped relative vectors over blocks of query rows, as one autograd node.

Shaw et al. (2018) and NEZHA add ``q_i . a^K_c / sqrt(Dh)`` to the logits and
``sum_j p_ij a^V_c`` to the output, with one vector per clipped distance
``c = clip(j - i, -k, k) + k``. The queries meet the ``2k + 1`` key vectors once per
block, ``(B, H, rows, 2k + 1)``, and the block's logits gain each pair's entry; the
value term sums each row's probabilities per clipped distance. Left of a block's
band every pair has ``c = 0``, right of it ``c = 2k``, so only the band
(``rows + 2k`` columns) is gathered or scattered; the rest is one broadcast add or one
row sum.

Backward recomputes each block from ``q, k, v``, the output and the rows'
log-sum-exp, the only tensors kept: no ``(B, H, L, L)`` tensor, and no graph per block.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ablate.block_masks import block_allowed, block_ranges


def clipped_band(start: int, rows: int, first_key: int, keys: int, k: int,
                 device: torch.device) -> tuple[int, int, torch.Tensor]:
    """Columns ``lo:hi`` (of keys ``first_key:first_key+keys``) where some row of ``start:start+rows`` is
    within ``k`` of the key, and ``c`` there, ``(rows, hi - lo)``.

    Columns before ``lo`` are at ``c = 0`` for every row of the block, from ``hi`` on at ``c = 2k``.
    """
    lo = min(max(0, start - k + 1 - first_key), keys)
    hi = max(min(keys, start + rows + k - 1 - first_key), lo)
    columns = torch.arange(first_key + lo, first_key + hi, device=device)
    queries = torch.arange(start, start + rows, device=device).unsqueeze(-1)
    return lo, hi, (columns - queries).clamp(-k, k) + k


def add_clipped(logits: torch.Tensor, table: torch.Tensor, start: int, k: int, first_key: int = 0) -> torch.Tensor:
    """``logits[..., r, j] += table[..., r, clip(first_key + j - start - r, -k, k) + k]`` in place.

    ``logits``: ``(B, H, rows, Lk)``; ``table``: ``(B, H, rows, 2k + 1)``.
    """
    lo, hi, index = clipped_band(start, logits.shape[-2], first_key, logits.shape[-1], k, logits.device)
    logits[..., :lo].add_(table[..., :1])
    logits[..., hi:].add_(table[..., 2 * k :])
    logits[..., lo:hi].add_(table.gather(-1, index.expand(*table.shape[:-1], hi - lo)))
    return logits


def sum_clipped(dense: torch.Tensor, start: int, k: int, first_key: int = 0) -> torch.Tensor:
    """Row sums per clipped distance: ``(B, H, rows, Lk) -> (B, H, rows, 2k + 1)``, ``out[..., r, c] = sum_j [c(r, j) = c] dense[..., r, j]``."""
    lo, hi, index = clipped_band(start, dense.shape[-2], first_key, dense.shape[-1], k, dense.device)
    out = dense.new_zeros((*dense.shape[:-1], 2 * k + 1))
    out.scatter_add_(-1, index.expand(*dense.shape[:-1], hi - lo), dense[..., lo:hi])
    out[..., 0] += dense[..., :lo].sum(-1)
    out[..., 2 * k] += dense[..., hi:].sum(-1)
    return out


def mix_clipped(probs: torch.Tensor, v: torch.Tensor, values: torch.Tensor | None, start: int, k: int,
                first_key: int = 0) -> torch.Tensor:
    """``probs @ v`` plus ``sum_j probs[..., r, j] values[c(r, j)]``: ``(B, H, rows, Lk) -> (B, H, rows, Dh)``.

    ``v``: the keys' values ``(B, H, Lk, Dh)`` (keys from ``first_key``); ``values``: ``(2k + 1, Dh)`` or ``None``.
    """
    out = torch.matmul(probs, v)
    return out if values is None else out.add_(sum_clipped(probs, start, k, first_key) @ values)


def require_constant(*vectors: torch.Tensor | None) -> None:
    """Refuse trained relative vectors: these paths give them no gradient."""
    if any(vector is not None and vector.requires_grad for vector in vectors):
        raise ValueError("clipped relative vectors are constants here; trained vectors need their own gradients")


class ClippedVectorBlocks(torch.autograd.Function):
    """``softmax((q k^T + q A_K^T[c]) / sqrt(Dh)) (v + A_V[c])`` over blocks of query rows, for contiguous positions.

    ``apply(q, k, v, key_vectors, value_vectors, max_distance, padding_mask, causal, block_rows)``:
    ``(B, H, L, Dh)`` x3, vectors ``(2k + 1, Dh)`` (``value_vectors`` may be ``None``; both
    are constants, not trained), ``padding_mask`` ``(B, L)`` bool or ``None`` -> ``(B, H, L, Dh)``.
    """

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_vectors: torch.Tensor,  # noqa: D102
                value_vectors: torch.Tensor | None, max_distance: int, padding_mask: torch.Tensor | None,
                causal: bool, block_rows: int) -> torch.Tensor:
        require_constant(key_vectors, value_vectors)
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        blocks = _Blocks(q, k, v, key_vectors, value_vectors, max_distance, padding_mask, causal)
        out = torch.empty_like(q)
        logsumexp = q.new_empty(q.shape[:-1])  # (B, H, L)
        for start, stop, keys in block_ranges(q.shape[-2], block_rows, causal):
            probs = blocks.logits(start, stop, keys)
            row_max = probs.amax(-1, keepdim=True)
            row_sum = probs.sub_(row_max).exp_().sum(-1, keepdim=True)
            probs.div_(row_sum)
            logsumexp[:, :, start:stop] = (row_max + row_sum.log()).squeeze(-1)
            out[:, :, start:stop] = blocks.mix(probs, start, stop, keys)
        ctx.save_for_backward(q, k, v, out, logsumexp, key_vectors, value_vectors, padding_mask)
        ctx.max_distance, ctx.causal, ctx.block_rows = max_distance, causal, block_rows
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        q, k, v, out, logsumexp, key_vectors, value_vectors, padding_mask = ctx.saved_tensors
        blocks = _Blocks(q, k, v, key_vectors, value_vectors, ctx.max_distance, padding_mask, ctx.causal)
        distance = ctx.max_distance
        grad_out = grad_out.contiguous()
        grad_out_dot_out = (grad_out * out).sum(-1, keepdim=True)  # (B, H, L, 1)
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for start, stop, keys in block_ranges(q.shape[-2], ctx.block_rows, ctx.causal):
            probs = blocks.logits(start, stop, keys).sub_(logsumexp[:, :, start:stop, None]).exp_()
            block_grad_out = grad_out[:, :, start:stop]
            grad_v.flatten(0, 1)[:, :keys].baddbmm_(probs.flatten(0, 1).transpose(1, 2), block_grad_out.flatten(0, 1))
            grad_logits = torch.matmul(block_grad_out, blocks.v_t[..., :keys])  # grad of probs: dO . (v_j + A_V[c])
            if value_vectors is not None:
                add_clipped(grad_logits, block_grad_out @ value_vectors.T.to(q.dtype), start, distance)
            grad_logits.sub_(grad_out_dot_out[:, :, start:stop]).mul_(probs)
            del probs
            per_distance = sum_clipped(grad_logits, start, distance)  # (B, H, rows, 2k + 1)
            block_q = torch.matmul(grad_logits, k[:, :, :keys]).add_(per_distance @ key_vectors.to(q.dtype))
            grad_q[:, :, start:stop] = block_q.mul_(blocks.scale)
            grad_k.flatten(0, 1)[:, :keys].baddbmm_(
                grad_logits.flatten(0, 1).transpose(1, 2), q[:, :, start:stop].flatten(0, 1), alpha=blocks.scale)
        return grad_q, grad_k, grad_v, None, None, None, None, None, None


class _Blocks:
    """What forward and backward share: the layouts, the scale and one block's logits and output."""

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_vectors: torch.Tensor,
                 value_vectors: torch.Tensor | None, max_distance: int, padding_mask: torch.Tensor | None,
                 causal: bool) -> None:
        self.q, self.v, self.padding_mask, self.causal = q, v, padding_mask, causal
        self.scale = 1.0 / math.sqrt(q.shape[-1])
        self.k_t = k.transpose(-1, -2).contiguous()  # (B, H, Dh, L)
        self.v_t = v.transpose(-1, -2).contiguous()
        self.key_vectors_t = key_vectors.T.to(q.dtype)  # (Dh, 2k + 1)
        self.value_vectors = None if value_vectors is None else value_vectors.to(q.dtype)
        self.distance = max_distance

    def logits(self, start: int, stop: int, keys: int) -> torch.Tensor:
        """The block's masked logits ``(B, H, rows, keys)``, a fresh tensor."""
        q = self.q[:, :, start:stop] * self.scale
        logits = add_clipped(torch.matmul(q, self.k_t[..., :keys]), q @ self.key_vectors_t, start, self.distance)
        allowed = block_allowed(self.padding_mask, causal=self.causal, start=start, stop=stop, keys=keys,
                                device=logits.device)
        return logits if allowed is None else logits.masked_fill_(~allowed, float("-inf"))

    def mix(self, probs: torch.Tensor, start: int, stop: int, keys: int) -> torch.Tensor:
        """``probs @ v`` plus the value vectors' term: ``(B, H, rows, Dh)``."""
        return mix_clipped(probs, self.v[:, :, :keys], self.value_vectors, start, self.distance)
