"""A clipped relative table spread over the ``(L, L)`` logits in inference, written at half the cost.

A term of the clipped distance that reads the queries (NEZHA) gives query ``i`` one value
per clipped distance, ``table[..., i, clip(j - i, -k, k) + k]``. In inference attention
needs it as a dense ``(B, H, L, L)`` bias once per layer (SDPA's fused kernel); spreading
it is memory-bound, so :func:`spread_shifted` writes each row less its far-left value
(softmax ignores a per-row constant) from the band on only, into a :class:`Workspace`
reused across layers and calls.
"""

from __future__ import annotations

import torch


class Workspace:
    """Buffers the inference bias is written into, reused across layers and calls.

    A fresh ``(B, H, L, L)`` tensor costs page faults on every layer; each layer's
    attention has consumed the previous contents before the next call. The key is
    ``(B, H, L, dtype, device)``: a call with another key replaces the buffers.
    """

    def __init__(self) -> None:
        self.key: tuple[object, ...] | None = None
        self.scores = self.bias = self.right_of_diagonal = torch.empty(0)

    def get(self, batch: int, heads: int, length: int, k: int, like: torch.Tensor) -> "Workspace":
        """The buffers for ``(batch, heads, length)`` in ``like``'s dtype and device: scores ``(B, H, L, 2k + 1)``,
        a zeroed bias ``(B, H, L, L)`` and the float ``j > i`` mask ``(L, L)``."""
        key = (batch, heads, length, like.dtype, like.device)
        if key != self.key:
            rows = torch.arange(length, device=like.device)
            self.right_of_diagonal = (rows.unsqueeze(0) > rows.unsqueeze(1)).to(like.dtype)  # (L, L): j > i
            self.scores = like.new_empty((batch, heads, length, 2 * k + 1))
            self.bias = like.new_zeros((batch, heads, length, length))  # the far left stays 0
            self.key = key
        return self


def _band_view(dense: torch.Tensor, k: int) -> torch.Tensor | None:
    """``dense[..., r + k, r + d]`` as ``[..., r, d]`` for the rows whose band ``|j - i| <= k`` fits.

    In the flat layout row ``i``'s band is a run of ``2k + 1`` elements every ``L + 1``,
    so rows ``k..L-k-1`` form one strided view. ``None`` when no row fits (``L <= 2k``).
    """
    length = dense.shape[-1]
    inner = length - 2 * k
    if inner <= 0:
        return None
    *outer_strides, row_stride, column_stride = dense.stride()
    return dense.as_strided((*dense.shape[:-2], inner, 2 * k + 1),
                            (*outer_strides, row_stride + column_stride, column_stride),
                            dense.storage_offset() + k * row_stride)


def _edge_rows(length: int, k: int) -> list[int]:
    """Rows whose band crosses the matrix edge (handled one by one)."""
    return [*range(min(k, length)), *range(max(k, length - k), length)]


def spread_shifted(table: torch.Tensor, k: int, right_of_diagonal: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[..., i, j] = table[..., i, c(i, j)] - table[..., i, 0]`` with ``c = clip(j - i, -k, k) + k``, in place.

    ``table``: ``(..., L, 2k + 1)``; ``out``: ``(..., L, L)``. Softmax ignores a per-row
    constant, so attention with this bias equals attention with the exact one (up to
    rounding). The far left is then zero and stays so in ``out``, a workspace that must
    start zeroed: only the columns from each row's band on are written, as one broadcast
    multiply per block of rows by the ``(L, L)`` float 0/1 mask ``right_of_diagonal``
    (``j > i``): about half the bytes of a full spread, and a multiply streams where a
    ``where`` branches. Overwrites ``table`` (inference only: the caller owns it) and ``out``.
    """
    table.sub_(table[..., :1].clone())
    length = table.shape[-2]
    for start in range(0, length, _ROW_BLOCK):
        stop = min(start + _ROW_BLOCK, length)
        first = max(0, start - k)  # the block's first band column; left of a band the product is the 0 it must be
        torch.mul(right_of_diagonal[start:stop, first:], table[..., start:stop, 2 * k :],
                  out=out[..., start:stop, first:])
    _write_band(out, table, k)
    return out


#: Rows per multiply in :func:`spread_shifted` (which also writes, for the lower rows of a
#: block, a few far-left zeros and the band's left part, which the band copy then overwrites).
_ROW_BLOCK = 64


def _write_band(out: torch.Tensor, table: torch.Tensor, k: int) -> None:
    """Copy each row's ``2k + 1`` band values into the dense ``(..., L, L)`` ``out``."""
    length = table.shape[-2]
    band = _band_view(out, k)
    if band is not None:
        band.copy_(table[..., k : length - k, :])
    for i in _edge_rows(length, k):
        low, high = max(0, i - k), min(length, i + k + 1)
        out[..., i, low:high] = table[..., i, low - i + k : high - i + k]
