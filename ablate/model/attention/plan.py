"""A forward pass's attention plan: the chosen path and what every layer shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ablate.model.attention.traits import TUNING, Tuning
from ablate.model.encodings.base import PositionalEncoding


@dataclass(frozen=True)
class Path:
    """A named way to compute attention (see :func:`ablate.model.attention.planner.choose_path`).

    Attributes:
        name: a built-in path (``reference``, ``fused``, ``flex``, ``query-bias``, ``shared-mask``,
            ``blocks``) or a registered kernel of kind ``blocks``.
        rows: query rows per block (paths over blocks) or per row block of a shared mask;
            ``None`` where the whole sequence is one.
    """

    name: str
    rows: int | None = None


@dataclass
class AttentionPlan:
    """Everything attention needs that is the same in every layer of one forward pass."""

    path: Path
    encoding: PositionalEncoding
    positions: torch.Tensor  # (L,) or (B, L)
    causal: bool
    padding_mask: torch.Tensor | None = None  # (B, L), True at real tokens
    tuning: Tuning = TUNING
    #: ``fused``/``shared-mask``: a boolean mask (B, 1, L, L), the combined additive mask (1|B, H, L, L), or None.
    attn_mask: torch.Tensor | None = None
    #: ``query-bias``: the boolean "may attend" structure its per-layer bias is masked with, or None.
    allowed: torch.Tensor | None = None
    #: ``shared-mask`` in row blocks (causal, or learned in training): ``(start, stop, mask)``, each mask
    #: ``(1|B, H, stop - start, keys)``, keys up to the block's last query when causal.
    row_blocks: list[tuple[int, int, torch.Tensor]] | None = None
    #: ``flex``: the block mask and the static score modification.
    block_mask: Any = None
    score_mod: Any = None
