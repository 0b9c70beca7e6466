"""Transcriptions of HF transformers ``modeling_rope_utils`` (4.5x, Apache-2.0) for reference tests.

The ``rope_kwargs`` path of default / linear / dynamic (HF reads the same fields
from a config), and ``_compute_yarn_parameters`` verbatim, reading a config namespace.
Everything computes in float32, as HF does.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch


def hf_default(base, dim):
    # _compute_default_rope_parameters
    attention_factor = 1.0  # Unused in this type of RoPE
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    return inv_freq, attention_factor


def hf_linear(base, dim, factor):
    # _compute_linear_scaling_rope_parameters
    inv_freq, attention_factor = hf_default(base, dim)
    inv_freq /= factor
    return inv_freq, attention_factor


def hf_dynamic(base, dim, max_position_embeddings, factor, seq_len=None):
    # _compute_dynamic_ntk_parameters
    attention_factor = 1.0  # Unused in this type of RoPE
    # seq_len: default to max_position_embeddings, e.g. at init time
    seq_len = seq_len if seq_len is not None and seq_len > max_position_embeddings else max_position_embeddings
    base = base * ((factor * seq_len / max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    return inv_freq, attention_factor


# Verbatim body of HF transformers (4.5x) modeling_rope_utils._compute_yarn_parameters
# (Apache-2.0); `config` is a SimpleNamespace with the fields it reads.
def hf_compute_yarn_parameters(config, device=None, seq_len=None):
    base = config.rope_theta
    partial_rotary_factor = config.partial_rotary_factor if hasattr(config, "partial_rotary_factor") else 1.0
    head_dim = getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    dim = int(head_dim * partial_rotary_factor)
    factor = config.rope_scaling["factor"]
    attention_factor = config.rope_scaling.get("attention_factor")
    mscale = config.rope_scaling.get("mscale")
    mscale_all_dim = config.rope_scaling.get("mscale_all_dim")

    if "original_max_position_embeddings" in config.rope_scaling:
        original_max_position_embeddings = config.rope_scaling["original_max_position_embeddings"]
        factor = config.max_position_embeddings / original_max_position_embeddings
    else:
        original_max_position_embeddings = config.max_position_embeddings

    def get_mscale(scale, mscale=1):
        if scale <= 1:
            return 1.0
        return 0.1 * mscale * math.log(scale) + 1.0

    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)

    beta_fast = config.rope_scaling.get("beta_fast") or 32
    beta_slow = config.rope_scaling.get("beta_slow") or 1

    def find_correction_dim(num_rotations, dim, base, max_position_embeddings):
        return (dim * math.log(max_position_embeddings / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    def find_correction_range(low_rot, high_rot, dim, base, max_position_embeddings):
        low = math.floor(find_correction_dim(low_rot, dim, base, max_position_embeddings))
        high = math.ceil(find_correction_dim(high_rot, dim, base, max_position_embeddings))
        return max(low, 0), min(high, dim - 1)

    def linear_ramp_factor(min, max, dim):
        if min == max:
            max += 0.001

        linear_func = (torch.arange(dim, dtype=torch.float32) - min) / (max - min)
        ramp_func = torch.clamp(linear_func, 0, 1)
        return ramp_func

    pos_freqs = base ** (torch.arange(0, dim, 2).to(device=device, dtype=torch.float) / dim)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (factor * pos_freqs)

    low, high = find_correction_range(beta_fast, beta_slow, dim, base, original_max_position_embeddings)

    inv_freq_extrapolation_factor = 1 - linear_ramp_factor(low, high, dim // 2).to(device=device, dtype=torch.float)
    inv_freq = (
        inv_freq_interpolation * (1 - inv_freq_extrapolation_factor)
        + inv_freq_extrapolation * inv_freq_extrapolation_factor
    )
    return inv_freq, attention_factor


def hf_yarn(base, dim, factor, original_max_position_embeddings, rotary_dim=None):
    """YaRN's ``(inv_freq, attention_factor)`` for a head of ``dim`` (``rotary_dim`` of it rotated)."""
    # HF recomputes factor as max_position_embeddings / original, so make them agree.
    config = SimpleNamespace(
        rope_theta=base, hidden_size=dim * 2, num_attention_heads=2,
        partial_rotary_factor=(rotary_dim or dim) / dim,
        max_position_embeddings=original_max_position_embeddings * factor,
        rope_scaling={"rope_type": "yarn", "factor": factor,
                      "original_max_position_embeddings": original_max_position_embeddings},
    )
    return hf_compute_yarn_parameters(config)
