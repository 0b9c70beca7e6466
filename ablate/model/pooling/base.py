"""The pooling contract: hidden states ``(B, L, D)`` + padding mask -> one vector per sequence."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import nn


class Pooling(nn.Module, metaclass=ABCMeta):
    """Base class. Subclasses implement :meth:`forward` and may change the flags."""

    #: The model prepends a learned [CLS] token at index 0 for this pooling.
    prepends_cls: bool = False
    #: Output stays per token, ``(B, L, D)`` (language modelling, seq2seq).
    token_level: bool = False
    #: The pooled vector is a symmetric function of the token states: the same for any order of
    #: them (``ablate.analysis.feasibility`` reasons with it; ``tests/test_feasibility.py`` proves it).
    symmetric: bool = False
    #: The pooled vector is the state at one end of the sequence (``"first"`` or ``"last"``), else
    #: ``None``: a position-free encoder read there is invariant to permutations of the other positions.
    reads_end: str | None = None

    def __init__(self, *, d_model: int, num_heads: int = 4) -> None:
        super().__init__()
        self.d_model = d_model

    def out_dim(self) -> int:
        """Width of the pooled vector."""
        return self.d_model

    @abstractmethod
    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``(B, L, D)``, ``(B, L)|None`` -> ``(B, out_dim)``."""


def token_rank(mask: torch.Tensor) -> torch.Tensor:
    """Index of each real token among the real tokens of its row: ``(B, L) bool -> (B, L) int64``.

    Padding positions get the rank of the nearest real token on their left (or 0);
    callers mask them out.
    """
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def real_lengths(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Real tokens per row, ``(B, 1)`` in ``h``'s dtype, at least 1 (empty rows give 0 vectors)."""
    if mask is None:
        return h.new_full((h.shape[0], 1), h.shape[1])
    return mask.sum(-1, keepdim=True).clamp(min=1).to(h.dtype)


def masked_sum(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return h.sum(1)
    return (h * mask.unsqueeze(-1).to(h.dtype)).sum(1)
