"""A throwaway bias encoding, registered when pytest loads this file as a plugin (``-p throwaway_encoding``).

Used by tests/test_discovery.py to prove that a new encoding is picked up by the
registry-parametrized tests with no test file edited. It is a real encoding
(a learned slope per head times the signed distance, ALiBi with trainable
slopes), so the tests it joins must pass for it too. Its mathematics is one method
(:class:`~ablate.model.encodings.distance.DistanceBias` derives the dense bias and the
FlexAttention form), as docs/encodings.md shows.
"""

from __future__ import annotations

import torch
from torch import nn

from ablate.model.encodings.distance import DistanceBias
from ablate.model.encodings.registry import ENCODINGS

NAME = "throwaway_slopes"


class ThrowawaySlopes(DistanceBias):
    """``bias[h, i, j] = slope_h * (j - i)`` (causal) or ``-slope_h * |j - i|``, with learned slopes."""

    family = "bias"
    direction_blind = True  # the encoder form -slope * |j - i| cannot tell left from right

    def __init__(self, *, d_model: int, num_heads: int, causal: bool = False) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        self.slopes = nn.Parameter(torch.linspace(0.5, 0.05, num_heads))  # (H,)

    def distance_bias(self, distance: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        distance = distance.to(torch.float32)
        return self.slopes[head] * (distance if self.causal else -distance.abs())


ENCODINGS.register(NAME)(ThrowawaySlopes)
