"""T5 relative position buckets (Raffel et al. 2020): a learned bias per head and bucket."""

from __future__ import annotations

import math

import torch
from torch import nn

from ablate.model.encodings.base import ClippedRelative, UnsupportedLengthError, relative_positions
from ablate.model.encodings.clipped import ClippedBias
from ablate.model.encodings.registry import ENCODINGS


def t5_relative_position_bucket(
    relative_position: torch.Tensor, *, bidirectional: bool, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """Map signed distances ``key - query`` to T5 buckets, exactly as HF's ``_relative_position_bucket``.

    Half of each direction's buckets hold exact distances ``0..max_exact-1``, the other half
    logarithmically wider bins up to ``max_distance``; every farther distance shares the
    last bucket. Bidirectional buckets give future keys (``key > query``) their own upper
    half; unidirectional (causal) buckets map every future key to bucket 0, like distance 0.

    Args:
        relative_position: integer tensor of ``key - query``, any shape.
        bidirectional: encoder buckets (``True``) or causal-decoder buckets (``False``).
        num_buckets: buckets in total (both directions together when bidirectional).
        max_distance: distance from which on everything falls into the last bucket.

    Returns:
        ``int64`` bucket ids in ``[0, num_buckets)``, same shape as ``relative_position``.
    """
    buckets = torch.zeros_like(relative_position, dtype=torch.long)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -relative_position.clamp(max=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # Same float32 operations in the same order as HF, so truncation at bin edges agrees.
    # clamp(min=1) only touches distances that take the `is_small` branch; it avoids
    # casting log(0) = -inf to an integer.
    large = max_exact + (
        torch.log(distance.clamp(min=1).float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).long()
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


@ENCODINGS.register("t5")
class T5Bias(ClippedBias):
    """T5's bucketed relative attention bias: one learned scalar per (bucket, head).

    Buckets are bidirectional for an encoder (``causal=False``) and unidirectional for
    a causal decoder (``causal=True``), as in T5's encoder and decoder self-attention.
    The bias is added to the logits after the ``1/sqrt(head_dim)`` scaling (T5 itself
    has no scaling; it folds it into the initialisation). As in T5 the bias is computed
    once per forward pass and shared by all layers, so the table is shared too.

    Distances ``>= max_distance`` all share the last bucket, so a bucket's value depends
    only on ``clamp(key - query, -max_distance, max_distance)``: T5 is a term of the
    clipped distance, stated once in :meth:`clipped_relative` (a ``(H, 2 max_distance + 1)``
    table), from which the dense bias and the FlexAttention form are derived
    (:class:`~ablate.model.encodings.clipped.ClippedBias`), bit-identical on every device.

    Args:
        num_buckets: buckets (T5: 32).
        max_distance: distance of the last bucket's lower edge (T5: 128).
    """

    family = "bias"

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False,
        num_buckets: int = 32, max_distance: int = 128,
    ) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        per_direction = num_buckets if causal else num_buckets // 2
        if per_direction < 2:
            raise ValueError(
                f"t5: num_buckets={num_buckets} is too small; need >= {2 if causal else 4} "
                f"({'causal' if causal else 'bidirectional'} buckets)"
            )
        if not causal and num_buckets % 2:
            raise ValueError(
                f"t5: bidirectional buckets split num_buckets in two halves; num_buckets={num_buckets} "
                "is odd and would leave its last bucket unused"
            )
        if max_distance <= per_direction // 2:
            raise ValueError(
                f"t5: max_distance={max_distance} must exceed the {per_direction // 2} exact buckets "
                f"of num_buckets={num_buckets}"
            )
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, num_heads)  # HF's name for the table
        distances = torch.arange(-max_distance, max_distance + 1)
        self.register_buffer(
            "bucket_of_distance",
            t5_relative_position_bucket(
                distances, bidirectional=not causal, num_buckets=num_buckets, max_distance=max_distance
            ),
            persistent=False,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """HF T5 initialisation: normal with std ``d_model ** -0.5``."""
        nn.init.normal_(self.relative_attention_bias.weight, std=self.d_model**-0.5)

    def buckets(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """Bucket ids ``(Lq, Lk)`` for positions ``(L,)``, or ``(B, Lq, Lk)`` for ``(B, L)``."""
        if q_positions.dtype.is_floating_point or k_positions.dtype.is_floating_point:
            raise UnsupportedLengthError("t5 buckets need integer positions (no interpolation)")
        relative = relative_positions(q_positions, k_positions)
        return self.bucket_of_distance[relative.clamp(-self.max_distance, self.max_distance) + self.max_distance]

    def clipped_relative(self) -> ClippedRelative:
        """Each head's bucket value at every clipped distance ``-max_distance..max_distance``: ``(H, 2 max_distance + 1)``."""
        return ClippedRelative(self.max_distance, table=self.relative_attention_bias(self.bucket_of_distance).T)

    def untrained_note(self, train_length: int, eval_length: int) -> str | None:
        """Name the buckets that only distances ``>= train_length`` reach (still at their init)."""
        if eval_length <= train_length:
            return None

        def reached(length: int) -> set[int]:
            past = torch.arange(-(length - 1), 1)
            distances = past if self.causal else torch.cat([past, -past])
            index = distances.clamp(-self.max_distance, self.max_distance) + self.max_distance
            return set(self.bucket_of_distance.cpu()[index].tolist())

        unseen = sorted(reached(eval_length) - reached(train_length))
        if not unseen:
            return None
        return (
            f"t5 buckets {unseen} are reached only by distances >= {train_length} (the train length) "
            "and were never trained"
        )
