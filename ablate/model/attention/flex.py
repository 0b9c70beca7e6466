"""FlexAttention: the encoding's ``score_mod`` and a block mask, so no ``(B, H, L, L)`` bias is materialised.

Compiled on CUDA, where it also trains (gradients reach the bias parameters through the
tensors the ``score_mod`` captures); on the CPU it runs uncompiled in inference, which is
how tests check it against SDPA. Imported lazily: only newer torch builds have it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch


def flex_available() -> bool:
    """Whether this torch has FlexAttention."""
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _compiled_flex() -> Callable[..., torch.Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def _eager_flex() -> Callable[..., torch.Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention


def flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, score_mod: Any, block_mask: Any) -> torch.Tensor:
    """FlexAttention ``(B, H, L, Dh) x3 -> (B, H, L, Dh)``, compiled on CUDA."""
    attention = _compiled_flex() if q.is_cuda else _eager_flex()
    return attention(q, k, v, score_mod=score_mod, block_mask=block_mask)


def block_mask_of(padding_mask: torch.Tensor | None, causal: bool, length: int, device: torch.device) -> Any:
    """The block mask of padding ``(B, L)`` and causality, or None.

    As :func:`ablate.model.attention.masks.block_allowed` allows keys.
    """
    if padding_mask is None and not causal:
        return None
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        keep = q_idx >= 0  # all-True of the right shape
        if causal:
            keep = keep & (kv_idx <= q_idx)
        if padding_mask is not None:
            keep = keep & (padding_mask[b, kv_idx] | (q_idx == kv_idx))
        return keep

    batch = None if padding_mask is None else padding_mask.shape[0]
    return create_block_mask(mask_mod, batch, None, length, length, device=device, _compile=device.type == "cuda")
