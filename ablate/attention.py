"""The one attention call site: SDPA, blockwise attention in training, or FlexAttention on CUDA.

Masks are built once per forward pass (:func:`plan_attention`) and reused by
every layer, because static bias encodings share their bias across layers and the
padding/causal structure is the same in every layer. Nothing here names an
encoding: attention asks the encoding contract (``has_bias``, ``bias_needs_query``,
``mixes_values``; see :mod:`ablate.encodings.base`).

Backends:
    * ``sdpa`` - :func:`torch.nn.functional.scaled_dot_product_attention`. In
      inference the encoding's bias, the padding mask and the causal mask are
      combined into a single additive float mask (or a boolean mask when there is
      no bias, or SDPA's ``is_causal`` fast path when there is nothing else).
    * ``blocks`` - :mod:`ablate.blockwise`, chosen by the plan, never requested:
      training with a bias (except ``flex`` on CUDA; FlexAttention has no CPU
      backward), and any encoding that mixes values, attend over blocks of queries
      with recomputation in backward, so no ``(B, H, L, L)`` tensor is kept.
    * ``flex`` - :func:`torch.nn.attention.flex_attention.flex_attention` with the
      encoding's ``score_mod`` and a block mask, so a ``(B, H, L, L)`` bias is
      never materialised; gradients reach the bias parameters through the tensors
      the ``score_mod`` captures. Compiled on CUDA; on CPU it runs uncompiled
      (slowly), which is how tests check it agrees with ``sdpa``.
    * ``auto`` - ``flex`` on CUDA for encodings with a bias, ``sdpa`` otherwise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from ablate.block_masks import block_ranges
from ablate.blockwise import BiasedAttention, blockwise_attention, static_block_mask
from ablate.encodings.base import PositionalEncoding
from ablate.mask_cache import MaskCache

Backend = Literal["auto", "sdpa", "flex"]
BACKENDS = ("auto", "sdpa", "flex")


def flex_available() -> bool:
    """Whether this torch has FlexAttention."""
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(requested: str, device: torch.device, encoding: PositionalEncoding) -> str:
    """Resolve ``auto`` to a concrete backend; reject unknown or unavailable ones."""
    if requested not in BACKENDS:
        raise ValueError(f"attention backend must be one of {BACKENDS}, got {requested!r}")
    if requested == "flex" and not flex_available():
        raise ValueError("attention backend 'flex' needs torch.nn.attention.flex_attention (torch >= 2.5)")
    if requested == "auto":
        use_flex = device.type == "cuda" and encoding.has_bias and flex_available()
        return "flex" if use_flex else "sdpa"
    return requested


@functools.cache
def _compiled_flex() -> Callable[..., torch.Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


@dataclass
class AttentionPlan:
    """Everything attention needs that is the same in every layer of one forward pass."""

    backend: str
    positions: torch.Tensor  # (L,) or (B, L)
    causal: bool
    padding_mask: torch.Tensor | None = None  # (B, L), True at real tokens
    #: sdpa: combined additive float mask (H|1, L, L) / (B, H|1, L, L), a bool mask, or None.
    attn_mask: torch.Tensor | None = None
    #: sdpa: boolean "may attend" structure, kept for biases computed per layer.
    allowed: torch.Tensor | None = None
    #: sdpa, a static bias built in row blocks (causal, or learned in training): ``(start, stop, mask)``,
    #: each mask ``(1|B, H, stop - start, keys)``, keys up to the block's last query when causal.
    row_blocks: list[tuple[int, int, torch.Tensor]] | None = None
    #: flex: block mask and the static score modification.
    block_mask: Any = None
    score_mod: Any = None


#: A static bias without parameters (ALiBi) is built once per forward pass and shared by
#: every layer, in training too: nothing of it is differentiated, and SDPA keeps its fused
#: kernels. Past this many mask elements (256 MiB in float32) one shared mask outweighs
#: what blockwise attention saves, and training goes over blocks instead.
SHARED_MASK_MAX_ELEMENTS = 2**26

#: A static bias with parameters (T5, KERPLE, FIRE) is shared the same way, computed once
#: per forward pass instead of once per block and layer, while it is small: autograd keeps
#: the mask, its gradient and each layer's share of that gradient, all ``(H, L, L)``, so the
#: limit is lower (4 heads at L = 1024).
SHARED_LEARNED_MASK_MAX_ELEMENTS = 2**22

#: Query rows per causal row block of a shared mask: each block reads keys up to its last
#: row, so about half of a causal mask is never read.
CAUSAL_ROW_BLOCK = 128

#: Query rows per checkpointed region of a learned shared mask: backward recomputes one
#: region at a time, and what the bias computes on the way (FIRE's MLP, ``width`` values
#: per pair) is kept for that region only.
TRAINED_MASK_ROWS = 32


def _trains_over_blocks(encoding: PositionalEncoding, padding_mask: torch.Tensor | None, length: int) -> bool:
    """Whether training attention must go over query blocks (nothing ``(B, H, L, L)`` kept for backward)."""
    if not encoding.has_bias:
        return False
    if encoding.bias_needs_query:
        return True  # a different bias in every layer
    limit = SHARED_LEARNED_MASK_MAX_ELEMENTS if _bias_is_trained(encoding) else SHARED_MASK_MAX_ELEMENTS
    batch = 1 if padding_mask is None else padding_mask.shape[0]
    return batch * encoding.num_heads * length * length > limit


def _bias_is_trained(encoding: PositionalEncoding) -> bool:
    """Whether this forward pass differentiates the bias's parameters."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in encoding.parameters())


def _allowed(padding_mask: torch.Tensor | None, causal: bool, length: int, device: torch.device) -> torch.Tensor | None:
    """Boolean ``(L, L)`` or ``(B, 1, L, L)`` "query may attend key" mask, or None if all allowed.

    A padding query may always attend itself, so no row is fully masked (a fully
    masked softmax row is NaN); real queries never see padding keys.
    """
    allowed = None
    if padding_mask is not None:
        eye = torch.eye(length, dtype=torch.bool, device=device)
        allowed = padding_mask[:, None, None, :] | eye  # (B, 1, L, L)
    if causal:
        tril = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        allowed = tril if allowed is None else allowed & tril
    return allowed


def plan_attention(
    encoding: PositionalEncoding,
    positions: torch.Tensor,
    padding_mask: torch.Tensor | None,
    *,
    causal: bool,
    backend: str,
    dtype: torch.dtype,
    cache: MaskCache | None = None,
) -> AttentionPlan:
    """Build the per-forward attention plan.

    Args:
        encoding: the model's positional encoding (its static bias is computed here once).
        positions: ``(L,)`` or ``(B, L)``.
        padding_mask: ``(B, L)`` bool, ``True`` at real tokens, or ``None``.
        causal: causal decoder or bidirectional encoder.
        backend: ``sdpa`` or ``flex`` (already resolved by :func:`choose_backend`).
        dtype: the attention dtype (additive masks must match the queries).
        cache: where the combined mask of a static bias is kept between inference calls.
    """
    length = positions.shape[-1]
    device = positions.device
    plan = AttentionPlan(backend=backend, positions=positions, causal=causal, padding_mask=padding_mask)
    # FlexAttention has no backward on the CPU; nothing returns the probabilities mix_values needs.
    flex_trains = backend == "flex" and device.type == "cuda"
    training = torch.is_grad_enabled()
    if training and backend == "flex" and not flex_trains:
        backend = plan.backend = "sdpa"
    if encoding.mixes_values or (training and not flex_trains and _trains_over_blocks(encoding, padding_mask, length)):
        plan.backend = "blocks"  # nothing (B, H, L, L) is built here, nor kept for backward
        return plan
    static_bias = encoding.has_bias and not encoding.bias_needs_query
    if backend == "flex":
        plan.block_mask = _block_mask(padding_mask, causal, length, device)
        if static_bias:
            plan.score_mod = encoding.score_mod(positions, positions)
        return plan
    if static_bias:
        key = MaskCache.key(positions, padding_mask, causal=causal, dtype=dtype, training=encoding.training)
        cached = None if cache is None else cache.get(key, encoding)
        if cached is None:
            cached = _static_masks(encoding, positions, padding_mask, causal=causal, dtype=dtype)
            if cache is not None and cached is not None:
                cache.put(key, encoding, cached)
        if cached is not None:
            plan.attn_mask, plan.row_blocks = cached
            return plan
    # No bias, or one computed per layer from this "may attend" structure; without a bias,
    # causal-only uses SDPA's is_causal fast path and padding the boolean mask.
    plan.allowed = _allowed(padding_mask, causal, length, device)
    plan.attn_mask = None if padding_mask is None else plan.allowed
    return plan


def _static_masks(
    encoding: PositionalEncoding, positions: torch.Tensor, padding_mask: torch.Tensor | None, *, causal: bool,
    dtype: torch.dtype,
) -> tuple[torch.Tensor | None, list[tuple[int, int, torch.Tensor]] | None] | None:
    """A static bias combined with padding and causality: ``(mask, None)`` or ``(None, row blocks)``.

    The mask is ``(1|B, H, L, L)``. A causal model gets row blocks ``(start, stop, (1|B, H, rows, stop))``
    instead, each reading keys up to its last query, so the masked half is neither built nor read. A
    bias with parameters, in training, is built in row blocks too, in checkpointed regions of
    ``TRAINED_MASK_ROWS`` rows: what the bias computes on the way (FIRE's MLP on every distance) is
    kept for one region at a time in backward, never for all ``L x L`` distances at once. ``None``
    when the encoding has no bias here.
    """
    length = positions.shape[-1]
    trained = _bias_is_trained(encoding)
    rows = CAUSAL_ROW_BLOCK if causal or trained else length
    block_mask = functools.partial(static_block_mask, encoding, positions, padding_mask, causal, dtype)
    blocks = []
    for start, stop, keys in block_ranges(length, rows, causal):
        if trained:
            regions = [checkpoint(block_mask, first, min(first + TRAINED_MASK_ROWS, stop), keys, use_reentrant=False)
                       for first in range(start, stop, TRAINED_MASK_ROWS)]
            mask = None if regions[0] is None else torch.cat(regions, dim=-2)
        else:
            mask = block_mask(start, stop, keys)
        if mask is None:
            return None
        blocks.append((start, stop, mask))
    return (None, blocks) if causal or trained else (blocks[0][2], None)


def _four_d(mask: torch.Tensor) -> torch.Tensor:
    """``(H, L, L) -> (1, H, L, L)``; 4-D masks pass through."""
    return mask if mask.dim() == 4 else mask.unsqueeze(0)


def _block_mask(padding_mask: torch.Tensor | None, causal: bool, length: int, device: torch.device) -> Any:
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


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan, encoding: PositionalEncoding
) -> torch.Tensor:
    """Scaled dot-product attention ``(B, H, L, Dh) x3 -> (B, H, L, Dh)`` following ``plan``."""
    if plan.backend == "blocks":
        return blockwise_attention(q, k, v, encoding, plan.positions, plan.padding_mask, causal=plan.causal)
    if plan.backend == "flex":
        score_mod = plan.score_mod
        if encoding.bias_needs_query:
            score_mod = encoding.score_mod(plan.positions, plan.positions, q)
        flex = _compiled_flex() if q.is_cuda else _eager_flex()
        return flex(q, k, v, score_mod=score_mod, block_mask=plan.block_mask)
    attn_mask = plan.attn_mask
    if encoding.bias_needs_query:  # computed per layer; in inference possibly row-shifted (see the contract)
        bias = encoding.bias(plan.positions, plan.positions, q).to(q.dtype)  # (B, H, L, L)
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            bias = bias + attn_mask
        elif plan.allowed is not None:
            bias = bias.masked_fill(~plan.allowed, float("-inf"))
        attn_mask = bias
    if plan.row_blocks is not None:
        return torch.cat([_sdpa(q[:, :, a:b], k[:, :, : mask.shape[-1]], v[:, :, : mask.shape[-1]], mask)
                          for a, b, mask in plan.row_blocks], dim=2)  # a causal block's keys stop at its last row
    if attn_mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=plan.causal)
    if attn_mask.dim() == 2:
        attn_mask = attn_mask[None, None]
    return _sdpa(q, k, v, attn_mask)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SDPA ``(B, H, Lq, Dh), (B, H, Lk, Dh) x2 -> (B, H, Lq, Dh)`` with a mask that may carry gradients."""
    if mask.requires_grad and torch.is_grad_enabled():
        return BiasedAttention.apply(q, k, v, mask)  # SDPA would differentiate the mask on its math path
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _eager_flex() -> Callable[..., torch.Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention
