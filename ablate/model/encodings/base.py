"""The positional-encoding contract: three hooks the model always calls, and the forms attention may use.

Every encoding in the literature acts in one (or two) of three places, so the
model calls all three and an encoding overrides the ones it needs:

* ``embed(x, positions)`` - absolute encodings add to the token embeddings.
* ``rotate(q, k, positions)`` - rotary encodings rotate queries and keys.
* ``bias(q_positions, k_positions, q)`` - relative encodings add to the attention
  logits (after the ``1/sqrt(head_dim)`` scaling), as a dense tensor.

Two more forms of the same bias let attention avoid the dense tensor; a bias encoding
states its mathematics once and derives them (docs/encodings.md):

* ``score_mod`` - the bias inside FlexAttention, differentiable in every tensor it captures.
* ``clipped_relative`` (default: ``None``) - a relative term that depends on the clipped
  distance alone (T5's buckets, NEZHA's vectors): a per-head table, vectors met by the
  queries, and vectors added to the output (the value term, which needs the attention
  probabilities). Attention's clipped kernels run it as it is.

:mod:`ablate.model.encodings.distance` (a bias of ``j - i``) and :mod:`ablate.model.encodings.clipped`
(a term of the clipped distance) are the forms that derive ``bias`` and ``score_mod`` from
one method.

What attention relies on (``ablate.model.attention`` never names an encoding):

* ``bias`` is called with any block of query rows against any range of keys
  (``q_positions`` a slice of the key positions), always with that block's queries
  ``q``; an encoding whose bias ignores ``q`` sets nothing, one that reads it is of
  ``family = "query-bias"`` (which makes ``bias_needs_query`` true) so that attention
  computes it per layer instead of once per forward pass. Under autograd the bias is exact.
  Without autograd (inference) an encoding may return it plus a per-query-row constant
  (softmax ignores it) in a workspace it overwrites on its next call; attention consumes
  it before then.
* ``score_mod`` adds exactly what ``bias`` would at ``[b, h, q_idx, kv_idx]``.
* ``clipped_relative``, when not ``None``, is exactly what ``bias`` computes for
  contiguous positions, and its ``values`` are the whole value term (``mixes_values``).

Positions are explicit integer (or, for interpolated variants, float) tensors,
either shared by the batch, shape ``(L,)``, or per sequence, shape ``(B, L)``
(left-padded batches, where position 0 is the first real token). Hooks must
accept both and broadcast accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from ablate.core.dims import head_dim
from ablate.core.errors import UnsupportedLengthError

# A FlexAttention score modification: (score, batch, head, q_idx, kv_idx) -> score.
ScoreMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ClippedRelative:
    """A relative term that depends on the clipped distance ``c = clip(j - i, -k, k) + k`` alone.

    The bias is ``table[h, c]`` (a per-head table ``(H, 2k + 1)``, differentiable in the
    encoding's parameters: T5's buckets) plus ``q_i . keys[c] / sqrt(Dh)`` (Shaw-style
    vectors, NEZHA's), and the output gains ``sum_j p_ij values[c]`` (the value term);
    each part may be ``None``. ``keys`` and ``values`` are ``(2k + 1, Dh)`` constants.
    """

    max_distance: int
    table: torch.Tensor | None = None
    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None


class PositionalEncoding(nn.Module):
    """Base class: every hook is the identity, so NoPE is this class unchanged.

    Args:
        d_model: model width.
        num_heads: attention heads (bias encodings produce one bias per head).
        causal: whether the model is a causal decoder (``True``) or a
            bidirectional encoder (``False``); T5 buckets and ALiBi differ.
    """

    #: Where position enters, for readers and for tests that select encodings:
    #: ``none``, ``absolute`` (``embed``), ``rotary`` (``rotate``), ``bias``
    #: (``bias``, from positions alone), ``query-bias`` (``bias`` reads the
    #: queries) or ``wrapper`` (delegates to another encoding). Every
    #: registered class states its own.
    family: ClassVar[str] = "none"
    #: Whether the bidirectional (encoder) form sees positions only through ``|i - j|``, or not at all,
    #: so it cannot tell a sequence from its reversal (ALiBi's and KERPLE's encoder form; NoPE).
    #: ``ablate.analysis.feasibility`` reasons with it and ``tests/test_feasibility.py`` proves it.
    direction_blind: ClassVar[bool] = False

    def __init__(self, *, d_model: int, num_heads: int, causal: bool = False) -> None:
        super().__init__()
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = head_dim(d_model, num_heads)
        self.causal = causal

    @property
    def bias_needs_query(self) -> bool:
        """``bias`` reads the queries (Shaw-style ``q . a_ij`` terms), so attention computes it in
        every layer with that layer's queries instead of once per forward pass.

        Derived from ``family`` (``"query-bias"``): the contract has one source for it.
        """
        return self.family == "query-bias"

    # ----------------------------------------------------------------- positions
    def positions(self, length: int, *, device: torch.device | str | None = None) -> torch.Tensor:
        """Positions of a length-``length`` sequence, shape ``(L,)``: ``0..L-1``.

        Wrappers such as randomized positions override this during training.
        """
        return torch.arange(length, device=device)

    def check_length(self, length: int) -> None:
        """Raise :class:`UnsupportedLengthError` if positions ``>= length`` cannot be encoded."""

    def untrained_note(self, train_length: int, eval_length: int) -> str | None:
        """Say which parameters an evaluation at ``eval_length`` uses that training never reached."""
        return None

    # --------------------------------------------------------------------- hooks
    def embed(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, L, D)`` and positions ``(L,)|(B, L)`` -> ``(B, L, D)``."""
        return x

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries and keys ``(B, H, L, Dh)`` -> rotated ``(q, k)``, same shapes."""
        return q, k

    def bias(
        self,
        q_positions: torch.Tensor,
        k_positions: torch.Tensor,
        q: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Additive attention-logit bias.

        Args:
            q_positions: ``(Lq,)`` or ``(B, Lq)``; attention may pass a block of query rows.
            k_positions: ``(Lk,)`` or ``(B, Lk)``.
            q: the queries of those rows ``(B, H, Lq, Dh)``; attention always passes them,
                an encoding without ``bias_needs_query`` ignores them.

        Returns:
            ``None`` (no bias), ``(H, Lq, Lk)`` for batch-shared positions, or
            ``(B, H, Lq, Lk)`` for per-sequence positions or query-dependent bias.
        """
        return None

    def clipped_relative(self) -> ClippedRelative | None:
        """This encoding as a term of the clipped distance, when that is exactly what ``bias``
        computes for contiguous positions (and its whole value term), or ``None`` (the default).

        Attention's clipped kernels then run it over blocks of query rows without building
        any per-pair tensor for the whole sequence (:mod:`ablate.model.attention.kernels`). Called
        once per layer, so a table is recomputed from the current parameters.
        """
        return None

    def score_mod(
        self,
        q_positions: torch.Tensor,
        k_positions: torch.Tensor,
        q: torch.Tensor | None = None,
    ) -> ScoreMod | None:
        """The same bias as a FlexAttention ``score_mod`` that never materialises it.

        Returns ``None`` when the encoding has no bias. Positions are ``(L,)``
        or ``(B, L)`` exactly as for :meth:`bias`; the returned function must add
        the identical value that :meth:`bias` would put at ``[b, h, q_idx, kv_idx]``.
        """
        return None

    @property
    def has_bias(self) -> bool:
        """Whether :meth:`bias` is overridden (cheap check used by the model)."""
        return type(self).bias is not PositionalEncoding.bias

    @property
    def mixes_values(self) -> bool:
        """Whether a value term adds to the output (attention then needs the probabilities).

        Derived from :meth:`clipped_relative`, the only form a value term has.
        """
        relative = self.clipped_relative()
        return relative is not None and relative.values is not None


def relative_positions(q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
    """Signed distances ``k - q``: ``(Lq,),(Lk,) -> (Lq, Lk)`` or ``(B,Lq),(B,Lk) -> (B, Lq, Lk)``.

    Negative values are keys in the past (to the left of the query), the
    convention of T5's ``relative_position = memory_position - query_position``.
    """
    return k_positions.unsqueeze(-2) - q_positions.unsqueeze(-1)


def gather_positions(positions: torch.Tensor, batch: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Look up ``positions[index]`` (``(L,)``) or ``positions[batch, index]`` (``(B, L)``).

    Used inside FlexAttention score modifications, where indices are scalars.
    """
    if positions.dim() == 1:
        return positions[index]
    return positions[batch, index]


def is_contiguous_range(positions: torch.Tensor) -> bool:
    """Whether 1-D integer ``positions`` are ``p0, p0 + 1, ..., p0 + L - 1``."""
    if positions.dim() != 1 or positions.dtype.is_floating_point or positions.numel() < 2:
        return positions.dim() == 1 and not positions.dtype.is_floating_point
    return bool((positions.diff() == 1).all())


def bias_from_distances(
    values_of: Callable[[torch.Tensor], torch.Tensor], q_positions: torch.Tensor, k_positions: torch.Tensor
) -> torch.Tensor:
    """A bias that depends on ``k - q`` only, evaluated once per distinct distance.

    Evaluating ``values_of`` (logs, bucket searches) on all ``L * L`` pairs costs far
    more than attention itself at long lengths; a bias of the distance alone needs
    it only for the ``2L - 1`` distinct distances. For contiguous positions (the usual
    self-attention, or a block of its query rows against a range of keys) the Toeplitz
    layout is one strided copy; other
    integer positions gather from the per-distance table; float positions (position
    interpolation) fall back to element-wise evaluation.

    Args:
        values_of: distances ``(*S)`` (int64 or float) -> ``(H, *S)`` bias values.
        q_positions: ``(Lq,)`` or ``(B, Lq)``.
        k_positions: ``(Lk,)`` or ``(B, Lk)``.

    Returns:
        ``(H, Lq, Lk)`` for 1-D positions, ``(B, H, Lq, Lk)`` for 2-D ones.
    """
    if is_contiguous_range(q_positions) and is_contiguous_range(k_positions) and q_positions.numel() > 0:
        # Also a block of query rows against a range of keys, as blockwise attention asks.
        rows, columns = q_positions.shape[0], k_positions.shape[0]
        offset = int(k_positions[0]) - int(q_positions[0])  # distance of the pair (0, 0)
        distances = torch.arange(offset - (rows - 1), offset + columns, device=q_positions.device)
        table = values_of(distances).contiguous()  # (H, Lq + Lk - 1), index a holds distance offset - (Lq-1) + a
        windows = table.unfold(-1, columns, 1)  # (H, Lq, Lk): [h, a, j] = table[h, a + j]
        return windows.flip(-2).contiguous()  # [h, i, j] = table[h, Lq - 1 - i + j] = value at offset + j - i
    relative = relative_positions(q_positions, k_positions)
    if relative.dtype.is_floating_point:
        values = values_of(relative)  # (H, *S)
    else:
        low = relative.min()
        table = values_of(torch.arange(int(low), int(relative.max()) + 1, device=relative.device))  # (H, R)
        values = table[:, relative - low]  # (H, *S)
    # A contiguous result: SDPA reads a strided mask several times slower.
    return (values if relative.dim() == 2 else values.movedim(0, 1)).contiguous()
