"""A term of the clipped distance over a block of query rows: the band that needs gathering, and its sums.

For contiguous positions, query ``start + r`` and key ``first_key + j`` are at clipped
distance ``c = clip(first_key + j - start - r, -k, k) + k``. Left of a block's band every
pair has ``c = 0``, right of it ``c = 2k``, so only the band (``rows + 2k`` columns) is
gathered or scattered; the rest is one broadcast add or one row sum. Shared by the
kernels of :mod:`ablate.model.attention.kernels` that run such terms (T5's buckets, NEZHA's
vectors; :class:`~ablate.model.encodings.base.ClippedRelative`).
"""

from __future__ import annotations

import torch


def clipped_band(start: int, rows: int, first_key: int, keys: int, k: int,
                 device: torch.device) -> tuple[int, int, torch.Tensor]:
    """Columns ``lo:hi`` (of keys ``first_key:first_key+keys``) where some row of ``start:start+rows`` is
    within ``k`` of the key, and ``c`` there, ``(rows, hi - lo)``.

    Columns before ``lo`` are at ``c = 0`` for every row of the block, from ``hi`` on at ``c = 2k``.
    """
    lo = min(max(0, start - k + 1 - first_key), keys)
    hi = max(min(keys, start + rows + k - 1 - first_key), lo)
    columns = torch.arange(first_key + lo, first_key + hi, device=device)
    queries = torch.arange(start, start + rows, device=device).unsqueeze(-1)
    return lo, hi, (columns - queries).clamp(-k, k) + k


def add_clipped(logits: torch.Tensor, table: torch.Tensor, start: int, k: int, first_key: int = 0) -> torch.Tensor:
    """``logits[..., r, j] += table[..., r, clip(first_key + j - start - r, -k, k) + k]`` in place.

    ``logits``: ``(B, H, rows, Lk)``; ``table``: ``(B, H, rows, 2k + 1)``.
    """
    lo, hi, index = clipped_band(start, logits.shape[-2], first_key, logits.shape[-1], k, logits.device)
    logits[..., :lo].add_(table[..., :1])
    logits[..., hi:].add_(table[..., 2 * k :])
    logits[..., lo:hi].add_(table.gather(-1, index.expand(*table.shape[:-1], hi - lo)))
    return logits


def sum_clipped(dense: torch.Tensor, start: int, k: int, first_key: int = 0) -> torch.Tensor:
    """Row sums per clipped distance: ``(B, H, rows, Lk) -> (B, H, rows, 2k + 1)``, ``out[..., r, c] = sum_j [c(r, j) = c] dense[..., r, j]``."""
    lo, hi, index = clipped_band(start, dense.shape[-2], first_key, dense.shape[-1], k, dense.device)
    out = dense.new_zeros((*dense.shape[:-1], 2 * k + 1))
    out.scatter_add_(-1, index.expand(*dense.shape[:-1], hi - lo), dense[..., lo:hi])
    out[..., 0] += dense[..., :lo].sum(-1)
    out[..., 2 * k] += dense[..., hi:].sum(-1)
    return out


def mix_clipped(probs: torch.Tensor, v: torch.Tensor, values: torch.Tensor | None, start: int, k: int,
                first_key: int = 0) -> torch.Tensor:
    """``probs @ v`` plus ``sum_j probs[..., r, j] values[c(r, j)]``: ``(B, H, rows, Lk) -> (B, H, rows, Dh)``.

    ``v``: the keys' values ``(B, H, Lk, Dh)`` (keys from ``first_key``); ``values``: ``(2k + 1, Dh)`` or ``None``.
    """
    out = torch.matmul(probs, v)
    return out if values is None else out.add_(sum_clipped(probs, start, k, first_key) @ values)


def require_constant(*vectors: torch.Tensor | None) -> None:
    """Refuse trained relative vectors: these kernels give them no gradient."""
    if any(vector is not None and vector.requires_grad for vector in vectors):
        raise ValueError("clipped relative vectors are constants here; trained vectors need their own gradients")
