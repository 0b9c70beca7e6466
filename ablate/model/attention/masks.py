"""Blocks of query rows, which keys each may attend (padding, causality), and a static bias's additive mask."""

from __future__ import annotations

import torch

from ablate.model.encodings.base import PositionalEncoding


def block_allowed(
    padding_mask: torch.Tensor | None, *, causal: bool, start: int, stop: int, keys: int, device: torch.device,
) -> torch.Tensor | None:
    """Boolean "query may attend key" for rows ``start:stop`` and keys ``:keys``, or ``None`` if all may.

    ``(Lb, Lk)`` or ``(B, 1, Lb, Lk)``. A padding query may always attend itself, so no
    row is fully masked (a fully masked softmax row is NaN); real queries never see
    padding keys.
    """
    rows = torch.arange(start, stop, device=device).unsqueeze(-1)  # (Lb, 1)
    columns = torch.arange(keys, device=device)  # (Lk,)
    allowed = None
    if padding_mask is not None:
        allowed = padding_mask[:, None, None, :keys] | (rows == columns)  # (B, 1, Lb, Lk)
    if causal:
        below = columns <= rows  # (Lb, Lk)
        allowed = below if allowed is None else allowed & below
    return allowed


def allowed_keys(padding_mask: torch.Tensor | None, *, causal: bool, length: int,
                 device: torch.device) -> torch.Tensor | None:
    """:func:`block_allowed` for the whole sequence: ``(L, L)``, ``(B, 1, L, L)`` or ``None``."""
    return block_allowed(padding_mask, causal=causal, start=0, stop=length, keys=length, device=device)


def block_ranges(length: int, block_rows: int, causal: bool) -> list[tuple[int, int, int]]:
    """``(start, stop, keys)`` of each block of ``block_rows`` query rows; a causal block reads keys up to its last row."""
    stops = [min(start + block_rows, length) for start in range(0, length, block_rows)]
    return [(start, stop, stop if causal else length) for start, stop in zip(range(0, length, block_rows), stops)]


def static_block_mask(
    encoding: PositionalEncoding, positions: torch.Tensor, padding_mask: torch.Tensor | None, causal: bool,
    dtype: torch.dtype, start: int, stop: int, keys: int,
) -> torch.Tensor | None:
    """The additive mask ``(1|B, H, stop - start, keys)`` of a bias from positions alone, or ``None`` without one.

    Padding and (when ``causal``) later keys are ``-inf``. Contiguous and 4-D: SDPA's fused
    CPU/CUDA kernels take a 4-D mask (a 3-D one falls back to the unfused math path) and
    read a strided one several times slower.
    """
    bias = encoding.bias(positions[..., start:stop], positions[..., :keys])  # (H|B,H, rows, keys)
    if bias is None:
        return None
    mask = bias.to(dtype)
    mask = (mask if mask.dim() == 4 else mask.unsqueeze(0)).contiguous()
    allowed = block_allowed(padding_mask, causal=causal, start=start, stop=stop, keys=keys, device=mask.device)
    return mask if allowed is None else mask.masked_fill(~allowed, float("-inf"))
