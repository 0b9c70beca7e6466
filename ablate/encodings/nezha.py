"""NEZHA functional relative positions (Wei et al. 2019): fixed sinusoids met by the queries."""

from __future__ import annotations

import math

import torch

from ablate.encodings.registry import ENCODINGS
from ablate.encodings.absolute import sinusoidal_table
from ablate.encodings.banded import BandedBias, spread_shifted
from ablate.encodings.base import (
    PositionalEncoding,
    ScoreMod,
    UnsupportedLengthError,
    gather_positions,
    is_contiguous_range,
    relative_positions,
)


def _require_integer(*positions: torch.Tensor) -> None:
    # Clipped distances index a table: fractional positions have no row.
    if any(p.dtype.is_floating_point for p in positions):
        raise UnsupportedLengthError("nezha needs integer positions (no interpolation)")


@ENCODINGS.register("nezha")
class NezhaRelative(PositionalEncoding):
    """Shaw-style relative positions with NEZHA's fixed sinusoidal vectors.

    ``bias[b, h, i, j] = q[b, h, i] . a[clip(j - i, -k, k)] / sqrt(head_dim)``, where the
    ``2k + 1`` vectors ``a`` of size ``head_dim`` are sinusoids, as in NEZHA's code (HF
    ``NezhaRelativePositionsEncoding``, huawei-noah NEZHA-TensorFlow): row ``r = clip(j - i) + k``
    is the interleaved sin/cos encoding of ``r``. (The paper writes the sinusoid of ``j - i``;
    the code's shift by ``k`` rotates every sin/cos pair by a fixed angle. We follow the code.)

    The bias depends on the queries, so ``bias_needs_query`` is set and the model calls it
    in every layer. The ``(L, L, head_dim)`` tensor of the reference code is never built:
    the queries meet the ``2k + 1`` distinct vectors once, ``(B, H, Lq, 2k + 1)``, and each
    pair gathers its entry. Not included: NEZHA's (and Shaw et al.'s) value-side term
    ``sum_j p_ij a_ij``, because the hooks add to the logits only.

    Args:
        max_relative_position: the clipping distance ``k`` (NEZHA's config: 64).
    """

    family = "query-bias"

    bias_needs_query = True

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False, max_relative_position: int = 64,
    ) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        if max_relative_position < 1:
            raise ValueError(f"nezha: max_relative_position must be >= 1, got {max_relative_position}")
        if self.head_dim % 2:
            raise ValueError(f"nezha: sinusoidal vectors need an even head_dim, got {self.head_dim}")
        self.max_relative_position = max_relative_position
        vectors = sinusoidal_table(torch.arange(2 * max_relative_position + 1), self.head_dim)
        self.register_buffer("relative_vectors", vectors, persistent=False)  # (2k + 1, Dh)

    def _index(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        _require_integer(q_positions, k_positions)
        k = self.max_relative_position
        return relative_positions(q_positions, k_positions).clamp(-k, k) + k  # (..., Lq, Lk)

    def _query_scores(self, q: torch.Tensor | None, length: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """``q . a_r / sqrt(head_dim)`` for all ``2k + 1`` vectors: ``(B, H, Lq, 2k + 1)`` (into ``out``)."""
        if q is None:
            raise ValueError("nezha's bias depends on the queries: pass q (B, H, Lq, head_dim)")
        if q.dim() != 4 or q.shape[-1] != self.head_dim or q.shape[-2] != length:
            raise ValueError(
                f"nezha: q must be (B, H, Lq={length}, head_dim={self.head_dim}), got {tuple(q.shape)}"
            )
        # Scale the (Dh, 2k + 1) matrix, not the (B, H, Lq, 2k + 1) product (~14 ms per layer at L=2048).
        vectors = (self.relative_vectors.T / math.sqrt(self.head_dim)).to(q.dtype)  # (Dh, 2k + 1)
        return torch.matmul(q, vectors, out=out)

    def bias(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, H, Lq, Lk)`` for positions ``(L,)`` or ``(B, L)`` and queries ``(B, H, Lq, Dh)``."""
        scores = self._query_scores(q, q_positions.shape[-1])  # (B, H, Lq, 2k + 1)
        if q_positions is k_positions and is_contiguous_range(q_positions):
            return self._banded(scores)
        index = self._index(q_positions, k_positions).unsqueeze(-3)  # (1|B, 1, Lq, Lk)
        batch, heads, length = scores.shape[:3]
        index = index.expand(batch, heads, length, index.shape[-1])
        return scores.gather(-1, index)

    def _banded(self, scores: torch.Tensor) -> torch.Tensor:
        """The bias for contiguous positions without an ``(B, H, L, L)`` index tensor.

        :class:`~ablate.encodings.banded.BandedBias` spreads the ``2k + 1`` scores of each
        query over its row (a gather with an expanded int64 index reads 8 bytes per logit
        and was ~4x slower at L=2048) and sums the gradient back per distance.
        """
        return BandedBias.apply(scores, self.max_relative_position)  # (B, H, L, L)

    def attention_bias(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:meth:`bias`; in inference over contiguous positions, each row less its far-left value.

        Softmax ignores the per-row shift, and the shifted form is cheaper to write
        (:func:`~ablate.encodings.banded.spread_shifted`). Scores and bias go into
        workspaces reused across layers and calls: a fresh ``(B, H, L, L)`` tensor costs
        page faults on every layer (~250 ms at B=8, L=2048 on CPU), and each layer's
        attention has consumed the previous contents before the next call. Never in
        training, where attention keeps its mask for backward.
        """
        contiguous = q_positions is k_positions and is_contiguous_range(q_positions)
        if q is None or torch.is_grad_enabled() or not contiguous:
            return self.bias(q_positions, k_positions, q)
        batch, heads, length = q.shape[0], q.shape[1], q_positions.shape[-1]
        shape = (batch, heads, length, length)
        workspace = getattr(self, "_workspace", None)
        if workspace is None or workspace.shape != shape or workspace.dtype != q.dtype or workspace.device != q.device:
            rows = torch.arange(length, device=q.device)
            self._right_of_diagonal = (rows.unsqueeze(0) > rows.unsqueeze(1)).to(q.dtype)  # (L, L): j > i
            self._scores = torch.empty((batch, heads, length, 2 * self.max_relative_position + 1), dtype=q.dtype,
                                       device=q.device)
            workspace = self._workspace = torch.zeros(shape, dtype=q.dtype, device=q.device)  # far left: 0
        scores = self._query_scores(q, length, out=self._scores)  # (B, H, L, 2k + 1)
        return spread_shifted(scores, self.max_relative_position, self._right_of_diagonal, workspace)

    def score_mod(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> ScoreMod:
        """FlexAttention form of :meth:`bias`; captures only the ``(B, H, Lq, 2k + 1)`` scores."""
        scores = self._query_scores(q, q_positions.shape[-1])
        _require_integer(q_positions, k_positions)
        k = self.max_relative_position

        def score_mod(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            relative = gather_positions(k_positions, b, kv_idx) - gather_positions(q_positions, b, q_idx)
            return score + scores[b, h, q_idx, relative.clamp(-k, k) + k].to(score.dtype)

        return score_mod

    def untrained_note(self, train_length: int, eval_length: int) -> str | None:
        """Name the relative vectors (fixed, not learned) that training never used."""
        k = self.max_relative_position
        if eval_length <= train_length or train_length > k:
            return None
        return (
            f"nezha relative vectors for distances {train_length}..{min(eval_length - 1, k)} never occurred "
            f"in training (they are fixed sinusoids, not learned)"
        )
