"""ALiBi (Press et al. 2022): a fixed linear distance penalty with a geometric slope per head."""

from __future__ import annotations

import math

import torch

from ablate.encodings.registry import ENCODINGS
from ablate.encodings.base import PositionalEncoding, ScoreMod, bias_from_distances, gather_positions


def alibi_slopes(num_heads: int) -> list[float]:
    """Head slopes exactly as the official ``get_slopes(n)``.

    For ``n`` a power of two the slopes are ``2^(-8/n), 2^(-16/n), ..., 2^(-8)``. Otherwise
    the ``2^floor(log2 n)`` slopes of the closest smaller power of two come first, then
    every other slope of twice that power, until there are ``n``.
    """
    if num_heads < 1:
        raise ValueError(f"alibi needs num_heads >= 1, got {num_heads}")

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_two(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: num_heads - closest]


@ENCODINGS.register("alibi")
class ALiBi(PositionalEncoding):
    """Attention with Linear Biases: ``bias[h, i, j] = -slope_h * distance(i, j)``, no parameters.

    Causal decoders use ``-slope * (i - j)`` with ``i`` the query and ``j`` the key
    position. The official code adds ``slope * j`` to every row instead; the two differ
    by ``slope * i``, a per-row constant that softmax ignores, but this form depends on
    ``i - j`` only (shift-invariant) and stays small for long sequences. Future keys get
    positive values here, which the causal mask removes. Bidirectional encoders use the
    symmetric ``-slope * |i - j|`` (the paper only defines the causal case), so an
    encoder with ALiBi cannot tell left from right by position alone.
    """

    family = "bias"

    def __init__(self, *, d_model: int, num_heads: int, causal: bool = False) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        self.register_buffer("slopes", torch.tensor(alibi_slopes(num_heads)), persistent=False)  # (H,)

    def _penalty(self, relative: torch.Tensor) -> torch.Tensor:
        # relative = j - i, so -(i - j) = relative for the causal case.
        return relative if self.causal else -relative.abs()

    def bias(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(H, Lq, Lk)`` for positions ``(L,)``, ``(B, H, Lq, Lk)`` for ``(B, L)``."""
        def values_of(distance: torch.Tensor) -> torch.Tensor:  # (*S) -> (H, *S)
            slopes = self.slopes.view(-1, *[1] * distance.dim())
            return slopes * self._penalty(distance.to(torch.float32))

        return bias_from_distances(values_of, q_positions, k_positions)

    def score_mod(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> ScoreMod:
        """FlexAttention form of :meth:`bias`."""
        slopes, penalty = self.slopes, self._penalty

        def score_mod(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            relative = gather_positions(k_positions, b, kv_idx) - gather_positions(q_positions, b, q_idx)
            return score + (slopes[h] * penalty(relative.to(torch.float32))).to(score.dtype)

        return score_mod
