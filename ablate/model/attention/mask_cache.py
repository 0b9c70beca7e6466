"""An explicit inference cache of one static bias mask, with a documented key.

Evaluation loops call a model many times at one length with unchanged parameters;
rebuilding an ``(H, L, L)`` bias each time costs as much as a layer of attention at
long lengths. The model owns one :class:`MaskCache`; attention asks it before
building the combined mask of a static (query-independent) bias.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class MaskCache:
    """The last combined mask of a static bias (as :mod:`ablate.model.attention` builds it) and its key.

    The key is everything the mask depends on: the first position and the length of a
    contiguous integer range, the device, the dtype, causality, the encoding's
    ``training`` flag, and the values of every parameter and buffer of the encoding
    (compared exactly on each lookup; bias encodings hold a few hundred numbers).
    Only inference is cached: under autograd, with padding, or with positions that
    are not a contiguous range, :meth:`key` is ``None`` and nothing is stored.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._state: list[torch.Tensor] = []
        self._mask: Any = None

    @staticmethod
    def key(
        positions: torch.Tensor, padding_mask: torch.Tensor | None, *, causal: bool, dtype: torch.dtype,
        training: bool,
    ) -> tuple[Any, ...] | None:
        """The scalar part of the key, or ``None`` where this mask must not be cached."""
        if torch.is_grad_enabled() or padding_mask is not None or positions.dim() != 1 or positions.numel() == 0:
            return None
        if positions.dtype.is_floating_point or not bool((positions.diff() == 1).all()):
            return None  # randomized or interpolated positions: nothing to reuse
        return (int(positions[0]), positions.numel(), positions.device, dtype, causal, training)

    def get(self, key: tuple[Any, ...] | None, encoding: nn.Module) -> Any:
        """The cached mask if ``key`` and the encoding's parameter values match, else ``None``."""
        if key is None or self._mask is None or key != self._key:
            return None
        state = _state_of(encoding)
        if len(state) != len(self._state) or not all(
            a.shape == b.shape and torch.equal(a, b) for a, b in zip(state, self._state)
        ):
            return None
        return self._mask

    def put(self, key: tuple[Any, ...] | None, encoding: nn.Module, mask: Any) -> None:
        """Remember ``mask`` for ``key`` and a snapshot of the encoding's current values."""
        if key is None:
            return
        self._key, self._mask = key, mask
        self._state = [t.detach().clone() for t in _state_of(encoding)]

    def clear(self) -> None:
        """Drop the cached mask (frees its memory)."""
        self._key, self._state, self._mask = None, [], None


def _state_of(encoding: nn.Module) -> list[torch.Tensor]:
    return [*encoding.parameters(), *encoding.buffers()]
