"""NEZHA functional relative positions (Wei et al. 2019): fixed sinusoids met by the queries."""

from __future__ import annotations

import math

import torch

from ablate.encodings.registry import ENCODINGS
from ablate.encodings.absolute import sinusoidal_table
from ablate.encodings.banded import BandedBias, spread_shifted
from ablate.encodings.base import (
    ClippedRelative,
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


class _InferenceWorkspace:
    """Buffers NEZHA's inference bias is written into, reused across layers and calls.

    A fresh ``(B, H, L, L)`` tensor costs page faults on every layer; each layer's
    attention has consumed the previous contents before the next call. The key is
    ``(B, H, L, dtype, device)``: a call with another key replaces the buffers.
    """

    def __init__(self) -> None:
        self.key: tuple[object, ...] | None = None
        self.scores = self.bias = self.right_of_diagonal = torch.empty(0)

    def get(self, batch: int, heads: int, length: int, k: int, like: torch.Tensor) -> "_InferenceWorkspace":
        key = (batch, heads, length, like.dtype, like.device)
        if key != self.key:
            rows = torch.arange(length, device=like.device)
            self.right_of_diagonal = (rows.unsqueeze(0) > rows.unsqueeze(1)).to(like.dtype)  # (L, L): j > i
            self.scores = like.new_empty((batch, heads, length, 2 * k + 1))
            self.bias = like.new_zeros((batch, heads, length, length))  # the far left stays 0
            self.key = key
        return self


@ENCODINGS.register("nezha")
class NezhaRelative(PositionalEncoding):
    """Shaw-style relative positions with NEZHA's fixed sinusoidal vectors, on keys and values.

    ``logits[b, h, i, j] += q[b, h, i] . a[clip(j - i, -k, k)] / sqrt(head_dim)`` and, with
    ``values=True`` (the default, as NEZHA and Shaw et al.), the output gains
    ``sum_j p[b, h, i, j] a[clip(j - i, -k, k)]``. The ``2k + 1`` vectors ``a`` of size
    ``head_dim`` are sinusoids, as in NEZHA's code (HF ``NezhaRelativePositionsEncoding``,
    huawei-noah NEZHA-TensorFlow), which uses the same table for keys and values: row
    ``r = clip(j - i) + k`` is the interleaved sin/cos encoding of ``r``. (The paper writes
    the sinusoid of ``j - i``; the code's shift by ``k`` rotates every sin/cos pair by a
    fixed angle. We follow the code.)

    The bias depends on the queries (``family = "query-bias"``, so ``bias_needs_query``) and attention calls it
    in every layer. The ``(L, L, head_dim)`` tensor of the reference code is never built:
    the queries meet the ``2k + 1`` distinct vectors once, ``(B, H, Lq, 2k + 1)``, and each
    pair gathers its entry; the value term sums each row's probabilities per clipped
    distance, ``(B, H, Lq, 2k + 1)``, and meets the vectors once. ``values=False`` is the
    key-only form, which keeps attention on its fused fast path (the value term needs the
    probabilities, which fused kernels do not return).

    Args:
        max_relative_position: the clipping distance ``k`` (NEZHA's config: 64).
        values: add the value-side term (``False``: key-only).
    """

    family = "query-bias"

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False, max_relative_position: int = 64,
        values: bool = True,
    ) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        if max_relative_position < 1:
            raise ValueError(f"nezha: max_relative_position must be >= 1, got {max_relative_position}")
        if self.head_dim % 2:
            raise ValueError(f"nezha: sinusoidal vectors need an even head_dim, got {self.head_dim}")
        if not isinstance(values, bool):
            raise ValueError(f"nezha: values must be true (keys and values) or false (key-only), got {values!r}")
        self.max_relative_position = max_relative_position
        self.values = values
        vectors = sinusoidal_table(torch.arange(2 * max_relative_position + 1), self.head_dim)
        self.register_buffer("relative_vectors", vectors, persistent=False)  # (2k + 1, Dh)
        self._workspace = _InferenceWorkspace()

    @property
    def mixes_values(self) -> bool:
        """Whether the value-side term is on."""
        return self.values

    def clipped_relative(self) -> ClippedRelative:
        """The one sinusoid table, on keys and (unless key-only) on values."""
        return ClippedRelative(self.max_relative_position, keys=self.relative_vectors,
                               values=self.relative_vectors if self.values else None)

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
        """``(B, H, Lq, Lk)`` for positions ``(L,)`` or ``(B, L)`` and queries ``(B, H, Lq, Dh)``.

        In inference over one contiguous range (queries = keys), each row less its far-left
        value, in a workspace (see :meth:`_inference_bias`); exact otherwise.
        """
        contiguous = q_positions is k_positions and is_contiguous_range(q_positions)
        if contiguous and q is not None and not torch.is_grad_enabled():
            return self._inference_bias(q, q_positions.shape[-1])
        scores = self._query_scores(q, q_positions.shape[-1])  # (B, H, Lq, 2k + 1)
        if contiguous:
            # BandedBias spreads each query's 2k + 1 scores over its row (a gather would read an
            # expanded (L, L) int64 index as well) and sums the gradient back per distance.
            return BandedBias.apply(scores, self.max_relative_position)  # (B, H, L, L)
        index = self._index(q_positions, k_positions).unsqueeze(-3)  # (1|B, 1, Lq, Lk)
        batch, heads, length = scores.shape[:3]
        return scores.gather(-1, index.expand(batch, heads, length, index.shape[-1]))

    def _inference_bias(self, q: torch.Tensor, length: int) -> torch.Tensor:
        """The bias less each row's far-left value (softmax ignores it), cheaper to write.

        :func:`~ablate.encodings.banded.spread_shifted` writes only from each row's band on,
        into the reused workspace.
        """
        k = self.max_relative_position
        space = self._workspace.get(q.shape[0], q.shape[1], length, k, q)
        scores = self._query_scores(q, length, out=space.scores)  # (B, H, L, 2k + 1)
        return spread_shifted(scores, k, space.right_of_diagonal, space.bias)

    def mix_values(
        self, probs: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor
    ) -> torch.Tensor | None:
        """``sum_j probs[..., i, j] a[clip(j - i)]``: ``(B, H, Lq, Lk) -> (B, H, Lq, Dh)``, or None (key-only)."""
        if not self.values:
            return None
        index = self._index(q_positions, k_positions).unsqueeze(-3)  # (1|B, 1, Lq, Lk)
        batch, heads, length, keys = probs.shape
        per_distance = probs.new_zeros((batch, heads, length, 2 * self.max_relative_position + 1))
        per_distance = per_distance.scatter_add(-1, index.expand(batch, heads, length, keys), probs)
        return per_distance @ self.relative_vectors.to(probs.dtype)  # (B, H, Lq, Dh)

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
