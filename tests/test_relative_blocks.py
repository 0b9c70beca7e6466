"""Shaw-style clipped relative vectors over query blocks (NEZHA): the dense reference's values and gradients."""

from __future__ import annotations

import pytest
import torch

from ablate.model.attention import Tuning
from ablate.model.attention.clipped import add_clipped, sum_clipped
from ablate.model.attention.kernels import clipped_regions, clipped_vector_blocks
from ablate.model.attention.kernels.clipped_regions import ClippedRelativeRegions
from ablate.model.attention.kernels.clipped_vector_blocks import ClippedVectorBlocks
from ablate.model.encodings import create_encoding
from ablate.model.transformer import ModelConfig, TransformerModel
from tests.test_blockwise import dense_reference

B, H, DH = 3, 2, 8


def _clipped(start: int, rows: int, keys: int, k: int) -> torch.Tensor:
    """``c`` of every pair, written out: ``clip(j - i, -k, k) + k`` for rows ``start:start+rows``."""
    return torch.tensor([[min(max(j - i, -k), k) + k for j in range(keys)] for i in range(start, start + rows)])


@pytest.mark.parametrize("start, rows, keys, k", [(0, 5, 12, 2), (4, 3, 12, 2), (7, 5, 12, 3), (3, 4, 7, 20)])
def test_add_and_sum_clipped_follow_the_distance_of_every_pair(start, rows, keys, k):
    table = torch.randn(B, H, rows, 2 * k + 1, dtype=torch.float64)
    dense = torch.randn(B, H, rows, keys, dtype=torch.float64)
    index = _clipped(start, rows, keys, k).expand(B, H, rows, keys)

    expected_add = dense + table.gather(-1, index)
    expected_sum = torch.zeros_like(table).scatter_add_(-1, index, dense)

    torch.testing.assert_close(add_clipped(dense.clone(), table, start, k), expected_add, rtol=0, atol=1e-12)
    torch.testing.assert_close(sum_clipped(dense, start, k), expected_sum, rtol=0, atol=1e-12)


@pytest.mark.parametrize("values", [True, False], ids=["keys-and-values", "key-only"])
@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
@pytest.mark.parametrize("padded", [False, True], ids=["dense", "padded"])
@pytest.mark.parametrize("length, k, rows", [(37, 5, 8), (20, 30, 7), (16, 3, 16)], ids=["band", "wide", "one-block"])
def test_clipped_vector_blocks_equal_the_dense_reference_with_every_gradient(values, causal, padded, length, k, rows):
    torch.manual_seed(0)
    encoding = create_encoding({"name": "nezha", "max_relative_position": k, "values": values},
                               d_model=H * DH, num_heads=H, causal=causal)
    q, key, v = (torch.randn(B, H, length, DH, requires_grad=True) for _ in range(3))
    padding_mask = None
    if padded:
        padding_mask = torch.ones(B, length, dtype=torch.bool)
        padding_mask[0, -4:] = False
        padding_mask[1, :3] = False
    positions = torch.arange(length)
    upstream = torch.randn(B, H, length, DH)

    expected = dense_reference(q, key, v, encoding, positions, padding_mask, causal)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), (q, key, v))
    vectors = encoding.clipped_relative()
    got = ClippedVectorBlocks.apply(q, key, v, vectors.keys, vectors.values, vectors.max_distance, padding_mask,
                                    causal, rows)
    grads = torch.autograd.grad((got * upstream).sum(), (q, key, v))

    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for label, actual, reference in zip("qkv", grads, expected_grads):
        torch.testing.assert_close(actual, reference, rtol=1e-5, atol=1e-5, msg=lambda m, label=label: f"{label}: {m}")


def test_trained_vectors_are_refused_rather_than_left_without_gradient():
    q = torch.randn(1, 1, 4, 2)
    vectors = torch.randn(5, 2, requires_grad=True)
    with pytest.raises(ValueError, match="constants"):
        ClippedVectorBlocks.apply(q, q, q, vectors, None, 2, None, False, 2)


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
def test_the_model_runs_nezha_through_clipped_relative_regions_in_training_and_inference(monkeypatch, causal):
    calls = []
    original = ClippedRelativeRegions.apply
    monkeypatch.setattr(clipped_regions.ClippedRelativeRegions, "apply",
                        lambda *args: calls.append(torch.is_grad_enabled()) or original(*args))
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=5, num_classes=5, d_model=H * DH, num_heads=H, num_layers=2, causal=causal,
                         encoding={"name": "nezha", "max_relative_position": 3}, pooling="none" if causal else "mean")
    model = TransformerModel(config)
    tokens = torch.randint(0, 5, (2, 30))  # longer than 8 clipping distances: the far keys go fused
    model(tokens).sum().backward()
    assert calls == [True, True]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        model(tokens)
    assert calls == [True, True, False, False]


@pytest.mark.parametrize("values", [True, False], ids=["keys-and-values", "key-only"])
@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
@pytest.mark.parametrize("length, k, rows", [(37, 5, 8), (20, 30, 7), (16, 3, 16), (50, 2, 4)],
                         ids=["band", "wide", "one-block", "narrow"])
def test_clipped_relative_regions_equal_the_dense_reference_with_every_gradient(values, causal, length, k, rows):
    # The far keys go through the fused kernel with shifted log-sum-exps; the band explicitly.
    torch.manual_seed(0)
    encoding = create_encoding({"name": "nezha", "max_relative_position": k, "values": values},
                               d_model=H * DH, num_heads=H, causal=causal)
    q, key, v = (torch.randn(B, H, length, DH, requires_grad=True) for _ in range(3))
    upstream = torch.randn(B, H, length, DH)

    expected = dense_reference(q, key, v, encoding, torch.arange(length), None, causal)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), (q, key, v))
    vectors = encoding.clipped_relative()
    got = ClippedRelativeRegions.apply(q, key, v, None, vectors.keys, vectors.values, vectors.max_distance, causal,
                                       rows)
    grads = torch.autograd.grad((got * upstream).sum(), (q, key, v))

    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for label, actual, reference in zip("qkv", grads, expected_grads):
        torch.testing.assert_close(actual, reference, rtol=1e-5, atol=1e-5, msg=lambda m, label=label: f"{label}: {m}")


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
@pytest.mark.parametrize("length, max_distance, rows", [(37, 6, 8), (40, 5, 3), (12, 30, 4)],
                         ids=["band", "narrow", "wide"])
def test_t5_buckets_over_regions_equal_the_dense_reference_with_the_table_gradient(causal, length, max_distance, rows):
    # Past max_distance each direction shares one bucket: the far keys run fused with that bucket as a shift.
    torch.manual_seed(0)
    encoding = create_encoding({"name": "t5", "num_buckets": 8, "max_distance": max_distance},
                               d_model=H * DH, num_heads=H, causal=causal)
    with torch.no_grad():
        encoding.relative_attention_bias.weight.normal_(std=1.0)
    q, key, v = (torch.randn(B, H, length, DH, requires_grad=True) for _ in range(3))
    leaves = (q, key, v, encoding.relative_attention_bias.weight)
    upstream = torch.randn(B, H, length, DH)

    expected = dense_reference(q, key, v, encoding, torch.arange(length), None, causal)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), leaves)
    relative = encoding.clipped_relative()
    got = ClippedRelativeRegions.apply(q, key, v, relative.table, None, None, relative.max_distance, causal, rows)
    grads = torch.autograd.grad((got * upstream).sum(), leaves)

    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for label, actual, reference in zip(["q", "k", "v", "buckets"], grads, expected_grads):
        torch.testing.assert_close(actual, reference, rtol=1e-5, atol=1e-5, msg=lambda m, label=label: f"{label}: {m}")
    assert bool(expected_grads[-1].abs().sum() > 0)


def test_t5_trains_through_regions_in_the_model_past_the_shared_mask_size(monkeypatch):
    calls = []
    original = ClippedRelativeRegions.apply
    monkeypatch.setattr(clipped_regions.ClippedRelativeRegions, "apply",
                        lambda *args: calls.append(args[3] is not None) or original(*args))
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=5, num_classes=2, d_model=H * DH, num_heads=H, num_layers=2,
                         encoding={"name": "t5", "num_buckets": 8, "max_distance": 4}, pooling="mean")
    model = TransformerModel(config, tuning=Tuning(shared_learned_mask_max_elements=16))  # blocks at this tiny size
    model(torch.randint(0, 5, (2, 40))).sum().backward()  # longer than 8 clipping distances
    assert calls == [True, True]
    assert model.encoding.relative_attention_bias.weight.grad.abs().sum() > 0


def test_short_sequences_keep_nezha_in_all_explicit_blocks(monkeypatch):
    # Up to 8 clipping distances the band is most of each row, and explicit blocks are faster.
    calls = []
    original = ClippedVectorBlocks.apply
    monkeypatch.setattr(clipped_vector_blocks.ClippedVectorBlocks, "apply", lambda *args: calls.append(1) or original(*args))
    config = ModelConfig(vocab_size=5, num_classes=2, d_model=H * DH, num_heads=H, num_layers=1,
                         encoding={"name": "nezha", "max_relative_position": 3}, pooling="mean")
    TransformerModel(config)(torch.randint(0, 5, (2, 24))).sum().backward()
    assert calls == [1]
