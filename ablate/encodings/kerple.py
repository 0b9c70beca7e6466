"""KERPLE (Chi et al. 2022), logarithmic variant: ``-r1 * log(1 + r2 * |i - j|)`` per head."""

from __future__ import annotations

import torch
from torch import nn

from ablate.encodings.registry import ENCODINGS
from ablate.encodings.base import PositionalEncoding, ScoreMod, bias_from_distances, gather_positions


@ENCODINGS.register("kerple")
class KerpleLog(PositionalEncoding):
    """Kernelized relative positional bias with the logarithmic kernel.

    ``bias[h, i, j] = -r1_h * log(1 + r2_h * |i - j|)`` with learned per-head ``r1, r2 > 0``.
    Following the official code (``ParallelKerpleLog`` in chijames/KERPLE), ``r1`` starts
    uniform in ``(0, 2)`` and ``r2`` uniform in ``(0, 1)``, and both are kept positive by
    clamping the stored values to ``>= 0.01`` every time the bias is computed (a projection
    after each optimiser step, so gradients are those of the clamped values). The official
    causal code uses ``tril(i - j)``; ``|i - j|`` equals it on every unmasked pair and is
    the symmetric choice for bidirectional encoders (the paper only trains decoders). The
    bias is computed once per forward and shared by all layers, so ``r1, r2`` are too.

    Args:
        eps: the clamping floor for ``r1`` and ``r2`` (official: ``1e-2``).
    """

    family = "bias"

    def __init__(self, *, d_model: int, num_heads: int, causal: bool = False, eps: float = 1e-2) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        if eps <= 0:
            raise ValueError(f"kerple: eps must be > 0 to keep r1, r2 positive, got {eps}")
        self.eps = eps
        self.r1 = nn.Parameter(torch.empty(num_heads))  # official: bias_p
        self.r2 = nn.Parameter(torch.empty(num_heads))  # official: bias_a
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official initialisation: ``r1 ~ U(0, 2)``, ``r2 ~ U(0, 1)``, then the clamp."""
        with torch.no_grad():
            self.r1.copy_(torch.rand(self.num_heads) * 2)
            self.r2.copy_(torch.rand(self.num_heads))
        self._project()

    def _project(self) -> tuple[torch.Tensor, torch.Tensor]:
        # As the official code: clamp the stored data (not a differentiable clamp, which
        # would zero the gradient of a parameter stuck below eps).
        self.r1.data.clamp_(min=self.eps)
        self.r2.data.clamp_(min=self.eps)
        return self.r1, self.r2

    def bias(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(H, Lq, Lk)`` for positions ``(L,)``, ``(B, H, Lq, Lk)`` for ``(B, L)``."""
        r1, r2 = self._project()

        def values_of(distance: torch.Tensor) -> torch.Tensor:  # (*S) -> (H, *S)
            shape = (-1, *[1] * distance.dim())
            return -r1.view(shape) * torch.log1p(r2.view(shape) * distance.to(torch.float32).abs())

        return bias_from_distances(values_of, q_positions, k_positions)

    def score_mod(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> ScoreMod:
        """FlexAttention form of :meth:`bias`."""
        r1, r2 = self._project()

        def score_mod(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            relative = gather_positions(k_positions, b, kv_idx) - gather_positions(q_positions, b, q_idx)
            value = -r1[h] * torch.log1p(r2[h] * relative.to(torch.float32).abs())
            return score + value.to(score.dtype)

        return score_mod
