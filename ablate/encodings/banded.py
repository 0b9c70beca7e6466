"""A clipped relative-position table spread over the ``(L, L)`` logits, with a linear-cost backward.

Shaw-style encodings (NEZHA) give query ``i`` one value per clipped distance,
``table[..., i, clip(j - i, -k, k) + k]``. Spreading it to a dense ``(..., L, L)``
bias is memory-bound; done with in-place writes into views, autograd would
replay every write in backward on a full-size copy of the gradient.
:class:`BandedBias`
writes the dense bias without autograd and sums the gradient back per distance.
"""

from __future__ import annotations

from typing import Any

import torch


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


def spread(table: torch.Tensor, k: int) -> torch.Tensor:
    """``(..., L, 2k + 1) -> (..., L, L)``: ``out[..., i, j] = table[..., i, clip(j - i, -k, k) + k]``.

    Outside the band a row holds one of two values, so one broadcast ``where`` fills
    it; the band is then copied in through :func:`_band_view`. Not differentiable:
    see :class:`BandedBias`; attention in inference uses the cheaper :func:`spread_shifted`.
    """
    length = table.shape[-2]
    rows = torch.arange(length, device=table.device)
    right_of_diagonal = rows.unsqueeze(0) > rows.unsqueeze(1)  # (L, L): j > i
    out = torch.where(right_of_diagonal, table[..., 2 * k :], table[..., :1])  # (..., L, L)
    _write_band(out, table, k)
    return out


def spread_shifted(table: torch.Tensor, k: int, right_of_diagonal: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """:func:`spread` of ``table - table[..., :1]``, i.e. each row less its far-left value, in place.

    Softmax ignores a per-row constant, so attention with this bias equals attention
    with :func:`spread`'s (up to rounding). The far left is then zero and stays so in
    ``out``, a workspace that must start zeroed: only the columns from each row's band
    on are written, as one broadcast multiply per block of rows by the ``(L, L)``
    float 0/1 mask ``right_of_diagonal`` (``j > i``): about half the bytes of
    :func:`spread`, and a multiply streams where a ``where`` branches.
    Overwrites ``table`` (inference only: the caller owns it) and ``out`` ``(..., L, L)``.
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


def gather_back(grad: torch.Tensor, k: int) -> torch.Tensor:
    """The adjoint of :func:`spread`: ``(..., L, L) -> (..., L, 2k + 1)``, summing each row per index."""
    length = grad.shape[-1]
    out = grad.new_zeros((*grad.shape[:-1], 2 * k + 1))
    band = _band_view(grad, k)
    if band is not None:
        out[..., k : length - k, :] = band
    for i in _edge_rows(length, k):
        low, high = max(0, i - k), min(length, i + k + 1)
        out[..., i, low - i + k : high - i + k] = grad[..., i, low:high]
    rows = torch.arange(length, device=grad.device)
    right_of_band = (rows.unsqueeze(0) - rows.unsqueeze(1)) > k  # (L, L): j - i > k
    far_right = torch.where(right_of_band, grad, 0).sum(-1)  # keys past the band share index 2k
    far_left = grad.sum(-1) - out.sum(-1) - far_right  # and the rest of the row, before it, index 0
    out[..., 0] += far_left
    out[..., 2 * k] += far_right
    return out


class BandedBias(torch.autograd.Function):
    """Differentiable :func:`spread` whose backward is :func:`gather_back` (two passes over the gradient)."""

    @staticmethod
    def forward(ctx: Any, table: torch.Tensor, k: int) -> torch.Tensor:  # noqa: D102
        ctx.k = k
        return spread(table, k)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return gather_back(grad, ctx.k), None
