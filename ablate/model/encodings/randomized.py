"""Randomized positional encodings (Ruoss et al. 2023), a wrapper around any encoding."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ablate.model.encodings.registry import ENCODINGS, create_encoding
from ablate.core.registry import split_spec
from ablate.model.encodings.base import ClippedRelative, PositionalEncoding, ScoreMod

EVAL_POSITIONS = ("ordinary", "random")


@ENCODINGS.register("randomized")
class RandomizedPositions(PositionalEncoding):
    """Train on a sorted random subset of ``[0, max_length)`` instead of ``0..L-1``.

    The wrapped encoding then sees, during training, positions as large as those
    of sequences up to ``max_length`` long, which is what lets it generalise to
    longer test sequences. Positions are drawn from torch's global generator (the
    runner seeds it), one subset per batch, as in the reference implementation.

    Args:
        base: the wrapped encoding, a name or ``{name = ..., **params}``.
        max_length: the range positions are drawn from (the paper's ``L``; it
            must exceed the longest evaluation length).
        eval_positions: ``"ordinary"`` (``0..L-1`` at evaluation, the default) or
            ``"random"`` (a fresh sorted random subset at evaluation too, which is what
            the reference implementation, deepmind/randomized_positional_encodings,
            does: its noisy encodings sample in every call). With ``"ordinary"`` the
            dense positions of evaluation are themselves unlike the sparse ones of
            training, which can cost accuracy even at the train length.
    """

    family = "wrapper"
    #: Parameters that are themselves encoding specs (checked as such when a suite is loaded).
    component_parameters = ("base",)

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False,
        base: str | Mapping[str, Any] = "rope", max_length: int = 2048,
        eval_positions: str = "ordinary",
    ) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        if split_spec(base)[0] == "randomized":
            raise ValueError("randomized: the base encoding cannot itself be 'randomized'")
        if eval_positions not in EVAL_POSITIONS:
            raise ValueError(f"randomized: eval_positions must be one of {EVAL_POSITIONS}, got {eval_positions!r}")
        if max_length < 1:
            raise ValueError(f"randomized: max_length must be >= 1, got {max_length}")
        self.base = create_encoding(base, d_model=d_model, num_heads=num_heads, causal=causal)
        self.max_length = max_length
        self.eval_positions = eval_positions

    def positions(self, length: int, *, device: torch.device | str | None = None) -> torch.Tensor:
        """``(L,)`` sorted random subset of ``[0, max_length)`` in training; see ``eval_positions`` otherwise."""
        if not self.training and self.eval_positions == "ordinary":
            return torch.arange(length, device=device)
        if length > self.max_length:
            raise ValueError(
                f"randomized: sequence length {length} exceeds max_length={self.max_length}; "
                "raise max_length above the longest length you train or evaluate"
            )
        return torch.randperm(self.max_length)[:length].sort().values.to(device)

    def check_length(self, length: int) -> None:
        self.base.check_length(length if self.eval_positions == "ordinary" else self.max_length)

    def untrained_note(self, train_length: int, eval_length: int) -> str | None:
        if eval_length > self.max_length:
            return f"positions beyond max_length={self.max_length} were never sampled in training"
        return None

    @property
    def has_bias(self) -> bool:
        return self.base.has_bias

    @property
    def bias_needs_query(self) -> bool:
        return self.base.bias_needs_query  # attention asks the wrapper; the base's family decides

    def embed(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.base.embed(x, positions)

    def rotate(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base.rotate(q, k, positions)

    def bias(self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor | None:
        return self.base.bias(q_positions, k_positions, q)

    def clipped_relative(self) -> ClippedRelative | None:
        return self.base.clipped_relative()

    def score_mod(self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None) -> ScoreMod | None:
        return self.base.score_mod(q_positions, k_positions, q)
