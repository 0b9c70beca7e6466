"""NEZHA functional relative positions (Wei et al. 2019): fixed sinusoids met by the queries."""

from __future__ import annotations

import torch

from ablate.model.encodings.absolute import sinusoidal_table
from ablate.model.encodings.base import ClippedRelative
from ablate.model.encodings.clipped import ClippedBias
from ablate.model.encodings.registry import ENCODINGS


@ENCODINGS.register("nezha")
class NezhaRelative(ClippedBias):
    """Shaw-style relative positions with NEZHA's fixed sinusoidal vectors, on keys and values.

    ``logits[b, h, i, j] += q[b, h, i] . a[clip(j - i, -k, k)] / sqrt(head_dim)`` and, with
    ``values=True`` (the default, as NEZHA and Shaw et al.), the output gains
    ``sum_j p[b, h, i, j] a[clip(j - i, -k, k)]``. The ``2k + 1`` vectors ``a`` of size
    ``head_dim`` are sinusoids, as in NEZHA's code (HF ``NezhaRelativePositionsEncoding``,
    huawei-noah NEZHA-TensorFlow), which uses the same table for keys and values: row
    ``r = clip(j - i) + k`` is the interleaved sin/cos encoding of ``r``. (The paper writes
    the sinusoid of ``j - i``; the code's shift by ``k`` rotates every sin/cos pair by a
    fixed angle. We follow the code.)

    A term of the clipped distance, stated once in :meth:`clipped_relative`; the dense bias,
    the FlexAttention form and the value term are derived from it
    (:class:`~ablate.model.encodings.clipped.ClippedBias`). The bias depends on the queries
    (``family = "query-bias"``, so ``bias_needs_query``) and attention calls it in every
    layer. The ``(L, L, head_dim)`` tensor of the reference code is never built: the
    queries meet the ``2k + 1`` distinct vectors once, ``(B, H, Lq, 2k + 1)``, and each pair
    gathers its entry; the value term sums each row's probabilities per clipped distance,
    ``(B, H, Lq, 2k + 1)``, and meets the vectors once. ``values=False`` is the key-only
    form, which keeps attention on its fused fast path (the value term needs the
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

    def clipped_relative(self) -> ClippedRelative:
        """The one sinusoid table, on keys and (unless key-only) on values."""
        return ClippedRelative(self.max_relative_position, keys=self.relative_vectors,
                               values=self.relative_vectors if self.values else None)

    def untrained_note(self, train_length: int, eval_length: int) -> str | None:
        """Name the relative vectors (fixed, not learned) that training never used."""
        k = self.max_relative_position
        if eval_length <= train_length or train_length > k:
            return None
        return (
            f"nezha relative vectors for distances {train_length}..{min(eval_length - 1, k)} never occurred "
            f"in training (they are fixed sinusoids, not learned)"
        )
