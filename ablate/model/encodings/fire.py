"""FIRE (Li et al. 2023): a learned function of progressively interpolated relative distance."""

from __future__ import annotations

import math

import torch
from torch import nn

from ablate.model.encodings.registry import ENCODINGS
from ablate.model.encodings.base import PositionalEncoding, ScoreMod, gather_positions


def fire_input(
    i: torch.Tensor, j: torch.Tensor, c: torch.Tensor, threshold: torch.Tensor, eps: float
) -> torch.Tensor:
    """``sign(i - j) * psi(|i - j|) / (psi(max(L, i, j)) + eps)`` with ``psi(x) = log(1 + c x)``.

    Args:
        i: query positions, float, broadcasting with ``j`` (e.g. ``(Lq, 1)`` and ``(1, Lk)``).
        j: key positions, float.
        c: the positive log-transform scale (0-d or broadcasting).
        threshold: the positive threshold ``L`` (0-d or broadcasting).
        eps: added to the normaliser.

    Returns:
        The MLP input, in ``[-1, 1]``, with the broadcast shape of ``i`` and ``j``.
    """
    distance = i - j
    psi = torch.log1p(c * distance.abs())
    normalizer = torch.log1p(c * torch.maximum(torch.maximum(i, j), threshold)) + eps
    return torch.sign(distance) * psi / normalizer


@ENCODINGS.register("fire")
class FIRE(PositionalEncoding):
    """Functional Interpolation for Relative Positions.

    ``bias[h, i, j] = f_theta(psi(i - j) / psi(max(L, i)))[h]`` with ``psi(x) = log(c x + 1)``,
    a learned ``c`` and threshold ``L``, and ``f_theta`` an MLP ``1 -> width -> ReLU -> heads``.
    This follows the reference code in the paper's appendix: ``psi`` uses ``|c x|``, the
    threshold is ``|m * L0|`` with a learned multiplier ``m`` (init 1) over a fixed
    ``L0 = init_threshold``, ``eps`` is added to the normaliser, and ``c`` starts at 0.1.

    Encoders: the paper defines FIRE for causal attention (``j <= i``), and its code feeds
    ``|i - j|`` to the MLP. Here the input is signed,
    ``sign(i - j) * psi(|i - j|) / psi(max(L, i, j))``, so an encoder can tell left from
    right, and the normaliser uses the farther of the two positions so the input stays in
    ``[-1, 1]``. On every pair a causal model attends (``j <= i``) this is exactly the
    paper's formula. The bias is shift-invariant only while all positions stay below ``L``.

    The bias is computed once per forward and shared by all layers, so ``c``, ``L`` and the
    MLP are shared too.

    Args:
        mlp_width: hidden units of ``f_theta`` (paper: 32).
        init_c: initial ``c`` (paper: 0.1).
        init_threshold: ``L0``, the initial threshold ``L`` (paper's code: 512).
        eps: added to the normaliser (paper's code: 1e-6).
    """

    family = "bias"

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False,
        mlp_width: int = 32, init_c: float = 0.1, init_threshold: float = 512.0, eps: float = 1e-6,
    ) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        if mlp_width < 1:
            raise ValueError(f"fire: mlp_width must be >= 1, got {mlp_width}")
        if init_c <= 0 or init_threshold <= 0:
            raise ValueError(f"fire: init_c and init_threshold must be > 0, got {init_c} and {init_threshold}")
        self.mlp_width = mlp_width
        self.init_c = init_c
        self.eps = eps
        self.mlp = nn.Sequential(nn.Linear(1, mlp_width), nn.ReLU(), nn.Linear(mlp_width, num_heads))
        self.c = nn.Parameter(torch.tensor(float(init_c)))
        self.register_buffer("init_threshold", torch.tensor(float(init_threshold)))
        self.threshold_multiplier = nn.Parameter(torch.tensor(1.0))

    def reset_parameters(self) -> None:
        """The paper's initialisation: PyTorch-default ``nn.Linear``, ``c = init_c``, multiplier 1."""
        for layer in (self.mlp[0], self.mlp[2]):
            layer.reset_parameters()
        with torch.no_grad():
            self.c.fill_(self.init_c)
            self.threshold_multiplier.fill_(1.0)

    @property
    def threshold(self) -> torch.Tensor:
        """The learned threshold ``L`` (a 0-d tensor)."""
        return (self.threshold_multiplier * self.init_threshold).abs()

    @property
    def input_dtype(self) -> torch.dtype:
        """Positions and the MLP input in at least float32 (a bfloat16 model's positions would round past 256)."""
        return torch.promote_types(torch.float32, self.c.dtype)

    def normalized_distance(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """MLP input for query positions ``i`` and key positions ``j`` (broadcasting, float)."""
        return fire_input(i, j, self.c.abs(), self.threshold, self.eps)

    def bias(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(H, Lq, Lk)`` for positions ``(L,)``, ``(B, H, Lq, Lk)`` for ``(B, L)``."""
        dtype = self.input_dtype
        i = q_positions.to(dtype).unsqueeze(-1)  # (..., Lq, 1)
        j = k_positions.to(dtype).unsqueeze(-2)  # (..., 1, Lk)
        x = self.normalized_distance(i, j)  # (..., Lq, Lk)
        x = x.to(self.mlp[0].weight.dtype)  # a bfloat16 model has a bfloat16 MLP
        return self.mlp(x.unsqueeze(-1)).movedim(-1, -3)  # (..., H, Lq, Lk)

    def score_mod(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> ScoreMod:
        """FlexAttention form of :meth:`bias`.

        The MLP is unrolled over its hidden units into scalar operations, which compiled
        FlexAttention can fuse (a score modification cannot hold vectors). All learned
        values are packed into one flat ``(H * (3 * width + 3),)`` tensor read by tensor
        indices: compiled FlexAttention scatters gradients into captured tensors read that
        way, but not into 0-d captures such as ``c`` (pytorch/attention-gym#171).
        """
        width, heads = self.mlp_width, self.num_heads

        def shared(values: torch.Tensor) -> torch.Tensor:  # the same values in every head's row
            return values.reshape(1, -1).expand(heads, -1)

        packed = torch.cat(
            [
                shared(self.mlp[0].weight[:, 0]),  # w1: 0 .. W-1
                shared(self.mlp[0].bias),  # b1: W .. 2W-1
                self.mlp[2].weight,  # w2[h]: 2W .. 3W-1
                self.mlp[2].bias.unsqueeze(1),  # b2[h]: 3W
                shared(self.c.abs()),  # |c|: 3W+1
                shared(self.threshold),  # L: 3W+2
            ],
            dim=1,
        ).reshape(-1)  # (H * (3W + 3),)
        row, eps, dtype = 3 * width + 3, self.eps, self.input_dtype

        def score_mod(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            def at(column: int) -> torch.Tensor:
                return packed[h * row + column]

            i = gather_positions(q_positions, b, q_idx).to(dtype)
            j = gather_positions(k_positions, b, kv_idx).to(dtype)
            x = fire_input(i, j, at(3 * width + 1), at(3 * width + 2), eps)
            value = at(3 * width)
            for unit in range(width):
                value = value + at(2 * width + unit) * torch.relu(at(unit) * x + at(width + unit))
            return score + value.to(score.dtype)

        return score_mod

    def untrained_note(self, train_length: int, eval_length: int) -> str | None:
        """Name the MLP inputs that only sequences longer than ``train_length`` produce."""
        if eval_length <= train_length:
            return None
        with torch.no_grad():
            c, threshold = float(self.c.abs()), float(self.threshold)

        def largest_input(length: int) -> float:
            # |i - j| is largest for the pair (length - 1, 0), and psi is increasing.
            far = length - 1
            return math.log1p(c * far) / (math.log1p(c * max(far, threshold)) + self.eps)

        trained, needed = largest_input(train_length), largest_input(eval_length)
        if needed <= trained + 1e-6:
            return None
        return (
            f"fire's MLP sees |normalised distance| in ({trained:.3f}, {needed:.3f}], which training "
            f"at length {train_length} never produced (threshold L={threshold:.0f} > train length)"
        )
