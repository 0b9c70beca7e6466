"""The one attention call site: plan once per forward pass, then attend in every layer along the planned path.

:func:`plan_attention` reads the encoding's traits and the pass's case, asks the
planner (:func:`~ablate.model.attention.planner.choose_path`) for a path, and builds what
every layer shares (masks, a FlexAttention block mask). :func:`attend` runs one
layer's attention along that path. Nothing here names an encoding.

The one switch: ``attention_backend`` (a model setting: ``auto``, ``sdpa``, ``flex`` or
``reference``), overridden for every model of a process by the environment variable
``ABLATE_ATTENTION`` (e.g. ``ABLATE_ATTENTION=reference ablate run ...`` recomputes any
result on the reference path).
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch.nn import functional as F

from ablate.model.attention.blocks import attend_over_blocks
from ablate.model.attention.flex import block_mask_of, flex, flex_available
from ablate.model.attention.kernels.biased_attention import masked_attention
from ablate.model.attention.kernels.registry import KERNELS
from ablate.model.attention.mask_cache import MaskCache
from ablate.model.attention.masks import allowed_keys
from ablate.model.attention.plan import AttentionPlan
from ablate.model.attention.planner import choose_path, path_named
from ablate.model.attention.reference import reference_attention
from ablate.model.attention.shared_mask import attend_shared_mask, prepare_shared_mask
from ablate.model.attention.traits import TUNING, Tuning, case_of, traits_of
from ablate.model.encodings.base import PositionalEncoding

BACKENDS = ("auto", "sdpa", "flex", "reference")
#: The environment variable that overrides every model's ``attention_backend``.
SWITCH = "ABLATE_ATTENTION"


def requested_backend(setting: str) -> str:
    """The model's ``attention_backend``, or ``ABLATE_ATTENTION`` when that is set."""
    override = os.environ.get(SWITCH, "").strip()
    if override and override not in BACKENDS:
        raise ValueError(f"{SWITCH} must be one of {', '.join(BACKENDS)} (or unset), got {override!r}")
    return override or setting


def choose_backend(requested: str, device: torch.device, encoding: PositionalEncoding) -> str:
    """Resolve ``auto`` (``flex`` on CUDA for an encoding with a bias, else ``sdpa``); reject unknown or unavailable ones.

    ``ABLATE_ATTENTION``, when set, replaces ``requested``.
    """
    requested = requested_backend(requested)
    if requested not in BACKENDS:
        raise ValueError(f"attention backend must be one of {BACKENDS}, got {requested!r}")
    if requested == "flex" and not flex_available():
        raise ValueError("attention backend 'flex' needs torch.nn.attention.flex_attention (torch >= 2.5)")
    if requested == "auto":
        use_flex = device.type == "cuda" and encoding.has_bias and flex_available()
        return "flex" if use_flex else "sdpa"
    return requested


def plan_attention(
    encoding: PositionalEncoding,
    positions: torch.Tensor,
    padding_mask: torch.Tensor | None,
    *,
    causal: bool,
    backend: str,
    dtype: torch.dtype,
    cache: MaskCache | None = None,
    tuning: Tuning = TUNING,
    path: str | None = None,
) -> AttentionPlan:
    """Build the per-forward attention plan.

    Args:
        encoding: the model's positional encoding (a static bias is computed here once).
        positions: ``(L,)`` or ``(B, L)``.
        padding_mask: ``(B, L)`` bool, ``True`` at real tokens, or ``None``.
        causal: causal decoder or bidirectional encoder.
        backend: ``sdpa``, ``flex`` or ``reference`` (already resolved by :func:`choose_backend`).
        dtype: the attention dtype (additive masks must match the queries).
        cache: where the combined mask of a static bias is kept between inference calls.
        tuning: the planner's numbers (:class:`~ablate.model.attention.traits.Tuning`).
        path: run this path by name instead of the planner's choice (tests, re-checks).
    """
    traits = traits_of(encoding)
    case = case_of(positions, padding_mask, causal=causal, backend=backend,
                   check_contiguity=traits.clipped_distance is not None)
    chosen = choose_path(traits, case, tuning) if path is None else path_named(path, traits, case, tuning)
    plan = AttentionPlan(path=chosen, encoding=encoding, positions=positions, causal=causal,
                         padding_mask=padding_mask, tuning=tuning)
    name = chosen.name
    if name == "shared-mask":
        trained = case.grad and traits.learned_bias
        if prepare_shared_mask(plan, dtype=dtype, trained=trained, cache=cache):
            return plan
        plan.path = path_named("fused", traits, case, tuning)  # the encoding gives no bias here
        name = "fused"
    if name == "fused" and padding_mask is not None:  # without padding, SDPA's is_causal fast path
        plan.attn_mask = allowed_keys(padding_mask, causal=causal, length=case.length, device=positions.device)
    elif name == "query-bias":
        plan.allowed = allowed_keys(padding_mask, causal=causal, length=case.length, device=positions.device)
    elif name == "flex":
        plan.block_mask = block_mask_of(padding_mask, causal, case.length, positions.device)
        if traits.static_bias:
            plan.score_mod = encoding.score_mod(positions, positions)
    return plan


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """Scaled dot-product attention ``(B, H, L, Dh) x3 -> (B, H, L, Dh)`` along ``plan.path``."""
    run = _BUILT_IN.get(plan.path.name)
    if run is None:
        run = KERNELS.get(plan.path.name).attend  # type: ignore[attr-defined]
    return run(q, k, v, plan)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, encoding: PositionalEncoding, positions: torch.Tensor,
    padding_mask: torch.Tensor | None = None, *, causal: bool, backend: str = "sdpa", tuning: Tuning = TUNING,
    path: str | None = None,
) -> torch.Tensor:
    """Plan and attend in one call, for a single layer: ``(B, H, L, Dh) x3 -> (B, H, L, Dh)``."""
    plan = plan_attention(encoding, positions, padding_mask, causal=causal, backend=backend, dtype=q.dtype,
                          tuning=tuning, path=path)
    return attend(q, k, v, plan)


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    return reference_attention(q, k, v, plan.encoding, plan.positions, plan.padding_mask, causal=plan.causal)


def _fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    if plan.attn_mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=plan.causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=plan.attn_mask)


def _query_bias(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    # Per layer; in inference possibly row-shifted (see the encoding contract).
    bias = plan.encoding.bias(plan.positions, plan.positions, q).to(q.dtype)  # (B, H, L, L), or (H, L, L)
    bias = bias if bias.dim() == 4 else bias.unsqueeze(0)  # SDPA's fused kernels take a 4-D mask
    if plan.allowed is not None:
        bias = bias.masked_fill(~plan.allowed, float("-inf"))
    return masked_attention(q, k, v, bias, backward_rows=plan.tuning.backward_rows)


def _flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    score_mod = plan.score_mod
    if plan.encoding.bias_needs_query:
        score_mod = plan.encoding.score_mod(plan.positions, plan.positions, q)
    return flex(q, k, v, score_mod=score_mod, block_mask=plan.block_mask)


_BUILT_IN: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, AttentionPlan], torch.Tensor]] = {
    "reference": _reference, "blocks": attend_over_blocks, "flex": _flex, "fused": _fused,
    "query-bias": _query_bias, "shared-mask": attend_shared_mask,
}
