"""Rotary encodings, which rotate queries and keys: ``rope`` (with pi/ntk/yarn scaling); ``xpos`` in
:mod:`~ablate.model.encodings.xpos`.

Layout: HF LLaMA / GPT-NeoX ``rotate_half`` ("half-split"). Feature ``j`` of the
rotated part is paired with feature ``j + R/2`` and both turn at frequency
``inv_freq[j]`` (``R`` = rotary dimension). RoFormer and torchscale pair adjacent
features ``(2j, 2j+1)`` instead; the two layouts are the same encoding up to a
fixed permutation of the head features, which the learned projections absorb, so
we follow HF to make reference values directly comparable.

Angles are computed from explicit positions in float64 (float32 on MPS, which
has no float64), and the rotation itself runs in at least float32 and is cast
back to the input dtype, so bf16/fp16 models are not hurt by rounding the angles
or the cos/sin tables to 8 bits of mantissa.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from typing import Callable

import torch

from ablate.model.encodings.registry import ENCODINGS
from ablate.model.encodings.base import PositionalEncoding

#: Allowed values of ``rope``'s ``scaling`` (``None`` or ``"none"`` turns it off).
SCALINGS = ("pi", "ntk", "yarn")
#: YaRN's ramp bounds in full rotations over the original context (HF / paper defaults).
YARN_BETA_FAST = 32.0
YARN_BETA_SLOW = 1.0


# ------------------------------------------------------------------ functions
def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(..., R)`` -> ``(..., R)``: halves ``[x1, x2]`` become ``[-x2, x1]`` (HF LLaMA)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``R = cos.shape[-1]`` features of ``x``; the rest pass through.

    Args:
        x: ``(B, H, L, Dh)``.
        cos, sin: ``(L, R)`` or ``(B, 1, L, R)``, in ``x``'s dtype, each half
            repeating the same ``R/2`` angles (``rotate_half`` layout).

    Returns:
        ``(B, H, L, Dh)``.
    """
    rotary_dim = cos.shape[-1]
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    rotated = x_rot * cos + rotate_half(x_rot) * sin
    if x_pass.shape[-1] == 0:
        return rotated
    return torch.cat((rotated, x_pass), dim=-1)


def rope_inv_freq(dim: int, base: float) -> torch.Tensor:
    """RoFormer frequencies ``base^(-2i/dim)``, ``i < dim/2``: ``(dim/2,)`` float64."""
    return 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def ntk_base(base: float, factor: float, dim: int) -> float:
    """NTK-aware base (bloc97): ``base * factor^(dim / (dim - 2))``.

    Chosen so the lowest frequency is interpolated by exactly ``factor`` while the
    highest is unchanged. HF's dynamic NTK is this formula with
    ``factor * seq_len / max_pos - (factor - 1)`` in place of ``factor``.
    """
    return base * factor ** (dim / (dim - 2))


def yarn_inv_freq(
    dim: int,
    base: float,
    factor: float,
    original_max_position: int,
    *,
    beta_fast: float = YARN_BETA_FAST,
    beta_slow: float = YARN_BETA_SLOW,
) -> tuple[torch.Tensor, float]:
    """YaRN (Peng et al. 2023) frequencies and attention factor, as HF ``_compute_yarn_parameters``.

    Pairs that turn more than ``beta_fast`` times over ``original_max_position``
    keep their frequency (extrapolate), those turning fewer than ``beta_slow``
    times are divided by ``factor`` (interpolate, as PI), with a linear ramp in
    between. The attention factor ``0.1 ln(factor) + 1`` (1 for ``factor <= 1``)
    multiplies cos and sin, i.e. scales the logits by its square.

    Returns:
        ``(inv_freq (dim/2,) float64, attention_factor)``.
    """

    def correction_dim(num_rotations: float) -> float:
        # Pair index whose wavelength fits `num_rotations` times into the original context.
        return dim * math.log(original_max_position / (num_rotations * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), dim - 1)  # HF clamps to dim - 1, not dim/2 - 1
    if low == high:
        high += 0.001  # HF: avoid a zero-width ramp
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    extrapolation = 1.0 - ramp  # 1: keep the original frequency, 0: interpolate
    inv_freq = rope_inv_freq(dim, base)
    inv_freq = (inv_freq / factor) * (1.0 - extrapolation) + inv_freq * extrapolation
    attention_factor = 1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0
    return inv_freq, attention_factor


def xpos_zeta(dim: int) -> torch.Tensor:
    """xPos per-pair decay bases ``zeta_i = (2i/dim + 0.4) / 1.4``: ``(dim/2,)`` float64.

    Same as torchscale's ``(arange(0, dim, 2) + 0.4 * dim) / (1.4 * dim)``.
    """
    return (torch.arange(0, dim, 2, dtype=torch.float64) + 0.4 * dim) / (1.4 * dim)


def _angle_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Rotate in at least float32: bf16 cos/sin tables alone would cost ~3 significant digits.
    return torch.promote_types(dtype, torch.float32)


def _check_inputs(name: str, head_dim: int, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4:
        raise ValueError(f"{name}: q and k must be (B, H, L, Dh), got {tuple(q.shape)} and {tuple(k.shape)}")
    if q.shape[-1] != head_dim or k.shape[-1] != head_dim:
        raise ValueError(
            f"{name}: built for head_dim={head_dim} but got q {tuple(q.shape)} and k {tuple(k.shape)}"
        )
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"{name}: q and k share one positions tensor, so their lengths must match")
    length, batch = q.shape[-2], q.shape[0]
    if (
        positions.dim() not in (1, 2)
        or positions.shape[-1] != length
        or (positions.dim() == 2 and positions.shape[0] not in (1, batch))
    ):
        raise ValueError(
            f"{name}: positions must be (L,) or (B, L) with L={length}, B={batch}; got {tuple(positions.shape)}"
        )
    if positions.dtype == torch.bool or positions.is_complex():
        raise ValueError(f"{name}: positions must be integer or real, got {positions.dtype}")


def _check_rotary_dim(name: str, rotary_dim: int | None, head_dim: int) -> int:
    dim = head_dim if rotary_dim is None else rotary_dim
    if not isinstance(dim, int) or dim < 2 or dim % 2 or dim > head_dim:
        what = f"head_dim={head_dim}" if rotary_dim is None else f"rotary_dim={rotary_dim!r}"
        raise ValueError(
            f"{name}: the rotary dimension must be an even integer in [2, head_dim={head_dim}], got {what}"
        )
    return dim


def _check_base(name: str, base: float) -> float:
    if not isinstance(base, (int, float)) or not math.isfinite(base) or base <= 1:
        raise ValueError(f"{name}: base must be a finite number > 1 (RoFormer: 10000), got {base!r}")
    return float(base)


# -------------------------------------------------------------------- modules
class TableMemo:
    """The rotation tables of the last positions seen, so every layer of one forward pass shares them.

    Key: ``(id of the positions tensor, input dtype, inference mode)``. The model
    computes positions once per forward pass and hands the same tensor to every
    layer, so identity is enough and needs no host sync and no assumption that
    positions are ``arange`` (a length-indexed table would need
    ``positions.max()`` on the host every layer, and computing cos/sin costs the
    same ``O(L * R)`` as gathering). The tensor itself is held, so its id cannot
    be reused while it is the key. Inference tensors cannot be saved for
    backward, hence inference mode in the key. One entry: a new key replaces it.
    """

    def __init__(self) -> None:
        self._positions: torch.Tensor | None = None
        self._key: tuple[torch.dtype, bool] | None = None
        self._tables: tuple[torch.Tensor, ...] = ()

    def get(self, positions: torch.Tensor, dtype: torch.dtype,
            build: Callable[[], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        """The tables for ``(positions, dtype)``: the held ones when the key matches, else ``build()``."""
        key = (dtype, torch.is_inference_mode_enabled())
        if self._positions is not positions or self._key != key:
            self._tables = build()
            self._positions, self._key = positions, key
        return self._tables

    @property
    def empty(self) -> bool:
        """Whether no tables are held."""
        return self._positions is None

    def clear(self) -> None:
        """Drop the held tables (and the positions tensor they belong to)."""
        self._positions, self._key, self._tables = None, None, ()


class _Rotary(PositionalEncoding, metaclass=ABCMeta):
    """Shared machinery of ``rope`` and ``xpos``: frequencies, the tables' memo, input checks."""

    inv_freq: torch.Tensor  # (R/2,) float64 on CPU; a plain attribute, so model.half() cannot round it
    attention_factor: float

    def __init__(self, name: str, *, d_model: int, num_heads: int, causal: bool, rotary_dim: int | None) -> None:
        super().__init__(d_model=d_model, num_heads=num_heads, causal=causal)
        self.rotary_dim = _check_rotary_dim(name, rotary_dim, self.head_dim)
        self._freq_by_device: dict[torch.device, torch.Tensor] = {}
        self._memo = TableMemo()

    def set_frequencies(self, inv_freq: torch.Tensor, attention_factor: float) -> None:
        """Use frequencies ``(R/2,)`` and an attention factor from now on (evaluation-time scaling).

        The per-device copies and the tables' memo belong to the old frequencies, so both are dropped.
        """
        if inv_freq.shape != self.inv_freq.shape:
            raise ValueError(f"inv_freq must have shape {tuple(self.inv_freq.shape)}, got {tuple(inv_freq.shape)}")
        self.inv_freq = inv_freq.to(torch.float64)
        self.attention_factor = float(attention_factor)
        self._freq_by_device = {}
        self._memo = TableMemo()

    def _angles(self, positions: torch.Tensor) -> torch.Tensor:
        """``(L,)|(B, L)`` positions -> ``(..., L, R/2)`` angles in float64 (float32 on MPS)."""
        device = positions.device
        dtype = _angle_dtype(device)
        freq = self._freq_by_device.get(device)
        if freq is None or freq.dtype != dtype:
            with torch.inference_mode(False):  # kept across calls: must stay a normal tensor
                freq = self._freq_by_device[device] = self.inv_freq.to(device=device, dtype=dtype)
        return positions.to(dtype).unsqueeze(-1) * freq

    @abstractmethod
    def _tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """Tables for inputs of ``dtype``, stored in the compute dtype (>= float32)."""

    def _cached_tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        return self._memo.get(positions, dtype, lambda: self._tables(positions, dtype))

    def __getstate__(self) -> dict:
        # Caches are rebuilt on demand; never ship (possibly CUDA) tables to another process.
        state = dict(super().__getstate__())
        state["_memo"], state["_freq_by_device"] = TableMemo(), {}
        return state

    @staticmethod
    def _broadcast(table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # (B, L, R) -> (B, 1, L, R) so per-sequence tables broadcast over heads.
        return table.unsqueeze(1) if positions.dim() == 2 else table

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, rotary_dim={self.rotary_dim}"


@ENCODINGS.register("rope")
class RotaryEncoding(_Rotary):
    """RoPE (Su et al. 2021, RoFormer), in HF LLaMA's ``rotate_half`` layout.

    ``q_m . k_n`` depends only on ``m - n``: each feature pair of q and k is
    rotated by ``position * inv_freq[i]``. Norms are preserved (except that YaRN
    multiplies them by its attention factor).

    Args:
        base: frequency base (10000 in RoFormer and LLaMA 1/2).
        rotary_dim: features rotated per head, even; the rest pass through
            unchanged (GPT-NeoX / Phi "partial rotary"). Default: all of head_dim.
        scaling: context-extension method, ``None`` (or ``"none"``), ``"pi"``
            (Chen et al. 2023: positions / factor), ``"ntk"`` (NTK-aware base,
            :func:`ntk_base`) or ``"yarn"`` (Peng et al. 2023, :func:`yarn_inv_freq`).
        factor: context extension ratio (> 0); 1.0 means no scaling and is
            required when ``scaling`` is off.
        original_max_position: the training length the scaling extends; YaRN
            needs it to place its ramp, PI and NTK ignore it.
    """

    family = "rotary"

    def __init__(
        self, *, d_model: int, num_heads: int, causal: bool = False,
        base: float = 10000.0, rotary_dim: int | None = None, scaling: str | None = None,
        factor: float = 1.0, original_max_position: int | None = None,
    ) -> None:
        super().__init__("rope", d_model=d_model, num_heads=num_heads, causal=causal, rotary_dim=rotary_dim)
        self.base = _check_base("rope", base)
        if scaling == "none":
            scaling = None  # TOML has no null: let suites write scaling = "none"
        if scaling is not None and scaling not in SCALINGS:
            allowed = ", ".join(map(repr, SCALINGS))
            raise ValueError(f"rope: unknown scaling {scaling!r}; allowed: None/'none', {allowed}")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"rope: factor must be a finite number > 0, got {factor!r}")
        if scaling is None and factor != 1:
            raise ValueError(
                f"rope: factor={factor} has no effect without scaling; set scaling to one of {SCALINGS}"
            )
        if original_max_position is not None and (
            isinstance(original_max_position, bool)
            or not isinstance(original_max_position, int)
            or original_max_position < 1
        ):
            raise ValueError(f"rope: original_max_position must be a positive integer, got {original_max_position!r}")
        if scaling == "yarn" and original_max_position is None:
            raise ValueError("rope: scaling='yarn' needs original_max_position (the training length it extends)")
        if scaling == "ntk" and self.rotary_dim == 2:
            raise ValueError("rope: scaling='ntk' needs a rotary dimension > 2 (its exponent is dim / (dim - 2))")
        self.scaling = scaling
        self.factor = float(factor)
        self.original_max_position = original_max_position

        dim, self.attention_factor = self.rotary_dim, 1.0
        if scaling == "yarn":
            self.inv_freq, self.attention_factor = yarn_inv_freq(dim, self.base, self.factor, original_max_position)
        elif scaling == "ntk":
            self.inv_freq = rope_inv_freq(dim, ntk_base(self.base, self.factor, dim))
        elif scaling == "pi":
            # positions / factor == frequencies / factor (HF's linear scaling does the same).
            self.inv_freq = rope_inv_freq(dim, self.base) / self.factor
        else:
            self.inv_freq = rope_inv_freq(dim, self.base)

    def _tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        angles = self._angles(positions)  # (..., L, R/2)
        angles = torch.cat((angles, angles), dim=-1)  # (..., L, R): both halves share frequencies
        compute = _compute_dtype(dtype)
        cos = self._broadcast((angles.cos() * self.attention_factor).to(compute), positions)
        sin = self._broadcast((angles.sin() * self.attention_factor).to(compute), positions)
        return cos, sin

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q, k`` ``(B, H, L, Dh)`` by positions ``(L,)|(B, L)`` (int or float)."""
        _check_inputs("rope", self.head_dim, q, k, positions)
        cos, sin = self._cached_tables(positions, q.dtype)
        compute = cos.dtype
        return (
            apply_rotary(q.to(compute), cos, sin).to(q.dtype),
            apply_rotary(k.to(compute), cos, sin).to(k.dtype),
        )

    def extra_repr(self) -> str:
        scaling = f", scaling={self.scaling}, factor={self.factor}" if self.scaling else ""
        return f"{super().extra_repr()}, base={self.base}{scaling}"
