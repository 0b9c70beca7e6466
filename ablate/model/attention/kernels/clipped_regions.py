"""A relative term of the clipped distance (T5, NEZHA), with the far keys on the fused kernel.

For keys at least ``k`` to the left of a query (``c = 0``), or at least ``k`` to its
right (``c = 2k``), the bias is one number per query row (T5's far bucket
``table[h, c]``, NEZHA's ``q_i . a_c / sqrt(Dh)``) and the value term one vector
(``a_c``). Each such region is plain causal attention shifted by ``k`` (the right one on
reversed sequences) with a per-row shift, so the fused CPU kernel runs it for the whole
sequence at once, forward and backward: backward is given the whole row's log-sum-exp
less the shift, and the output less ``a_c``, which makes its row term the right one.
Only the band ``|j - i| < k`` is computed explicitly, a block of query rows at a time.
The three parts combine by their log-sum-exps. Forward keeps, besides ``q, k, v`` and
the output, each far region's own output and log-sum-exp (linear in the length), which
give the gradient of the far shifts. Unpadded attention on the CPU only;
:class:`~ablate.model.attention.kernels.clipped_vector_blocks.ClippedVectorBlocks` (NEZHA) and
:class:`~ablate.model.attention.kernels.static_bias_blocks.StaticBiasBlocks` (T5) are the general forms.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ablate.model.attention.clipped import add_clipped, clipped_band, mix_clipped, require_constant, sum_clipped
from ablate.model.attention.kernels.registry import Kernel, register_kernel
from ablate.model.attention.masks import block_ranges
from ablate.model.attention.plan import AttentionPlan
from ablate.model.attention.private_ops import flash_attention, flash_attention_backward
from ablate.model.attention.softmax_backward import SoftmaxBackward
from ablate.model.attention.traits import Case, Traits, Tuning, over_blocks


class ClippedRelativeRegions(torch.autograd.Function):
    """``softmax(q k^T / sqrt(Dh) + T[c] + q A_K^T[c] / sqrt(Dh)) (v + A_V[c])`` over blocks of query rows,
    band explicit, far keys fused.

    ``apply(q, k, v, table, key_vectors, value_vectors, max_distance, causal, block_rows)``:
    ``(B, H, L, Dh)`` x3 on the CPU, a per-head ``table`` ``(H, 2k + 1)`` (differentiable)
    and constant vectors ``(2k + 1, Dh)``, each of the three possibly ``None``
    -> ``(B, H, L, Dh)``. No padding.
    """

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor | None,  # noqa: D102
                key_vectors: torch.Tensor | None, value_vectors: torch.Tensor | None, max_distance: int, causal: bool,
                block_rows: int) -> torch.Tensor:
        require_constant(key_vectors, value_vectors)
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        parts = _Parts(q, k, v, table, key_vectors, value_vectors, max_distance, causal)
        far = [parts.far_attention(c) for c in parts.far_distances]  # (own output, own log-sum-exp) per region
        out = torch.empty_like(q)
        logsumexp = torch.empty(q.shape[:-1], dtype=parts.stats_dtype, device=q.device)  # (B, H, L)
        for start, stop, keys in block_ranges(parts.length, block_rows, causal):
            rows = slice(start, stop)
            probs, lo, hi = parts.band_logits(start, stop, keys)
            row_max = probs.amax(-1, keepdim=True)
            row_sum = probs.sub_(row_max).exp_().sum(-1, keepdim=True)
            pieces = [((row_max + row_sum.log()).squeeze(-1).to(parts.stats_dtype),
                       mix_clipped(probs.div_(row_sum), v[:, :, lo:hi], parts.values, start, max_distance, lo))]
            for c, (far_out, far_logsumexp) in zip(parts.far_distances, far):
                pieces.append((far_logsumexp[:, :, rows] + parts.shift[c][:, :, rows],
                               parts.with_value(far_out[:, :, rows], c)))
            total = torch.logsumexp(torch.stack([piece_lse for piece_lse, _ in pieces]), dim=0)  # (B, H, rows)
            logsumexp[:, :, rows] = total
            out[:, :, rows] = sum((piece_lse - total).exp().unsqueeze(-1).to(q.dtype) * piece_out
                                  for piece_lse, piece_out in pieces)
        ctx.save_for_backward(q, k, v, out, logsumexp, table, key_vectors, value_vectors,
                              *(tensor for pair in far for tensor in pair))
        ctx.max_distance, ctx.causal, ctx.block_rows = max_distance, causal, block_rows
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        q, k, v, out, logsumexp, table, key_vectors, value_vectors, *far_saved = ctx.saved_tensors
        parts = _Parts(q, k, v, table, key_vectors, value_vectors, ctx.max_distance, ctx.causal)
        gradients = SoftmaxBackward(q, k, v, out, grad_out)
        grad_table = None if table is None or not ctx.needs_input_grad[3] else torch.zeros_like(table)
        for number, c in enumerate(parts.far_distances):
            far_out, far_logsumexp = far_saved[2 * number: 2 * number + 2]
            grad_shift = parts.far_backward(c, gradients, out, logsumexp, far_out, far_logsumexp)  # (B, H, L)
            if parts.key_vectors is not None:
                gradients.grad_q.add_(grad_shift.unsqueeze(-1) * parts.key_vectors[c], alpha=parts.scale)
            if grad_table is not None:
                grad_table[:, c] += grad_shift.sum((0, 2)).to(grad_table.dtype)
        for start, stop, keys in block_ranges(parts.length, ctx.block_rows, ctx.causal):
            probs, lo, hi = parts.band_logits(start, stop, keys)
            probs.sub_(logsumexp[:, :, start:stop, None]).exp_()
            grad_probs = gradients.grad_probs(start, stop, lo, hi)
            if parts.values is not None:  # dO . (v_j + a_c)
                add_clipped(grad_probs, gradients.grad_out[:, :, start:stop] @ parts.values.T, start, parts.distance,
                            lo)
            grad_logits = gradients.add(start, stop, lo, hi, probs, grad_probs)
            del probs
            if parts.key_vectors is None and grad_table is None:
                continue
            grad_scores = sum_clipped(grad_logits, start, parts.distance, lo)  # (B, H, rows, 2k + 1)
            if parts.key_vectors is not None:
                gradients.grad_q[:, :, start:stop].add_(grad_scores @ parts.key_vectors, alpha=parts.scale)
            if grad_table is not None:
                grad_table += grad_scores.sum((0, 2)).to(grad_table.dtype)
        return gradients.grad_q, gradients.grad_k, gradients.grad_v, grad_table, None, None, None, None, None


class _Parts:
    """What forward and backward share: layouts, the scale, the far regions, a block's band."""

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor | None,
                 key_vectors: torch.Tensor | None, value_vectors: torch.Tensor | None, max_distance: int,
                 causal: bool) -> None:
        self.q, self.k, self.v, self.causal, self.distance = q, k, v, causal, max_distance
        self.length = q.shape[-2]
        self.scale = 1.0 / math.sqrt(q.shape[-1])
        self.stats_dtype = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        self.k_t = k.transpose(-1, -2).contiguous()  # (B, H, Dh, L)
        self.table = None if table is None else table.to(q.dtype)  # (H, 2k + 1)
        self.key_vectors = None if key_vectors is None else key_vectors.to(q.dtype)  # (2k + 1, Dh)
        self.values = None if value_vectors is None else value_vectors.to(q.dtype)
        # The far regions by their clipped distance: c = 0 (keys k or more to the left) and, without
        # causality, c = 2k (k or more to the right).
        far_exists = self.length > max_distance
        self.far_distances = [c for c in (0, 2 * max_distance) if far_exists and not (causal and c > 0)]
        self.shift = {c: self._far_shift(c) for c in self.far_distances}  # each (B, H, L)

    def _far_shift(self, c: int) -> torch.Tensor:
        """The bias of every key in the far region ``c``, per query row: ``(B, H, L)`` (possibly expanded)."""
        batch, heads = self.q.shape[:2]
        shift = self.q.new_zeros((1, heads, 1))
        if self.table is not None:
            shift = shift + self.table[:, c, None]
        if self.key_vectors is not None:
            shift = shift + torch.matmul(self.q * self.scale, self.key_vectors[c])
        return shift.expand(batch, heads, self.length).to(self.stats_dtype)

    def _region(self, tensor: torch.Tensor, c: int, queries: bool) -> torch.Tensor:
        """A region's queries (rows ``k..``) or keys (``..L-k``) as causal attention; side ``2k`` reversed."""
        if c > 0:
            tensor = tensor.flip(2)
        return tensor[:, :, self.distance:] if queries else tensor[:, :, : self.length - self.distance]

    def _to_rows(self, region: torch.Tensor, c: int, queries: bool, fill: float) -> torch.Tensor:
        """A region's per-query (or per-key) tensor back in sequence order, ``fill`` where the region has none."""
        full = region.new_full((*region.shape[:2], self.length, *region.shape[3:]), fill)
        offset = self.distance if queries else 0
        full[:, :, offset: offset + region.shape[2]] = region
        return full.flip(2) if c > 0 else full

    def far_attention(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The far region's own softmax output ``(B, H, L, Dh)`` and log-sum-exp ``(B, H, L)``, without its shift
        (``0`` and ``-inf`` in rows that have no key there)."""
        out, logsumexp = flash_attention(*(self._region(t, c, queries) for t, queries in
                                           ((self.q, True), (self.k, False), (self.v, False))), causal=True)
        return self._to_rows(out, c, True, 0.0), self._to_rows(logsumexp, c, True, -math.inf)

    def with_value(self, out: torch.Tensor, c: int) -> torch.Tensor:
        """A far region's output with its value term (``a_c`` on every key there)."""
        return out if self.values is None else out + self.values[c]

    def far_backward(self, c: int, gradients: SoftmaxBackward, out: torch.Tensor, logsumexp: torch.Tensor,
                     far_out: torch.Tensor, far_logsumexp: torch.Tensor) -> torch.Tensor:
        """Add the far region's share of the q/k/v gradients; return the gradient of its shift ``(B, H, L)``."""
        grad_out = gradients.grad_out
        # The kernel's row term is dO . out; less a_c it is the region's dO . (v_j + a_c) - D_i.
        shifted_out = out if self.values is None else out - self.values[c]
        region = [self._region(t, c, queries).contiguous() for t, queries in (
            (grad_out, True), (self.q, True), (self.k, False), (self.v, False), (shifted_out, True),
            (logsumexp - self.shift[c], True))]
        region_q, region_k, region_v = flash_attention_backward(*region, causal=True)
        gradients.grad_q.add_(self._to_rows(region_q, c, True, 0.0))
        gradients.grad_k.add_(self._to_rows(region_k, c, False, 0.0))
        gradients.grad_v.add_(self._to_rows(region_v, c, False, 0.0))
        # The region's share of each row's probability, and its logits' gradient summed over the region.
        weight = (far_logsumexp + self.shift[c] - logsumexp).exp().to(self.q.dtype)
        extra = 0.0 if self.values is None else grad_out @ self.values[c]  # dO . a_c
        return weight * ((grad_out * far_out).sum(-1) + extra - gradients.grad_out_dot_out.squeeze(-1))

    def band_logits(self, start: int, stop: int, keys: int) -> tuple[torch.Tensor, int, int]:
        """Logits of the block's band ``|j - i| < k`` ``(B, H, rows, hi - lo)`` (``-inf`` outside it, and past a
        causal query), a fresh tensor, with its columns ``lo:hi``."""
        lo, hi, index = clipped_band(start, stop - start, 0, keys, self.distance, self.q.device)
        block_q = self.q[:, :, start:stop] * self.scale
        logits = torch.matmul(block_q, self.k_t[..., lo:hi])
        if self.table is not None:
            logits.add_(self.table[:, index])  # (H, rows, hi - lo)
        if self.key_vectors is not None:
            add_clipped(logits, torch.matmul(block_q, self.key_vectors.T), start, self.distance, lo)
        outside = (index == 0) | (index == 2 * self.distance) if self.length > self.distance else None
        if self.causal:
            future = index > self.distance
            outside = future if outside is None else outside | future
        return (logits if outside is None else logits.masked_fill_(outside, float("-inf"))), lo, hi


def _applies(traits: Traits, case: Case, tuning: Tuning) -> bool:
    far_keys_dominate = (traits.clipped_distance is not None
                         and case.length > tuning.far_keys_length_per_distance * traits.clipped_distance)
    return (over_blocks(traits, case, tuning) and far_keys_dominate and case.contiguous and not case.padded
            and case.device == "cpu")


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    relative = plan.encoding.clipped_relative()  # present: _applies
    return ClippedRelativeRegions.apply(q, k, v, relative.table, relative.keys, relative.values, relative.max_distance,
                                        plan.causal, plan.path.rows)


register_kernel(Kernel(
    name="clipped-regions", function=ClippedRelativeRegions, kind="blocks", order=10,
    when=("over blocks, a term of the clipped distance (T5, NEZHA), contiguous unpadded positions on the CPU, "
          "longer than far_keys_length_per_distance clipping distances"),
    applies=_applies, attend=_attend,
))
