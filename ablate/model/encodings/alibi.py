"""ALiBi (Press et al. 2022): a fixed linear distance penalty with a geometric slope per head."""

from __future__ import annotations

import math

import torch

from ablate.model.encodings.distance import DistanceBias
from ablate.model.encodings.registry import ENCODINGS


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
class ALiBi(DistanceBias):
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
    direction_blind = True

    def __init__(self, *, d_model: int, num_heads: int, causal: bool = False) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        self.register_buffer("slopes", torch.tensor(alibi_slopes(num_heads)), persistent=False)  # (H,)

    def distance_bias(self, distance: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """``slope_h * (j - i)`` (causal; ``-(i - j)``) or ``-slope_h * |j - i|`` (bidirectional)."""
        distance = distance.to(torch.float32)
        return self.slopes[head] * (distance if self.causal else -distance.abs())
