"""Blocks of query rows and which keys each may attend: padding and causality, as one boolean mask."""

from __future__ import annotations

import torch


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


def block_ranges(length: int, block_rows: int, causal: bool) -> list[tuple[int, int, int]]:
    """``(start, stop, keys)`` of each block of ``block_rows`` query rows; a causal block reads keys up to its last row."""
    stops = [min(start + block_rows, length) for start in range(0, length, block_rows)]
    return [(start, stop, stop if causal else length) for start, stop in zip(range(0, length, block_rows), stops)]
