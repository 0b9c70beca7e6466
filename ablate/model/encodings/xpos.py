"""xPos (Sun et al. 2022): RoPE times a per-pair exponential decay, in the same ``rotate_half`` layout."""

from __future__ import annotations

import math

import torch

from ablate.model.encodings.base import UnsupportedLengthError
from ablate.model.encodings.registry import ENCODINGS
from ablate.model.encodings.rotary import (
    _check_base,
    _check_inputs,
    _compute_dtype,
    _Rotary,
    apply_rotary,
    rope_inv_freq,
    xpos_zeta,
)


@ENCODINGS.register("xpos")
class XPosEncoding(_Rotary):
    """xPos (Sun et al. 2022): RoPE times a per-pair exponential decay.

    Pair ``i`` of the query at position ``m`` is scaled by ``zeta_i^((m - c) / scale_base)``
    and of the key at ``n`` by ``zeta_i^(-(n - c) / scale_base)``, with
    ``zeta_i = (2i/d + 0.4) / 1.4 < 1`` (:func:`xpos_zeta`), so ``q_m . k_n``
    carries ``zeta_i^((m - n) / scale_base)``: a decay for keys in the past.

    Centring: ``c = ceil((min + max + 1) / 2)`` over each sequence's positions,
    which is torchscale's ``ceil(L / 2)`` for ``0..L-1``. It cancels in
    ``q_m . k_n`` (q and k are always scaled in the same call) and keeps the
    scales within ``zeta^(+-L/2/scale_base)`` instead of ``zeta^(-L/scale_base)``.
    The rotation uses the raw positions (as torchscale and x-transformers), so with
    ``scale_base=inf`` this is exactly ``rope``. Positions whose decay factors
    are not normal numbers in q's dtype raise :class:`UnsupportedLengthError`.

    In a bidirectional encoder keys to the right of the query (``n > m``) are
    *amplified* by ``zeta^((m - n) / scale_base) > 1``; that is the formula (xPos
    was designed for causal decoders), not a bug.

    Args:
        base: rotary frequency base (10000).
        scale_base: decay length scale (512 in the paper and torchscale); larger
            decays more slowly, ``inf`` disables the decay.
    """

    family = "rotary"

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False,
        base: float = 10000.0, scale_base: float = 512.0,
    ) -> None:
        super().__init__("xpos", d_model=d_model, num_heads=num_heads, causal=causal, rotary_dim=None)
        self.base = _check_base("xpos", base)
        if isinstance(scale_base, bool) or not isinstance(scale_base, (int, float)) or not scale_base > 0:
            raise ValueError(f"xpos: scale_base must be > 0 (torchscale: 512), got {scale_base!r}")
        self.scale_base = float(scale_base)
        self.inv_freq = rope_inv_freq(self.rotary_dim, self.base)
        self.attention_factor = 1.0
        self.log_zeta = xpos_zeta(self.rotary_dim).log()  # (R/2,) all < 0

    def _max_exponent(self, half_span: float) -> float:
        # Largest |log| of any decay factor when |position - c| <= half_span.
        return half_span / self.scale_base * float(-self.log_zeta.min())

    @staticmethod
    def _exponent_limit(dtype: torch.dtype) -> float:
        # Beyond this, a decay factor or its inverse overflows or becomes subnormal.
        info = torch.finfo(dtype)
        return min(math.log(info.max), -math.log(info.tiny))

    def check_length(self, length: int) -> None:
        # Positions 0..L-1 lie within L/2 of their centre; judged at float32 (= bf16) range,
        # the dtypes models run in here; rotate() re-checks against the actual dtype.
        if self._max_exponent(length / 2) > self._exponent_limit(torch.float32):
            raise UnsupportedLengthError(
                f"xpos: length {length} needs decay factors beyond float32's range at "
                f"scale_base={self.scale_base:g}; raise scale_base"
            )

    def _tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        angles = self._angles(positions)  # (..., L, R/2)
        wide = angles.dtype
        pos = positions.to(wide)
        centre = torch.ceil((pos.amin(-1, keepdim=True) + pos.amax(-1, keepdim=True) + 1) / 2)  # (..., 1)
        offset = pos - centre  # (..., L)
        half_span = float(offset.abs().max())  # one host sync per forward pass (tables are memoised)
        # The rotated q and k are returned in the input dtype, so its range is what counts.
        limit = self._exponent_limit(dtype)
        if self._max_exponent(half_span) > limit:
            raise UnsupportedLengthError(
                f"xpos: positions spanning {2 * half_span:g} need decay factors beyond {dtype}'s range "
                f"at scale_base={self.scale_base:g}; raise scale_base or use a dtype with a wider range"
            )
        log_zeta = self.log_zeta.to(device=positions.device, dtype=wide)
        log_scale = (offset / self.scale_base).unsqueeze(-1) * log_zeta  # (..., L, R/2)
        log_scale = torch.cat((log_scale, log_scale), dim=-1)  # (..., L, R)
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos(), angles.sin()
        up, down = log_scale.exp(), (-log_scale).exp()  # q gets zeta^(+n'), k gets zeta^(-n')
        compute = _compute_dtype(dtype)
        return tuple(self._broadcast(t.to(compute), positions) for t in (cos * up, sin * up, cos * down, sin * down))

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate and decay ``q, k`` ``(B, H, L, Dh)`` at positions ``(L,)|(B, L)``."""
        _check_inputs("xpos", self.head_dim, q, k, positions)
        cos_q, sin_q, cos_k, sin_k = self._cached_tables(positions, q.dtype)
        compute = cos_q.dtype
        return (
            apply_rotary(q.to(compute), cos_q, sin_q).to(q.dtype),
            apply_rotary(k.to(compute), cos_k, sin_k).to(k.dtype),
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, base={self.base}, scale_base={self.scale_base:g}"
