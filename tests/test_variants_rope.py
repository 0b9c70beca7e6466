"""Evaluation-time RoPE scaling (PI, NTK-aware, dynamic NTK, YaRN) against HF's reference formulas."""

from __future__ import annotations

import math

import pytest
import torch
from hf_rope_reference import hf_default, hf_dynamic, hf_linear, hf_yarn

from ablate.model.encodings import create_encoding
from ablate.run.variants import rope
from ablate.run.variants.rope import ROPE_METHODS, resolve_factor, restored_frequencies, scale_model

DIMS = [8, 16, 32]


def ours(method, dim, factor, train_length, length, base=10000.0):
    inv_freq, attention = ROPE_METHODS.get(method)(dim, base, factor, train_length, length)
    return inv_freq.float(), attention


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("length", [64, 128, 256])
def test_factor_one_is_hf_default_for_every_method(dim, length):
    expected, _ = hf_default(10000.0, dim)
    for method in ("pi", "ntk", "yarn"):
        inv_freq, attention = ours(method, dim, 1.0, 64, length)
        torch.testing.assert_close(inv_freq, expected, rtol=1e-6, atol=0)
        assert attention == 1.0
    # dynamic at or below the train length is the default too (HF: seq_len <= max_position_embeddings)
    torch.testing.assert_close(ours("dynamic", dim, 2.0, 64, 64)[0], expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("factor", [2.0, 4.0, 3.5])
def test_pi_is_hf_linear(dim, factor):
    expected, expected_attention = hf_linear(10000.0, dim, factor)
    inv_freq, attention = ours("pi", dim, factor, 64, 256)
    torch.testing.assert_close(inv_freq, expected, rtol=1e-6, atol=0)
    assert attention == expected_attention == 1.0


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("factor", [1.0, 2.0])
@pytest.mark.parametrize("length", [32, 64, 100, 256])
def test_dynamic_is_hf_dynamic(dim, factor, length):
    expected, _ = hf_dynamic(10000.0, dim, 64, factor, seq_len=length)
    torch.testing.assert_close(ours("dynamic", dim, factor, 64, length)[0], expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("factor", [2.0, 4.0])
def test_ntk_is_hf_dynamic_at_factor_times_the_train_length(dim, factor):
    # Static NTK-aware with factor s = HF dynamic with its factor 1 at seq_len = s * max_position_embeddings.
    expected, _ = hf_dynamic(10000.0, dim, 64, 1.0, seq_len=int(factor * 64))
    torch.testing.assert_close(ours("ntk", dim, factor, 64, 999)[0], expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("factor", [2.0, 4.0, 8.0])
@pytest.mark.parametrize("train_length", [16, 64, 2048])
def test_yarn_is_hf_yarn_with_its_temperature(dim, factor, train_length):
    expected, expected_attention = hf_yarn(10000.0, dim, factor, train_length)
    inv_freq, attention = ours("yarn", dim, factor, train_length, 999)
    torch.testing.assert_close(inv_freq, expected, rtol=1e-6, atol=0)
    assert attention == pytest.approx(expected_attention) == pytest.approx(0.1 * math.log(factor) + 1)


def test_pinned_values():
    # dim 8, base 10^4: default [1, 0.1, 0.01, 0.001].
    torch.testing.assert_close(ours("pi", 8, 4.0, 64, 256)[0], torch.tensor([0.25, 0.025, 0.0025, 0.00025]))
    # dynamic, HF factor 2 at 256/64: alpha = 2*4 - 1 = 7, so pair i turns 7^(-2i/6) slower ... last pair: /7.
    torch.testing.assert_close(ours("dynamic", 8, 2.0, 64, 256)[0],
                               torch.tensor([1.0, 0.1 * 7 ** (-1 / 3), 0.01 * 7 ** (-2 / 3), 0.001 / 7]))
    # NTK factor 2: the lowest frequency is interpolated by exactly 2, the highest unchanged.
    torch.testing.assert_close(ours("ntk", 8, 2.0, 64, 128)[0],
                               torch.tensor([1.0, 0.1 * 2 ** (-1 / 3), 0.01 * 2 ** (-2 / 3), 0.0005]))
    inv_freq, attention = ours("yarn", 16, 4.0, 64, 256)
    torch.testing.assert_close(inv_freq, torch.tensor([1.0, 0.23717081547, 0.05, 0.0079056946561, 0.0025,
                                                       0.00079056946561, 0.00025, 0.000079056946561]))
    assert attention == pytest.approx(1.138629436111989)


def test_resolve_factor():
    assert resolve_factor(None, "pi", 64, 32) == 1.0  # never compresses below the train length
    assert resolve_factor(None, "pi", 64, 256) == 4.0
    assert resolve_factor("per_length", "yarn", 64, 128) == 2.0
    assert resolve_factor(3.0, "ntk", 64, 64) == 3.0  # a fixed factor holds at every length
    assert resolve_factor(None, "pi", 64, 64, finetune_length=256) == 4.0  # fine-tuned: the fine-tune's factor
    assert resolve_factor(None, "dynamic", 64, 256) == 1.0  # dynamic follows L itself; HF's factor defaults to 1


def rope_model(**params):
    return create_encoding({"name": "rope", **params}, d_model=32, num_heads=2, causal=True)


def test_scaled_rotation_matches_hf_linear_tables_and_is_restored():
    encoding = rope_model()
    q, k = torch.randn(2, 2, 12, 16), torch.randn(2, 2, 12, 16)
    positions = torch.arange(12)
    before = encoding.rotate(q, k, positions)
    with restored_frequencies(encoding):
        scale_model(encoding, "pi", 4.0, 64, 256)
        scaled = encoding.rotate(q, k, torch.arange(12))
        # PI with factor 4 at positions 4p is plain RoPE at p (the whole point of interpolation).
        plain = rope_model()
        at_p = plain.rotate(q, k, torch.arange(12))
        with_4p = encoding.rotate(q, k, torch.arange(12) * 4)
        torch.testing.assert_close(with_4p[0], at_p[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(scaled[0], before[0])
    after = encoding.rotate(q, k, torch.arange(12))
    torch.testing.assert_close(after[0], before[0], rtol=0, atol=0)
    torch.testing.assert_close(encoding.inv_freq, rope.rope_inv_freq(16, 10000.0), rtol=0, atol=0)


def test_yarn_temperature_scales_logits_by_its_square():
    encoding = rope_model()
    q, k = torch.randn(1, 2, 8, 16), torch.randn(1, 2, 8, 16)
    with restored_frequencies(encoding):
        attention = scale_model(encoding, "yarn", 4.0, 64, 256)
        rq, rk = encoding.rotate(q, k, torch.arange(8))
    assert attention == pytest.approx(0.1 * math.log(4) + 1)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1) * attention, rtol=1e-5, atol=1e-6)


def test_refuses_a_rope_that_trains_with_scaling_and_models_without_rope():
    assert "trains with scaling='pi'" in rope.unsupported_reason(rope_model(scaling="pi", factor=2.0))
    assert "needs a model with a 'rope'" in rope.unsupported_reason(
        create_encoding("alibi", d_model=32, num_heads=2, causal=True))
    wrapped = create_encoding({"name": "randomized", "base": "rope", "max_length": 64}, d_model=32, num_heads=2,
                              causal=True)
    assert rope.unsupported_reason(wrapped) is None and len(rope.rotary_modules(wrapped)) == 1


def test_set_frequencies_checks_the_shape():
    with pytest.raises(ValueError, match="inv_freq must have shape"):
        rope.set_frequencies(rope_model(), torch.ones(3), 1.0)
