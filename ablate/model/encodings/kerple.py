"""KERPLE (Chi et al. 2022), logarithmic variant: ``-r1 * log(1 + r2 * |i - j|)`` per head."""

from __future__ import annotations

import torch
from torch import nn

from ablate.model.encodings.distance import DistanceBias
from ablate.model.encodings.registry import ENCODINGS


@ENCODINGS.register("kerple")
class KerpleLog(DistanceBias):
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
    direction_blind = True

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
        self.project_parameters()

    def project_parameters(self) -> None:
        """Clamp ``r1, r2`` to ``>= eps``, as the official code: the stored data, not a differentiable
        clamp (which would zero the gradient of a parameter stuck below eps)."""
        self.r1.data.clamp_(min=self.eps)
        self.r2.data.clamp_(min=self.eps)

    def distance_bias(self, distance: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """``-r1_h * log(1 + r2_h * |j - i|)``."""
        return -self.r1[head] * torch.log1p(self.r2[head] * distance.to(torch.float32).abs())
