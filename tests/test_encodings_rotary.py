"""Rotary encodings (rope with pi/ntk/yarn scaling, xpos): reference values and invariants."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from hf_rope_reference import hf_default, hf_yarn

from ablate.model.encodings import ENCODINGS, UnsupportedLengthError, create_encoding
from ablate.model.encodings.rotary import ntk_base, rope_inv_freq, xpos_zeta, yarn_inv_freq

D_MODEL, HEADS = 32, 2  # head_dim 16


# --------------------------------------------------------------------- references
# Verbatim from HF transformers, models/llama/modeling_llama.py (Apache-2.0).
def rotate_half(x):
    """Rotates half the hidden dims of the input."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


# The body of HF LlamaRotaryEmbedding.forward (autocast context dropped) and of
# _compute_default_rope_parameters, as functions.
def hf_cos_sin(inv_freq, x, position_ids, attention_scaling=1.0):
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1).to(x.device)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * attention_scaling
    sin = emb.sin() * attention_scaling
    return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


# Verbatim from microsoft/torchscale, torchscale/component/xpos_relative_position.py (MIT).
def fixed_pos_embedding(x):
    seq_len, dim = x.shape
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim) / dim))
    sinusoid_inp = (
        torch.einsum("i , j -> i j", torch.arange(0, seq_len, dtype=torch.float), inv_freq).to(x)
    )
    return torch.sin(sinusoid_inp), torch.cos(sinusoid_inp)


def rotate_every_two(x):
    x1 = x[:, :, ::2]
    x2 = x[:, :, 1::2]
    x = torch.stack((-x2, x1), dim=-1)
    return x.flatten(-2)


def duplicate_interleave(m):
    dim0 = m.shape[0]
    m = m.view(-1, 1)
    m = m.repeat(1, 2)
    m = m.view(dim0, -1)
    return m


def ts_apply_rotary_pos_emb(x, sin, cos, scale=1):
    sin, cos = map(lambda t: duplicate_interleave(t * scale), (sin, cos))
    return (x * cos) + (rotate_every_two(x) * sin)


class XPOS(torch.nn.Module):
    def __init__(self, head_dim, scale_base=512):
        super().__init__()
        self.head_dim = head_dim
        self.scale_base = scale_base
        self.register_buffer("scale", (torch.arange(0, head_dim, 2) + 0.4 * head_dim) / (1.4 * head_dim))

    def forward(self, x, offset=0, downscale=False):
        length = x.shape[1]
        min_pos = -(length + offset) // 2
        max_pos = length + offset + min_pos
        scale = self.scale ** torch.arange(min_pos, max_pos, 1).to(self.scale).div(self.scale_base)[:, None]
        sin, cos = fixed_pos_embedding(scale)

        if scale.shape[0] > length:
            scale = scale[-length:]
            sin = sin[-length:]
            cos = cos[-length:]

        if downscale:
            scale = 1 / scale

        x = ts_apply_rotary_pos_emb(x, sin, cos, scale)
        return x


# ----------------------------------------------------------------------- helpers
def build(name="rope", **params):
    return create_encoding({"name": name, **params}, d_model=D_MODEL, num_heads=HEADS, causal=True)


def qk(batch=2, length=8, dtype=torch.float64, head_dim=D_MODEL // HEADS):
    shape = (batch, HEADS, length, head_dim)
    return torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)


def logits(encoding, q, k, positions):
    q, k = encoding.rotate(q, k, positions)
    return q @ k.transpose(-1, -2)  # (B, H, L, L)


CONFIGS = {
    "rope": {},
    "rope-partial": {"rotary_dim": 8},
    "rope-pi": {"scaling": "pi", "factor": 4},
    "rope-ntk": {"scaling": "ntk", "factor": 4},
    "rope-yarn": {"scaling": "yarn", "factor": 4, "original_max_position": 64},
    "xpos": {"name": "xpos", "scale_base": 16},  # small scale_base: a visible decay at L=8
}


def build_config(label):
    params = dict(CONFIGS[label])
    return build(params.pop("name", "rope"), **params)


# ------------------------------------------------------------------------- tests
def test_registered():
    assert "rope" in ENCODINGS and "xpos" in ENCODINGS


@pytest.mark.parametrize("rotary_dim", [None, 8])
@pytest.mark.parametrize("per_sequence", [False, True])
def test_rope_matches_hf_llama(rotary_dim, per_sequence):
    encoding = build(rotary_dim=rotary_dim)
    q, k = qk(dtype=torch.float32)
    if per_sequence:
        position_ids = torch.stack([torch.arange(8), torch.arange(8) * 3 + 5])  # (B, L)
    else:
        position_ids = torch.arange(8).unsqueeze(0)  # HF takes (1, L)
    dim = rotary_dim or 16
    cos, sin = hf_cos_sin(hf_default(10000.0, dim)[0], q, position_ids)
    # HF partial rotary (GPT-NeoX, Phi): rotate the first rotary_ndims features, pass the rest.
    q_rot, k_rot = apply_rotary_pos_emb(q[..., :dim], k[..., :dim], cos, sin)
    expected_q, expected_k = torch.cat((q_rot, q[..., dim:]), -1), torch.cat((k_rot, k[..., dim:]), -1)

    positions = position_ids if per_sequence else position_ids[0]
    got_q, got_k = encoding.rotate(q, k, positions)
    torch.testing.assert_close(got_q, expected_q, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_k, expected_k, atol=1e-5, rtol=1e-5)
    if rotary_dim:  # features past rotary_dim are untouched
        assert torch.equal(got_q[..., dim:], q[..., dim:])


def test_rope_inv_freq_is_hf_default():
    torch.testing.assert_close(rope_inv_freq(16, 10000.0).float(), hf_default(10000.0, 16)[0])
    # Pinned: 10000^(-2i/8) for i = 0..3.
    torch.testing.assert_close(rope_inv_freq(8, 10000.0), torch.tensor([1.0, 0.1, 0.01, 0.001], dtype=torch.float64))


@pytest.mark.parametrize("label", list(CONFIGS))
def test_logits_are_shift_invariant(label):
    encoding = build_config(label)
    q, k = qk()
    positions = torch.tensor([0, 1, 2, 5, 9, 10, 17, 30])
    base = logits(encoding, q, k, positions)
    for shift in (1, 1000):
        torch.testing.assert_close(logits(encoding, q, k, positions + shift), base, atol=1e-9, rtol=1e-9)
    # and the rotation really depends on position: q alone changes
    assert not torch.allclose(encoding.rotate(q, k, positions + 1)[0], encoding.rotate(q, k, positions)[0])


@pytest.mark.parametrize("label", ["rope", "rope-partial", "rope-pi", "rope-ntk"])
def test_rope_preserves_norms(label):
    encoding = build_config(label)
    q, k = qk()
    rq, rk = encoding.rotate(q, k, torch.arange(8) * 7)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))
    torch.testing.assert_close(rk.norm(dim=-1), k.norm(dim=-1))


def test_yarn_scales_norms_by_its_attention_factor():
    encoding = build_config("rope-yarn")
    q, k = qk()
    rq, _ = encoding.rotate(q, k, torch.arange(8))
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1) * (0.1 * math.log(4) + 1))


def test_pi_factor4_at_4p_equals_unscaled_at_p():
    pi, plain = build(scaling="pi", factor=4), build()
    q, k = qk()
    p = torch.tensor([0, 1, 3, 7, 8, 20, 33, 100])
    for a, b in zip(pi.rotate(q, k, 4 * p), plain.rotate(q, k, p)):
        torch.testing.assert_close(a, b)
    # float positions interpolate: pi at 2 equals unscaled at 0.5
    torch.testing.assert_close(pi.rotate(q, k, 2 * p.double())[0], plain.rotate(q, k, p.double() / 2)[0])


def test_ntk_base_formula():
    dim, base, factor = 16, 10000.0, 4.0
    assert ntk_base(base, factor, dim) == pytest.approx(base * factor ** (16 / 14))
    assert ntk_base(10000.0, 4.0, 8) == pytest.approx(63496.04208, rel=1e-8)  # 10000 * 4^(4/3)
    inv = build(scaling="ntk", factor=factor).inv_freq
    plain = rope_inv_freq(dim, base)
    exponents = torch.arange(0, dim, 2, dtype=torch.float64) / dim
    torch.testing.assert_close(inv, 1.0 / ntk_base(base, factor, dim) ** exponents)
    # NTK's design: the highest frequency is kept, the lowest is interpolated by exactly `factor`.
    assert inv[0] == plain[0]
    torch.testing.assert_close(inv[-1], plain[-1] / factor)


YARN_CASES = [
    # head_dim, rotary_dim, base, factor, original_max_position
    (16, None, 10000.0, 4, 64),  # ramp over pairs 0..3
    (64, None, 10000.0, 8, 2048),  # LLaMA-like head, ramp 8..21
    (16, 8, 500000.0, 2.5, 128),  # partial rotary, non-integer factor
    (8, None, 10000.0, 2, 4),  # low == high: HF's 0.001 nudge
    (8, None, 500.0, 4, 1_000_000),  # high clamped to dim - 1
    (16, None, 10000.0, 1, 64),  # factor 1 is plain RoPE
]


@pytest.mark.parametrize(("head_dim", "rotary_dim", "base", "factor", "original"), YARN_CASES)
def test_yarn_matches_hf(head_dim, rotary_dim, base, factor, original):
    expected_inv, expected_attention = hf_yarn(base, head_dim, factor, original, rotary_dim=rotary_dim)
    encoding = create_encoding(
        {"name": "rope", "scaling": "yarn", "factor": factor, "original_max_position": original,
         "base": base, "rotary_dim": rotary_dim},
        d_model=2 * head_dim, num_heads=2, causal=True,
    )
    torch.testing.assert_close(encoding.inv_freq.float(), expected_inv, rtol=1e-6, atol=0)
    assert encoding.attention_factor == pytest.approx(expected_attention, rel=1e-12)

    # And the whole rotation, through HF's apply_rotary_pos_emb with the attention scaling.
    dim = rotary_dim or head_dim
    q = torch.randn(1, 2, 6, head_dim)
    positions = torch.tensor([0, 3, 50, 200, 201, 900])
    cos, sin = hf_cos_sin(expected_inv, q, positions[None], expected_attention)
    q_rot, _ = apply_rotary_pos_emb(q[..., :dim], q[..., :dim], cos, sin)
    got_q, _ = encoding.rotate(q, q, positions)
    torch.testing.assert_close(got_q, torch.cat((q_rot, q[..., dim:]), -1), atol=2e-4, rtol=1e-4)


def test_yarn_pinned_values():
    inv, attention = yarn_inv_freq(16, 10000.0, 4.0, 64)
    assert attention == pytest.approx(1.1386294361119891)  # 0.1 ln 4 + 1
    plain = rope_inv_freq(16, 10000.0)
    # correction range (0, 3): pair 0 extrapolates, pairs >= 3 interpolate, 1 and 2 blend.
    ramp = torch.tensor([0, 1 / 3, 2 / 3, 1, 1, 1, 1, 1], dtype=torch.float64)
    torch.testing.assert_close(inv, plain / 4 * ramp + plain * (1 - ramp))
    assert yarn_inv_freq(16, 10000.0, 0.5, 64)[1] == 1.0  # no attention boost when compressing


def test_xpos_zeta_matches_torchscale_formula():
    zeta = xpos_zeta(8)
    torch.testing.assert_close(zeta, (torch.arange(0, 8, 2) + 0.4 * 8).double() / (1.4 * 8))
    torch.testing.assert_close(zeta, torch.tensor([0.4 / 1.4, 0.65 / 1.4, 0.9 / 1.4, 1.15 / 1.4], dtype=torch.float64))


def test_xpos_matches_torchscale():
    head_dim, length, scale_base = 16, 9, 16
    encoding = build("xpos", scale_base=scale_base)
    q, k = qk(batch=1, length=length, dtype=torch.float32)
    # torchscale rotates by 0..L-1 and decays by positions centred at ceil(L/2), as we do.
    got_q, got_k = encoding.rotate(q, k, torch.arange(length))

    def interleave(x):  # our half-split layout -> torchscale's (2j, 2j+1) pairs
        return torch.stack((x[..., : head_dim // 2], x[..., head_dim // 2 :]), -1).flatten(-2)

    xpos = XPOS(head_dim, scale_base=scale_base)
    expected_q = xpos(interleave(q)[0], downscale=False)  # (H, L, Dh) as torchscale's (B*H, L, Dh)
    expected_k = xpos(interleave(k)[0], downscale=True)
    torch.testing.assert_close(interleave(got_q)[0], expected_q, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(interleave(got_k)[0], expected_k, atol=1e-5, rtol=1e-5)


def test_xpos_decay_per_pair_and_centre():
    length, scale_base = 8, 16
    encoding = build("xpos", scale_base=scale_base)
    q, k = qk(batch=1, length=length)
    rq, rk = encoding.rotate(q, k, torch.arange(length))
    centre = math.ceil(length / 2)  # torchscale's centre for 0..L-1
    power = ((torch.arange(length) - centre) / scale_base).double()[:, None]  # (L, 1)
    decay = xpos_zeta(16) ** power  # (L, 8)

    def pair_norm(x):  # norm of each rotated pair (j, j + 8): (B, H, L, 8)
        return torch.sqrt(x[..., :8] ** 2 + x[..., 8:] ** 2)

    torch.testing.assert_close(pair_norm(rq), pair_norm(q) * decay)
    torch.testing.assert_close(pair_norm(rk), pair_norm(k) / decay)
    # so the logits carry zeta^((m - n) / scale_base) on top of RoPE's
    assert not torch.allclose(rq.norm(dim=-1), q.norm(dim=-1))


def test_xpos_without_decay_is_rope():
    q, k = qk()
    positions = torch.arange(8) * 5
    for a, b in zip(build("xpos", scale_base=math.inf).rotate(q, k, positions), build().rotate(q, k, positions)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("label", list(CONFIGS))
def test_per_sequence_positions_equal_per_row(label):
    encoding = build_config(label)
    q, k = qk(batch=3)
    positions = torch.stack([
        torch.arange(8.0),
        torch.arange(8.0) + 40,
        torch.tensor([0.0, 0.5, 1.25, 3.0, 7.5, 8.0, 11.0, 12.5]),  # float: interpolated positions
    ])
    got_q, got_k = encoding.rotate(q, k, positions)
    for b in range(3):
        row_q, row_k = encoding.rotate(q[b : b + 1], k[b : b + 1], positions[b])
        torch.testing.assert_close(got_q[b : b + 1], row_q, atol=1e-12, rtol=0)
        torch.testing.assert_close(got_k[b : b + 1], row_k, atol=1e-12, rtol=0)


@pytest.mark.parametrize("label", ["rope", "rope-yarn", "xpos"])
def test_bf16_in_bf16_out_close_to_fp32(label):
    encoding = build("xpos") if label == "xpos" else build_config(label)  # default scale_base: in range
    q, k = qk(dtype=torch.float32)
    positions = torch.tensor([0, 5, 100, 1000, 2000, 3001, 3999, 4000])  # large angles
    ref_q, ref_k = encoding.rotate(q, k, positions)
    got_q, got_k = encoding.rotate(q.bfloat16(), k.bfloat16(), positions)
    assert got_q.dtype == got_k.dtype == torch.bfloat16
    # Rotated in float32 and rounded once: exactly the fp32 result cast to bf16 ...
    assert torch.equal(got_q, encoding.rotate(q.bfloat16().float(), k.bfloat16().float(), positions)[0].bfloat16())
    # ... hence within bf16's input + output rounding (2^-9 each) of the fp32 result, per token.
    for got, ref in ((got_q, ref_q), (got_k, ref_k)):
        error = (got.float() - ref).norm(dim=-1) / ref.norm(dim=-1)
        assert float(error.max()) < 1e-2


def test_tables_are_rebuilt_for_new_positions():
    encoding = build()
    q, k = qk()
    p = torch.arange(8)
    first = encoding.rotate(q, k, p)[0]
    assert torch.equal(encoding.rotate(q, k, p)[0], first)  # memoised on the same tensor
    shifted = encoding.rotate(q, k, p + 3)[0]
    torch.testing.assert_close(shifted, build().rotate(q, k, p + 3)[0], atol=0, rtol=0)
    assert not torch.allclose(shifted, first)
    # caches are not pickled (worker processes rebuild them)
    clone = pickle.loads(pickle.dumps(encoding))
    assert clone._memo.empty and not encoding._memo.empty
    torch.testing.assert_close(clone.rotate(q, k, p)[0], first, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["rope", "xpos"])
def test_tables_built_in_inference_mode_do_not_leak_into_training(name):
    encoding = build(name)
    q, k = qk(dtype=torch.float32)
    positions = torch.arange(8)
    with torch.inference_mode():
        encoding.rotate(q, k, positions)
    q = q.requires_grad_()
    rq, rk = encoding.rotate(q, k, positions)  # same positions tensor, now with autograd
    (rq * rk).sum().backward()
    assert q.grad is not None and q.grad.shape == q.shape


def test_xpos_out_of_range_is_unsupported():
    encoding = build("xpos")
    q, k = qk(batch=1, length=2, dtype=torch.float16)
    far = torch.tensor([0, 8000])  # decay factors zeta^(+-4000/512) are not normal fp16 numbers
    with pytest.raises(UnsupportedLengthError, match="scale_base"):
        encoding.rotate(q, k, far)
    rq, _ = encoding.rotate(q.float(), k.float(), far)  # fine in float32
    assert torch.isfinite(rq).all()
    encoding.check_length(4096)
    with pytest.raises(UnsupportedLengthError, match="length 100000"):
        encoding.check_length(100_000)


def test_scaling_none_string_is_plain_rope():
    q, k = qk()
    positions = torch.arange(8)
    torch.testing.assert_close(build(scaling="none").rotate(q, k, positions)[0], build().rotate(q, k, positions)[0])


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("rope", {"scaling": "linear"}, r"unknown scaling 'linear'.*'pi', 'ntk', 'yarn'"),
        ("rope", {"scaling": "pi", "factor": 0}, "factor must be a finite number > 0"),
        ("rope", {"scaling": "pi", "factor": -2.0}, "factor must be a finite number > 0"),
        ("rope", {"factor": 4}, "no effect without scaling"),
        ("rope", {"scaling": "yarn", "factor": 4}, "needs original_max_position"),
        ("rope", {"scaling": "yarn", "factor": 4, "original_max_position": 0}, "positive integer"),
        ("rope", {"rotary_dim": 3}, r"even integer in \[2, head_dim=16\]"),
        ("rope", {"rotary_dim": 32}, r"even integer in \[2, head_dim=16\]"),
        ("rope", {"base": 1.0}, "base must be a finite number > 1"),
        ("rope", {"scaling": "ntk", "factor": 2, "rotary_dim": 2}, r"dim / \(dim - 2\)"),
        ("rope", {"bse": 10}, "bse"),
        ("xpos", {"scale_base": 0}, "scale_base must be > 0"),
        ("xpos", {"base": -5}, "base must be"),
    ],
)
def test_bad_parameters_raise(name, params, match):
    with pytest.raises(ValueError, match=match):
        build(name, **params)


def test_odd_head_dim_raises():
    with pytest.raises(ValueError, match="head_dim=3"):
        create_encoding("xpos", d_model=6, num_heads=2, causal=True)


@pytest.mark.parametrize("name", ["rope", "xpos"])
def test_bad_inputs_raise(name):
    encoding = build(name)
    q, k = qk(batch=2, length=8)
    with pytest.raises(ValueError, match=r"positions must be \(L,\) or \(B, L\) with L=8"):
        encoding.rotate(q, k, torch.arange(7))
    with pytest.raises(ValueError, match="B=2"):
        encoding.rotate(q, k, torch.zeros(3, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="head_dim=16"):
        encoding.rotate(q[..., :8], k[..., :8], torch.arange(8))
