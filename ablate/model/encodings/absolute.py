"""Absolute encodings, added to the token embeddings: ``none``, ``sinusoidal``, ``learned``."""

from __future__ import annotations

import torch
from torch import nn

from ablate.model.encodings.registry import ENCODINGS
from ablate.model.encodings.base import PositionalEncoding, UnsupportedLengthError


@ENCODINGS.register("none")
class NoPositionalEncoding(PositionalEncoding):
    """NoPE: no positional information at all (Kazemnejad et al. 2023).

    A causal decoder still sees order through its mask; a bidirectional encoder
    with this encoding is permutation-equivariant.
    """

    family = "none"
    direction_blind = True  # no positions at all


def sinusoidal_table(positions: torch.Tensor, dim: int, *, base: float = 10000.0) -> torch.Tensor:
    """Vaswani et al. 2017 sinusoids: ``(...,)`` positions -> ``(..., dim)``.

    ``pe[p, 2i] = sin(p / base^(2i/dim))`` and ``pe[p, 2i+1] = cos(p / base^(2i/dim))``
    (interleaved, as in the paper and tensor2tensor's ``get_timing_signal`` order
    used by the Annotated Transformer).
    """
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even dimension, got {dim}")
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
    angles = positions.to(torch.float64).unsqueeze(-1) * inv_freq  # (..., dim/2)
    table = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)  # interleave
    return table.to(torch.float32)


@ENCODINGS.register("sinusoidal")
class SinusoidalEncoding(PositionalEncoding):
    """Fixed sinusoidal absolute encoding added to the embeddings.

    The original Transformer's ``sqrt(d_model)`` factor on the token embeddings is
    not applied here: it is the model-level ``embedding_scale`` setting, the same
    for every encoding (:class:`ablate.model.transformer.ModelConfig`).

    Args:
        base: wavelength base (10000 in the paper).
    """

    family = "absolute"

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False, base: float = 10000.0,
    ) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        self.base = base
        self._cache: torch.Tensor | None = None

    def _table(self, length: int, device: torch.device) -> torch.Tensor:
        # Cache rows 0..length-1; integer positions index it, others are computed.
        if self._cache is None or self._cache.shape[0] < length or self._cache.device != device:
            self._cache = sinusoidal_table(torch.arange(length, device=device), self.d_model, base=self.base)
        return self._cache

    def embed(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` + ``pe(positions)`` with positions ``(L,)|(B, L)``."""
        if positions.dtype.is_floating_point:
            pe = sinusoidal_table(positions, self.d_model, base=self.base)
        else:
            pe = self._table(int(positions.max()) + 1, x.device)[positions]
        return x + pe.to(x.dtype)


@ENCODINGS.register("learned")
class LearnedEncoding(PositionalEncoding):
    """BERT-style learned absolute table with ``max_positions`` rows.

    Positions ``>= max_positions`` raise :class:`UnsupportedLengthError` (never a
    silent wrap). Rows that training never indexed stay at their random
    initialisation, which :meth:`untrained_note` reports.

    Args:
        max_positions: rows in the table (BERT: 512).
        init_std: normal initialisation std. Default ``0.02 * sqrt(d_model)``: the scale of
            the token embeddings it is added to under the default convention
            (``embedding_init_std = 0.02`` times ``embedding_scale = "sqrt_d"``), so neither
            term starts out drowning the other; BERT's own value, relative to unscaled
            token embeddings, is ``0.02``.
    """

    family = "absolute"

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False,
        max_positions: int = 512, init_std: float | None = None,
    ) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        if max_positions < 1:
            raise ValueError(f"learned encoding: max_positions must be >= 1, got {max_positions}")
        self.max_positions = max_positions
        self.table = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.table.weight, std=0.02 * d_model**0.5 if init_std is None else init_std)

    def check_length(self, length: int) -> None:
        if length > self.max_positions:
            raise UnsupportedLengthError(
                f"learned encoding has {self.max_positions} positions (max_positions) "
                f"but the sequence needs {length}; it cannot represent unseen positions"
            )

    def untrained_note(self, train_length: int, eval_length: int) -> str | None:
        if eval_length > train_length:
            return f"rows {train_length}..{min(eval_length, self.max_positions) - 1} of the learned table were never trained"
        return None

    def embed(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` + ``table[positions]``; raises beyond ``max_positions``."""
        if positions.dtype.is_floating_point:
            raise UnsupportedLengthError("learned encoding needs integer positions (no interpolation)")
        self.check_length(int(positions.max()) + 1)
        return x + self.table(positions).to(x.dtype)
