"""A relative term of the clipped distance alone, stated once: :meth:`ClippedBias.clipped_relative`.

T5 (a learned value per head and bucket, the bucket a function of the clipped distance)
and NEZHA (sinusoidal vectors met by the queries, on keys and values) state their
mathematics as one :class:`~ablate.model.encodings.base.ClippedRelative`. The dense bias, the
FlexAttention ``score_mod`` and the value term are derived from it here; attention's
clipped kernels take it as it is (:mod:`ablate.model.attention.kernels`).
"""

from __future__ import annotations

import math

import torch

from ablate.model.encodings.banded import Workspace, spread_shifted
from ablate.model.encodings.base import (
    ClippedRelative,
    PositionalEncoding,
    ScoreMod,
    UnsupportedLengthError,
    bias_from_distances,
    gather_positions,
    is_contiguous_range,
    relative_positions,
)


class ClippedBias(PositionalEncoding):
    """Base of relative terms of ``c = clip(j - i, -k, k) + k``; subclasses implement :meth:`clipped_relative`.

    The bias is ``table[h, c] + q_i . keys[c] / sqrt(Dh)`` and the value term
    ``sum_j p_ij values[c]`` (see :class:`~ablate.model.encodings.base.ClippedRelative`).
    """

    def __init__(self, *, d_model: int, num_heads: int, causal: bool = False) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        self._workspace = Workspace()

    def clipped_relative(self) -> ClippedRelative:
        """The term's mathematics, from the current parameters."""
        raise NotImplementedError(f"{type(self).__name__} must implement clipped_relative()")

    def bias(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(H, Lq, Lk)`` (a table alone, positions ``(L,)``) or ``(B, H, Lq, Lk)``.

        Vectors met by the queries need ``q`` ``(B, H, Lq, Dh)``. In inference over one
        contiguous range (queries = keys) their part is each row less its far-left value,
        in a reused workspace (:mod:`ablate.model.encodings.banded`); exact otherwise.
        """
        require_integer(q_positions, k_positions)
        relative = self.clipped_relative()
        dense = None
        if relative.table is not None:
            table, k = relative.table, relative.max_distance
            dense = bias_from_distances(lambda distance: table[:, distance.clamp(-k, k) + k], q_positions, k_positions)
        if relative.keys is not None:
            keyed = self._keyed_bias(relative, q_positions, k_positions, q)
            dense = keyed if dense is None else dense + keyed
        if dense is None:
            raise ValueError(f"{type(self).__name__}: a clipped relative term needs a table or key vectors")
        return dense

    def _keyed_bias(self, relative: ClippedRelative, q_positions: torch.Tensor, k_positions: torch.Tensor,
                    q: torch.Tensor | None) -> torch.Tensor:
        """``q_i . keys[c] / sqrt(Dh)`` at every pair: ``(B, H, Lq, Lk)``."""
        k, length = relative.max_distance, q_positions.shape[-1]
        contiguous = q_positions is k_positions and is_contiguous_range(q_positions)
        if contiguous and q is not None and not torch.is_grad_enabled():
            space = self._workspace.get(q.shape[0], q.shape[1], length, k, q)
            scores = query_scores(q, relative, length, self.head_dim, out=space.scores)  # (B, H, L, 2k + 1)
            return spread_shifted(scores, k, space.right_of_diagonal, space.bias)
        scores = query_scores(q, relative, length, self.head_dim)  # (B, H, Lq, 2k + 1)
        index = clipped_index(q_positions, k_positions, k).unsqueeze(-3)  # (1|B, 1, Lq, Lk)
        batch, heads = scores.shape[:2]
        return scores.gather(-1, index.expand(batch, heads, length, index.shape[-1]))

    def score_mod(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> ScoreMod:
        """FlexAttention form of :meth:`bias`; captures the ``(H, 2k + 1)`` table and the ``(B, H, Lq, 2k + 1)`` scores."""
        require_integer(q_positions, k_positions)
        relative = self.clipped_relative()
        k, table = relative.max_distance, relative.table
        scores = None if relative.keys is None else query_scores(q, relative, q_positions.shape[-1], self.head_dim)

        def score_mod(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            distance = gather_positions(k_positions, b, kv_idx) - gather_positions(q_positions, b, q_idx)
            c = distance.clamp(-k, k) + k
            if table is not None:
                score = score + table[h, c].to(score.dtype)
            if scores is not None:
                score = score + scores[b, h, q_idx, c].to(score.dtype)
            return score

        return score_mod


def require_integer(*positions: torch.Tensor) -> None:
    """Clipped distances index a table: fractional positions (interpolation) have no row."""
    if any(p.dtype.is_floating_point for p in positions):
        raise UnsupportedLengthError("a clipped relative term (T5's buckets, NEZHA's vectors) needs integer "
                                     "positions (no interpolation)")


def clipped_index(q_positions: torch.Tensor, k_positions: torch.Tensor, k: int) -> torch.Tensor:
    """``c = clip(j - i, -k, k) + k``: ``(Lq, Lk)`` or ``(B, Lq, Lk)`` int64."""
    require_integer(q_positions, k_positions)
    return relative_positions(q_positions, k_positions).clamp(-k, k) + k


def query_scores(q: torch.Tensor | None, relative: ClippedRelative, length: int, head_dim: int,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """``q . keys[c] / sqrt(head_dim)`` for all ``2k + 1`` distances: ``(B, H, Lq, 2k + 1)`` (into ``out``)."""
    if q is None:
        raise ValueError("this bias depends on the queries: pass q (B, H, Lq, head_dim)")
    if q.dim() != 4 or q.shape[-1] != head_dim or q.shape[-2] != length:
        raise ValueError(f"q must be (B, H, Lq={length}, head_dim={head_dim}), got {tuple(q.shape)}")
    # Scale the (Dh, 2k + 1) matrix, not the (B, H, Lq, 2k + 1) product (~14 ms per layer at L=2048).
    vectors = (relative.keys.T / math.sqrt(head_dim)).to(q.dtype)  # type: ignore[union-attr]
    return torch.matmul(q, vectors, out=out)


def value_term(relative: ClippedRelative, probs: torch.Tensor, q_positions: torch.Tensor,
               k_positions: torch.Tensor) -> torch.Tensor:
    """``sum_j probs[..., i, j] values[c(i, j)]``: ``(B, H, Lq, Lk) -> (B, H, Lq, Dh)``.

    ``probs`` are the attention probabilities (0 at masked keys); positions ``(Lq,)`` /
    ``(Lk,)`` or ``(B, Lq)`` / ``(B, Lk)``.
    """
    if relative.values is None:
        raise ValueError("this clipped relative term has no value vectors")
    index = clipped_index(q_positions, k_positions, relative.max_distance).unsqueeze(-3)  # (1|B, 1, Lq, Lk)
    batch, heads, length, keys = probs.shape
    per_distance = probs.new_zeros((batch, heads, length, 2 * relative.max_distance + 1))
    per_distance = per_distance.scatter_add(-1, index.expand(batch, heads, length, keys), probs)
    return per_distance @ relative.values.to(probs.dtype)  # (B, H, Lq, Dh)
