"""The model's inference cache of a static bias mask: hits while its documented key holds, never stale."""

from __future__ import annotations

import torch

from ablate.model.attention import MaskCache, plan_attention
from ablate.model.encodings import create_encoding


def plan(encoding, positions, cache, padding_mask=None, causal=False):
    return plan_attention(encoding, positions, padding_mask, causal=causal, backend="sdpa", dtype=torch.float32,
                          cache=cache)


def test_the_mask_is_reused_while_the_key_holds_and_rebuilt_when_a_parameter_changes():
    encoding = create_encoding("t5", d_model=8, num_heads=2, causal=False)
    cache = MaskCache()
    positions = torch.arange(6)
    with torch.no_grad():
        first = plan(encoding, positions, cache).attn_mask
        assert plan(encoding, positions, cache).attn_mask is first  # same key and values: a hit
        assert plan(encoding, torch.arange(7), cache).attn_mask.shape[-1] == 7  # another length: a miss
        again = plan(encoding, positions, cache).attn_mask
        assert again is not first and torch.equal(again, first)
        encoding.relative_attention_bias.weight.add_(1.0)  # what an optimizer step does, in place
        changed = plan(encoding, positions, cache).attn_mask
        assert not torch.equal(changed, again)
        torch.testing.assert_close(changed, (encoding.bias(positions, positions) * 1).unsqueeze(0))
        assert plan(encoding, positions, cache, causal=True).attn_mask is not changed  # causality is in the key


def test_nothing_is_cached_under_autograd_with_padding_or_with_random_positions():
    key = MaskCache.key
    with torch.no_grad():
        assert key(torch.arange(4), torch.ones(1, 4, dtype=torch.bool), causal=False, dtype=torch.float32,
                   training=False) is None
        assert key(torch.tensor([0, 2, 3, 7]), None, causal=False, dtype=torch.float32, training=False) is None
        assert key(torch.arange(4.0), None, causal=False, dtype=torch.float32, training=False) is None
        assert key(torch.arange(4), None, causal=False, dtype=torch.float32, training=False) is not None
    with torch.enable_grad():
        assert key(torch.arange(4), None, causal=False, dtype=torch.float32, training=False) is None


def test_each_model_owns_its_cache():
    from ablate.model.transformer import ModelConfig, TransformerModel

    config = ModelConfig(vocab_size=5, num_classes=2, d_model=8, num_heads=2, num_layers=1, encoding="kerple")
    one, two = TransformerModel(config).eval(), TransformerModel(config).eval()
    assert one.mask_cache is not two.mask_cache
    tokens = torch.randint(0, 5, (1, 9))
    with torch.no_grad():
        one(tokens)
        assert one.mask_cache.get(MaskCache.key(torch.arange(9), None, causal=False, dtype=torch.float32,
                                                training=False), one.encoding) is not None
        assert two.mask_cache.get(MaskCache.key(torch.arange(9), None, causal=False, dtype=torch.float32,
                                                training=False), two.encoding) is None
