"""Which keys a block of query rows may attend: padding and causality, as one boolean mask."""

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
