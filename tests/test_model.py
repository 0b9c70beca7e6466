"""Model-level invariants, parametrized over the registries so a new entry is tested on registration."""

from __future__ import annotations

import math

import pytest
import torch

from ablate.model.attention import flex_available
from ablate.model.encodings import ENCODINGS, FAMILIES, UnsupportedLengthError, create_encoding, encodings_of_family
from ablate.model.encodings.absolute import sinusoidal_table
from ablate.model.transformer import ModelConfig, TransformerModel
from ablate.model.pooling import POOLINGS

#: Relative encodings (by family): attention logits depend on i - j only.
RELATIVE = encodings_of_family("rotary", "bias", "query-bias")
#: Absolute encodings: logits change when every position shifts.
ABSOLUTE = encodings_of_family("absolute")

POOLED = [n for n in POOLINGS.names() if not POOLINGS.get(n).token_level]
D_MODEL, HEADS = 16, 2


@pytest.mark.parametrize("name", ENCODINGS.names())
def test_every_encoding_class_states_its_family(name: str) -> None:
    cls = ENCODINGS.get(name)
    assert "family" in vars(cls) or name == "none", f"{cls.__name__} must set `family` (one of {FAMILIES})"
    assert cls.family in FAMILIES


def test_families_select_the_known_encodings() -> None:
    assert {"rope", "xpos", "t5", "alibi", "kerple", "fire", "nezha"} <= set(RELATIVE)
    assert {"sinusoidal", "learned"} <= set(ABSOLUTE) and not set(ABSOLUTE) & set(RELATIVE)
    assert encodings_of_family("query-bias")[:1] == ["nezha"]
    with pytest.raises(ValueError, match="families"):
        encodings_of_family("relative")


def _model(encoding: str, pooling: str = "mean", *, causal: bool = False, classes: int = 3, **kw) -> TransformerModel:
    torch.manual_seed(0)
    spec = {"name": "randomized", "base": "rope", "max_length": 64} if encoding == "randomized" else encoding
    config = ModelConfig(vocab_size=11, num_classes=classes, d_model=D_MODEL, num_heads=HEADS, num_layers=2,
                         causal=causal, encoding=spec, pooling=pooling, **kw)
    return TransformerModel(config).eval()


def _logits_from_hooks(encoding, q, k, positions):
    """Attention logits (B, H, L, L) exactly as the model forms them, from the three hooks."""
    q, k = encoding.rotate(q, k, positions)
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    bias = encoding.bias(positions, positions, q) if encoding.bias_needs_query else encoding.bias(positions, positions)
    return logits if bias is None else logits + bias


@pytest.mark.parametrize("name", RELATIVE)
@pytest.mark.parametrize("causal", [False, True])
def test_relative_encodings_are_shift_invariant(name: str, causal: bool) -> None:
    encoding = create_encoding(name, d_model=D_MODEL, num_heads=HEADS, causal=causal)
    q, k = torch.randn(2, HEADS, 7, D_MODEL // HEADS), torch.randn(2, HEADS, 7, D_MODEL // HEADS)
    positions = torch.arange(7)
    shift = 5  # fire normalises by the query position: stay below its threshold (default 512)
    torch.testing.assert_close(
        _logits_from_hooks(encoding, q, k, positions), _logits_from_hooks(encoding, q, k, positions + shift),
        rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("name", ABSOLUTE)
def test_absolute_encodings_change_with_a_shift(name: str) -> None:
    encoding = create_encoding(name, d_model=D_MODEL, num_heads=HEADS, causal=False)
    x = torch.zeros(1, 5, D_MODEL)
    assert not torch.allclose(encoding.embed(x, torch.arange(5)), encoding.embed(x, torch.arange(5) + 3))


def test_sinusoidal_rows_match_the_formula() -> None:
    table = sinusoidal_table(torch.arange(50), 16)
    for pos in (0, 1, 7, 49):
        for i in range(8):
            angle = pos / 10000 ** (2 * i / 16)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_learned_beyond_max_positions_raises_a_clear_error() -> None:
    config = ModelConfig(vocab_size=5, num_classes=2, d_model=8, num_heads=2, encoding={"name": "learned", "max_positions": 8})
    model = TransformerModel(config)
    model(torch.randint(0, 5, (1, 8)))  # exactly max_positions is fine
    with pytest.raises(UnsupportedLengthError, match="max_positions"):
        model(torch.randint(0, 5, (1, 9)))


@pytest.mark.parametrize("encoding", ENCODINGS.names())
@pytest.mark.parametrize("pooling", [p for p in POOLED])
def test_padding_left_or_right_never_changes_the_output(encoding: str, pooling: str) -> None:
    model = _model(encoding, pooling)
    tokens = torch.randint(1, 11, (2, 6))
    expected = model(tokens)
    for left, right in ((3, 0), (0, 3), (1, 2)):
        padded = torch.zeros(2, 6 + left + right, dtype=torch.long)
        padded[:, left : left + 6] = tokens
        mask = torch.zeros_like(padded, dtype=torch.bool)
        mask[:, left : left + 6] = True
        torch.testing.assert_close(model(padded, mask), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("encoding", ENCODINGS.names())
def test_causal_model_output_at_t_ignores_later_tokens(encoding: str) -> None:
    model = _model(encoding, "none", causal=True, classes=11)
    tokens = torch.randint(1, 11, (2, 10))
    changed = tokens.clone()
    changed[:, 6:] = torch.randint(1, 11, (2, 4))
    torch.testing.assert_close(model(tokens)[:, :6], model(changed)[:, :6], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(model(tokens)[:, 6:], model(changed)[:, 6:])


def test_bidirectional_nope_mean_pooling_is_permutation_invariant() -> None:
    model = _model("none", "mean")
    tokens = torch.randint(1, 11, (3, 9))
    permuted = tokens[:, torch.randperm(9)]
    torch.testing.assert_close(model(tokens), model(permuted), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("encoding", ENCODINGS.names())
def test_every_encoding_and_pooling_trains_without_nan(encoding: str, dtype: torch.dtype) -> None:
    for pooling in POOLED + ["none"]:
        causal = pooling in ("none", "last")
        if pooling == "cls" and causal:
            continue
        model = _model(encoding, pooling, causal=causal, classes=11).train().to(dtype)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(3):
            tokens = torch.randint(1, 11, (4, 8))
            mask = torch.ones_like(tokens, dtype=torch.bool)
            mask[0, :2] = False  # some left padding too
            logits = model(tokens, mask)
            target = tokens if pooling == "none" else tokens[:, 0] % 11
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 11), target.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            assert torch.isfinite(loss), (encoding, pooling)
            assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), (encoding, pooling)
            optimizer.step()


BIAS_ENCODINGS = encodings_of_family("bias", "query-bias")


@pytest.mark.parametrize("encoding", BIAS_ENCODINGS)
def test_bias_families_have_a_bias_and_the_others_do_not(encoding: str) -> None:
    assert create_encoding(encoding, d_model=D_MODEL, num_heads=HEADS, causal=False).has_bias
    for other in encodings_of_family("none", "absolute", "rotary"):
        assert not create_encoding(other, d_model=D_MODEL, num_heads=HEADS, causal=False).has_bias, other


#: Encodings with learned parameters (every registered one, judged by building it).
WITH_PARAMETERS = [n for n in ENCODINGS.names()
                   if any(True for _ in create_encoding(n, d_model=D_MODEL, num_heads=HEADS, causal=False).parameters())]


def test_the_encodings_with_parameters_are_found() -> None:
    assert {"learned", "t5", "kerple", "fire"} <= set(WITH_PARAMETERS) and "rope" not in WITH_PARAMETERS


@pytest.mark.parametrize("encoding", WITH_PARAMETERS)
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_reach_every_parameter_of_the_encoding(encoding: str, causal: bool) -> None:
    model = _model(encoding, "none" if causal else "mean", causal=causal, classes=11).train()
    parameters = dict(model.encoding.named_parameters())
    tokens = torch.randint(1, 11, (2, 12))
    logits = model(tokens)
    target = tokens if causal else tokens[:, 0]
    torch.nn.functional.cross_entropy(logits.reshape(-1, 11), target.reshape(-1)).backward()
    for name, parameter in parameters.items():
        assert parameter.grad is not None and bool(parameter.grad.abs().sum() > 0), f"{encoding}: {name}"


@pytest.mark.skipif(not flex_available(), reason="this torch has no FlexAttention")
@pytest.mark.parametrize("encoding", BIAS_ENCODINGS)
@pytest.mark.parametrize("causal,padded", [(False, False), (True, False), (False, True)])
def test_flex_attention_forward_matches_sdpa(encoding: str, causal: bool, padded: bool) -> None:
    sdpa = _model(encoding, "none", causal=causal, classes=11, attention_backend="sdpa")
    flex = _model(encoding, "none", causal=causal, classes=11, attention_backend="flex")
    flex.load_state_dict(sdpa.state_dict())
    tokens = torch.randint(1, 11, (2, 12))
    mask = None
    if padded:
        mask = torch.ones_like(tokens, dtype=torch.bool)
        mask[0, :4] = False
    with torch.no_grad():
        expected, actual = sdpa(tokens, mask), flex(tokens, mask)
    if mask is not None:  # padding positions are not outputs anyone reads
        expected, actual = expected[mask], actual[mask]
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_post_ln_and_patch_inputs() -> None:
    model = _model("sinusoidal", "cls", norm_first=False)
    assert model(torch.randint(0, 11, (2, 5))).shape == (2, 3)
    config = ModelConfig(vocab_size=1, num_classes=10, d_model=16, num_heads=2, input_kind="patches", patch_dim=4,
                         encoding="learned", pooling="mean")
    assert TransformerModel(config)(torch.randn(2, 16, 4)).shape == (2, 10)


def test_cls_pooling_in_a_causal_decoder_is_rejected() -> None:
    with pytest.raises(ValueError, match="bidirectional"):
        _model("none", "cls", causal=True)


def test_embeddings_load_from_a_text_vectors_file(tmp_path) -> None:
    path = tmp_path / "vectors.txt"
    path.write_text("2 4\na 1 2 3 4\nb 5 6 7 8\n")
    config = ModelConfig(vocab_size=3, num_classes=2, d_model=4, num_heads=2, embedding_path=str(path),
                         vocabulary=("<pad>", "b", "a"), freeze_embeddings=True)
    model = TransformerModel(config)
    assert model.embed_in.weight[2].tolist() == [1, 2, 3, 4]
    assert model.embed_in.weight[1].tolist() == [5, 6, 7, 8]
    assert not model.embed_in.weight.requires_grad
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2\n")
    with pytest.raises(ValueError, match="d_model is 4"):
        TransformerModel(ModelConfig(vocab_size=3, num_classes=2, d_model=4, num_heads=2, embedding_path=str(bad)))


def test_gelu_is_exact_gelu_in_place_only_without_gradient() -> None:
    from ablate.model.transformer import GELU

    x = torch.randn(4, 9)
    expected = torch.nn.functional.gelu(x)
    with torch.no_grad():
        buffer = x.clone()
        assert GELU()(buffer).data_ptr() == buffer.data_ptr()  # in place: no new tensor
        assert torch.equal(buffer, expected)
    leaf = x.clone().requires_grad_(True)
    out = GELU()(leaf)
    assert out.data_ptr() != leaf.data_ptr() and torch.equal(out, expected)
    out.sum().backward()
    reference = x.clone().requires_grad_(True)
    torch.nn.functional.gelu(reference).sum().backward()
    assert torch.equal(leaf.grad, reference.grad)
