"""Shaw-style clipped relative vectors over blocks of query rows, as one autograd node (NEZHA).

Shaw et al. (2018) and NEZHA add ``q_i . a^K_c / sqrt(Dh)`` to the logits and
``sum_j p_ij a^V_c`` to the output, with one vector per clipped distance
``c = clip(j - i, -k, k) + k``. The queries meet the ``2k + 1`` key vectors once per
block, ``(B, H, rows, 2k + 1)``, and the block's logits gain each pair's entry
(:mod:`ablate.model.attention.clipped`); the value term sums each row's probabilities per
clipped distance. Backward recomputes each block from ``q, k, v``, the output and the
rows' log-sum-exp, the only tensors kept: no ``(B, H, L, L)`` tensor, and no graph per
block. Contiguous positions, padding allowed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ablate.model.attention.clipped import add_clipped, mix_clipped, require_constant, sum_clipped
from ablate.model.attention.kernels.registry import Kernel, register_kernel
from ablate.model.attention.masks import block_allowed, block_ranges
from ablate.model.attention.plan import AttentionPlan
from ablate.model.attention.softmax_backward import SoftmaxBackward
from ablate.model.attention.traits import Case, Traits, Tuning, over_blocks


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
        gradients = SoftmaxBackward(q, k, v, out, grad_out)
        for start, stop, keys in block_ranges(q.shape[-2], ctx.block_rows, ctx.causal):
            probs = blocks.logits(start, stop, keys).sub_(logsumexp[:, :, start:stop, None]).exp_()
            grad_probs = gradients.grad_probs(start, stop, 0, keys)  # dO . (v_j + A_V[c])
            if blocks.value_vectors is not None:
                add_clipped(grad_probs, gradients.grad_out[:, :, start:stop] @ blocks.value_vectors.T, start,
                            blocks.distance)
            grad_logits = gradients.add(start, stop, 0, keys, probs, grad_probs)
            del probs
            per_distance = sum_clipped(grad_logits, start, blocks.distance)  # (B, H, rows, 2k + 1)
            gradients.grad_q[:, :, start:stop].add_(per_distance @ blocks.key_vectors, alpha=blocks.scale)
        return gradients.grad_q, gradients.grad_k, gradients.grad_v, None, None, None, None, None, None


class _Blocks:
    """What forward and backward share: the layouts, the scale and one block's logits and output."""

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_vectors: torch.Tensor,
                 value_vectors: torch.Tensor | None, max_distance: int, padding_mask: torch.Tensor | None,
                 causal: bool) -> None:
        self.q, self.v, self.padding_mask, self.causal = q, v, padding_mask, causal
        self.scale = 1.0 / math.sqrt(q.shape[-1])
        self.k_t = k.transpose(-1, -2).contiguous()  # (B, H, Dh, L)
        self.key_vectors = key_vectors.to(q.dtype)  # (2k + 1, Dh)
        self.key_vectors_t = self.key_vectors.T
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


def _applies(traits: Traits, case: Case, tuning: Tuning) -> bool:
    return over_blocks(traits, case, tuning) and traits.clipped_vectors_only and case.contiguous


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    relative = plan.encoding.clipped_relative()  # with keys and no table: _applies
    return ClippedVectorBlocks.apply(q, k, v, relative.keys, relative.values, relative.max_distance, plan.padding_mask,
                                     plan.causal, plan.path.rows)


register_kernel(Kernel(
    name="clipped-vector-blocks", function=ClippedVectorBlocks, kind="blocks", order=20,
    when="over blocks, a term of clipped relative vectors without a per-head table (NEZHA), contiguous positions",
    applies=_applies, attend=_attend,
))
