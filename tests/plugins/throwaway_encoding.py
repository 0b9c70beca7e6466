"""A throwaway bias encoding, registered when pytest loads this file as a plugin (``-p throwaway_encoding``).

Used by tests/test_discovery.py to prove that a new encoding is picked up by the
registry-parametrized tests with no test file edited. It is a real encoding
(a learned slope per head times the signed distance, ALiBi with trainable
slopes), so the tests it joins must pass for it too.
"""

from __future__ import annotations

import torch
from torch import nn

from ablate.encodings.base import PositionalEncoding, ScoreMod, bias_from_distances, gather_positions
from ablate.encodings.registry import ENCODINGS

NAME = "throwaway_slopes"


class ThrowawaySlopes(PositionalEncoding):
    """``bias[h, i, j] = slope_h * (j - i)`` (causal) or ``-slope_h * |j - i|``, with learned slopes."""

    family = "bias"

    def __init__(self, *, d_model: int, num_heads: int, causal: bool = False) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        self.slopes = nn.Parameter(torch.linspace(0.5, 0.05, num_heads))  # (H,)

    def _penalty(self, relative: torch.Tensor) -> torch.Tensor:
        return relative if self.causal else -relative.abs()

    def bias(self, q_positions: torch.Tensor, k_positions: torch.Tensor,
             q: torch.Tensor | None = None) -> torch.Tensor:
        """``(H, Lq, Lk)`` for positions ``(L,)``, ``(B, H, Lq, Lk)`` for ``(B, L)``."""
        def values_of(distance: torch.Tensor) -> torch.Tensor:  # (*S) -> (H, *S)
            return self.slopes.view(-1, *[1] * distance.dim()) * self._penalty(distance.to(torch.float32))

        return bias_from_distances(values_of, q_positions, k_positions)

    def score_mod(self, q_positions: torch.Tensor, k_positions: torch.Tensor,
                  q: torch.Tensor | None = None) -> ScoreMod:
        slopes, penalty = self.slopes, self._penalty

        def score_mod(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            relative = gather_positions(k_positions, b, kv_idx) - gather_positions(q_positions, b, q_idx)
            return score + (slopes[h] * penalty(relative.to(torch.float32))).to(score.dtype)

        return score_mod


ENCODINGS.register(NAME)(ThrowawaySlopes)
