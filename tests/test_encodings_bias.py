"""Relative-bias encodings (t5, alibi, kerple, fire, nezha): reference values and invariants."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from ablate.model.attention import Tuning, attend, attention, plan_attention
from ablate.model.encodings import ENCODINGS, UnsupportedLengthError, create_encoding, encodings_of_family
from ablate.model.encodings.alibi import alibi_slopes
from ablate.model.encodings.clipped import value_term
from ablate.model.encodings.t5 import t5_relative_position_bucket

BIAS_NAMES = encodings_of_family("bias", "query-bias")  # a new bias encoding joins these tests on registration
H, DH = 2, 4  # heads, head_dim
UNCOMPILED_FLEX = "ignore:flex_attention called without torch.compile:UserWarning"


# --------------------------------------------------------------------- references
# Verbatim from HF transformers, models/t5/modeling_t5.py, T5Attention (Apache-2.0).
def hf_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    # now relative_position is in the range [0, inf)

    # half of the buckets are for exact increments in positions
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact

    # The other half of the buckets are for logarithmically bigger bins in positions up to max_distance
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(
        relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1)
    )

    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


# Verbatim from ofirpress/attention_with_linear_biases, fairseq/models/transformer.py (MIT);
# only its trailing comments are moved here: "In the paper, we only train models that have
# 2^a heads for some a. This function has some good properties that only occur when the
# input is a power of 2. To maintain that even when the number of heads is not a power of 2,
# we use this workaround."
def get_slopes(n):
    def get_slopes_power_of_2(n):
        start = (2**(-2**-(math.log2(n)-3)))
        ratio = start
        return [start*ratio**i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    else:
        closest_power_of_2 = 2**math.floor(math.log2(n))
        return get_slopes_power_of_2(closest_power_of_2) + get_slopes(2*closest_power_of_2)[0::2][:n-closest_power_of_2]


def hf_nezha_table(vocab_size: int, depth: int) -> torch.Tensor:
    """The sinusoid table of HF ``NezhaRelativePositionsEncoding`` (float32, as there)."""
    embeddings_table = torch.zeros(vocab_size, depth)
    position = torch.arange(0, vocab_size, dtype=torch.int64).float().unsqueeze(1)
    div_term = torch.exp(torch.arange(0, depth, 2).float() * (-math.log(10000.0) / depth))
    embeddings_table[:, 0::2] = torch.sin(position * div_term)
    embeddings_table[:, 1::2] = torch.cos(position * div_term)
    return embeddings_table


# ----------------------------------------------------------------------- helpers
def make(name: str, causal: bool = False, **params):
    # FIRE's score_mod is unrolled over hidden units; a narrow MLP keeps uncompiled flex fast.
    if name == "fire":
        params.setdefault("mlp_width", 4)
    return create_encoding({"name": name, **params}, d_model=H * DH, num_heads=H, causal=causal)


def bias_of(encoding, q_positions, k_positions, q=None):
    # The contract: attention always passes the queries; a static bias ignores them.
    return encoding.bias(q_positions, k_positions, q)


def score_mod_of(encoding, q_positions, k_positions, q=None):
    return encoding.score_mod(q_positions, k_positions, q if encoding.bias_needs_query else None)


def batched_positions(length: int) -> torch.Tensor:
    """Two rows as a left-padded batch produces them: ``0..L-1`` and ``0,0,0,0..L-4``."""
    return torch.stack([torch.arange(length), (torch.arange(length) - 3).clamp(min=0)])


# ------------------------------------------------------------------- registration
def test_family_is_registered_with_bias_hooks():
    for name in BIAS_NAMES:
        assert name in ENCODINGS
        encoding = make(name)
        assert encoding.has_bias
        assert encoding.bias_needs_query == (name == "nezha")


@pytest.mark.parametrize("name", list(ENCODINGS.names()))
def test_bias_needs_query_is_the_family_and_read_only(name):
    encoding = create_encoding(name, d_model=16, num_heads=2, causal=False)
    family = type(encoding).family
    expected = family == "query-bias" if family != "wrapper" else encoding.base.bias_needs_query
    assert encoding.bias_needs_query == expected
    with pytest.raises(AttributeError):
        encoding.bias_needs_query = not expected


def test_a_randomized_wrapper_asks_its_base():
    wrapped = create_encoding({"name": "randomized", "base": "nezha", "max_length": 64}, d_model=16, num_heads=2, causal=False)
    plain = create_encoding({"name": "randomized", "base": "alibi", "max_length": 64}, d_model=16, num_heads=2, causal=False)
    assert wrapped.bias_needs_query and not plain.bias_needs_query


# ----------------------------------------------------------------------------- t5
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (16, 40), (8, 20)])
def test_t5_buckets_match_hf(bidirectional, num_buckets, max_distance):
    relative = torch.arange(-200, 201)
    expected = hf_relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    got = t5_relative_position_bucket(
        relative, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    )
    assert torch.equal(got, expected)


@pytest.mark.parametrize("causal", [False, True])
def test_t5_encoding_buckets_match_hf(causal):
    # Query at 200 and keys at 0..400 cover key - query = -200..200 (beyond max_distance).
    encoding = make("t5", causal)
    got = encoding.buckets(torch.tensor([200]), torch.arange(401))[0]
    expected = hf_relative_position_bucket(torch.arange(-200, 201), bidirectional=not causal)
    assert torch.equal(got, expected)
    bias = encoding.bias(torch.tensor([200]), torch.arange(401))  # (H, 1, 401)
    assert torch.equal(bias[:, 0], encoding.relative_attention_bias.weight[expected].T)


def test_t5_known_buckets():
    # Hand-checked: exact buckets 0..7, then log bins; future keys get the upper half.
    bucket = lambda r, bidirectional: int(t5_relative_position_bucket(torch.tensor(r), bidirectional=bidirectional))
    assert [bucket(r, True) for r in (0, -1, -7, 1, 7)] == [0, 1, 7, 17, 23]
    assert [bucket(r, True) for r in (-8, -127, -128, -10_000, 10_000)] == [8, 15, 15, 15, 31]
    assert [bucket(r, False) for r in (0, 5, -15, -16, -127, -128)] == [0, 0, 15, 16, 31, 31]


def test_t5_untrained_note_names_the_unreached_buckets():
    for causal in (False, True):
        encoding = make("t5", causal)
        distances = lambda n: torch.arange(-(n - 1), 1) if causal else torch.arange(-(n - 1), n)
        reached = lambda n: set(hf_relative_position_bucket(distances(n), not causal).tolist())
        unseen = sorted(reached(256) - reached(64))
        assert unseen == ([14, 15, 30, 31] if not causal else [27, 28, 29, 30, 31])
        note = encoding.untrained_note(64, 256)
        assert note is not None and str(unseen) in note
        assert encoding.untrained_note(64, 64) is None
        assert encoding.untrained_note(300, 400) is None  # every bucket already reached


def test_t5_rejects_bad_config_and_float_positions():
    with pytest.raises(ValueError, match="odd"):
        make("t5", num_buckets=31)
    with pytest.raises(ValueError, match="max_distance"):
        make("t5", num_buckets=32, max_distance=8)
    with pytest.raises(UnsupportedLengthError):
        make("t5").bias(torch.arange(4.0), torch.arange(4.0))


# -------------------------------------------------------------------------- alibi
@pytest.mark.parametrize("num_heads", range(1, 17))
def test_alibi_slopes_match_official(num_heads):
    assert alibi_slopes(num_heads) == get_slopes(num_heads)


def test_alibi_known_slopes():
    assert alibi_slopes(8) == [2.0**-k for k in range(1, 9)]
    assert alibi_slopes(6) == [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]
    assert alibi_slopes(12)[8:] == pytest.approx([2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5], rel=1e-15)
    with pytest.raises(ValueError):
        alibi_slopes(0)


def test_alibi_bias_values():
    positions = torch.arange(3)
    slopes = torch.tensor([2.0**-4, 2.0**-8]).view(2, 1, 1)  # two heads
    signed = torch.tensor([[0.0, 1, 2], [-1, 0, 1], [-2, -1, 0]])  # j - i
    assert torch.equal(make("alibi", causal=True).bias(positions, positions), slopes * signed)
    assert torch.equal(make("alibi", causal=False).bias(positions, positions), -slopes * signed.abs())
    assert list(make("alibi").parameters()) == []


# ------------------------------------------------------------------------- kerple
def test_kerple_values_init_and_clamp():
    encoding = make("kerple", causal=True)
    assert bool((encoding.r1 >= 0.01).all() and (encoding.r1 <= 2).all())
    assert bool((encoding.r2 >= 0.01).all() and (encoding.r2 <= 1).all())
    with torch.no_grad():
        encoding.r1.copy_(torch.tensor([1.0, 2.0]))
        encoding.r2.copy_(torch.tensor([0.5, 1.0]))
    bias = encoding.bias(torch.arange(3), torch.arange(3))
    assert bias[0, 2, 0].item() == pytest.approx(-1.0 * math.log(1 + 0.5 * 2))
    assert bias[1, 2, 1].item() == pytest.approx(-2.0 * math.log(1 + 1.0 * 1))
    assert torch.equal(bias[:, 0, 0], torch.zeros(2))
    with torch.no_grad():
        encoding.r1.fill_(-3.0)
    encoding.bias(torch.arange(3), torch.arange(3))
    assert torch.equal(encoding.r1.detach(), torch.full((2,), 0.01))  # projected back to eps


# --------------------------------------------------------------------------- fire
def test_fire_normalized_distance_is_the_paper_formula():
    encoding = make("fire", causal=True, init_threshold=4.0)
    c, threshold = 0.1, 4.0
    i = torch.arange(8.0).view(-1, 1)
    j = torch.arange(8.0).view(1, -1)
    x = encoding.normalized_distance(i, j).detach()
    for a in range(8):
        for b in range(a + 1):  # the pairs a causal model attends
            expected = math.log(c * (a - b) + 1) / (math.log(c * max(threshold, a) + 1) + 1e-6)
            assert x[a, b].item() == pytest.approx(expected, rel=1e-5)
    # Encoder extension: antisymmetric and inside [-1, 1].
    assert torch.allclose(x, -x.T)
    assert bool((x.abs() <= 1).all())


def test_fire_bias_is_the_mlp_of_the_normalized_distance():
    encoding = make("fire", init_threshold=4.0)
    positions = torch.arange(6)
    x = encoding.normalized_distance(positions.float().view(-1, 1), positions.float().view(1, -1))
    expected = encoding.mlp(x.unsqueeze(-1)).permute(2, 0, 1)
    assert torch.equal(encoding.bias(positions, positions), expected)


def test_fire_untrained_note():
    encoding = make("fire")  # threshold 512
    assert "never produced" in encoding.untrained_note(64, 256)
    assert encoding.untrained_note(64, 64) is None
    assert encoding.untrained_note(1024, 4096) is None  # past the threshold inputs stay in [0, 1]


# -------------------------------------------------------------------------- nezha
def test_nezha_vectors_match_hf_table():
    encoding = make("nezha", max_relative_position=5)
    assert torch.allclose(encoding.relative_vectors, hf_nezha_table(11, DH), atol=1e-6)


def naive_nezha_vectors(length: int, k: int) -> torch.Tensor:
    """``(L, L, Dh)`` relative vectors exactly as HF ``NezhaRelativePositionsEncoding`` builds them."""
    positions = torch.arange(length)
    relative = positions.view(1, -1) - positions.view(-1, 1)  # j - i
    return hf_nezha_table(2 * k + 1, DH)[relative.clamp(-k, k) + k]


def hf_nezha_attention(q, key, v, a, mask, values: bool):
    """A transcription of HF ``NezhaSelfAttention.forward`` (keys and values) on (B, H, L, Dh) tensors.

    ``a`` is the ``(L, L, Dh)`` relations table (the same for keys and values, as there),
    ``mask`` a boolean ``(L, L)`` "may attend" (HF adds a large negative number instead).
    """
    batch, heads, length, depth = q.shape
    attention_scores = torch.matmul(q, key.transpose(-1, -2))
    query_layer_r = q.permute(2, 0, 1, 3).contiguous().view(length, batch * heads, depth)
    key_position_scores = torch.matmul(query_layer_r, a.permute(0, 2, 1))
    attention_scores = attention_scores + key_position_scores.view(length, batch, heads, length).permute(1, 2, 0, 3)
    attention_scores = attention_scores / math.sqrt(depth)
    attention_probs = torch.softmax(attention_scores.masked_fill(~mask, float("-inf")), dim=-1)
    context_layer = torch.matmul(attention_probs, v)
    if values:
        attentions_probs_r = attention_probs.permute(2, 0, 1, 3).contiguous().view(length, batch * heads, length)
        value_position_scores = torch.matmul(attentions_probs_r, a)
        context_layer = context_layer + value_position_scores.view(length, batch, heads, depth).permute(1, 2, 0, 3)
    return context_layer


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [1, 3, 6, 7, 8, 20])  # shorter than, as long as, longer than the band 2k + 1
def test_nezha_matches_naive_relative_vectors(causal, length):
    k = 3  # distances up to length - 1 exercise the clipping at 3
    encoding = make("nezha", causal, max_relative_position=k)
    q = torch.randn(2, H, length, DH)
    positions = torch.arange(length)
    expected = torch.einsum("bhid,ijd->bhij", q, naive_nezha_vectors(length, k)) / math.sqrt(DH)
    assert torch.allclose(encoding.bias(positions, positions, q), expected, atol=1e-5)
    # A block of query rows against all keys (how blockwise attention asks) is the same rows.
    rows = slice(length // 3, length - length // 3)
    assert torch.allclose(encoding.bias(positions[rows], positions, q[:, :, rows]), expected[:, :, rows], atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [1, 3, 7, 8, 20, 150])  # 150: several row blocks of the dense write
def test_nezha_inference_bias_is_the_bias_shifted_per_row(causal, length):
    # Without autograd NEZHA hands attention each row less its far-left value, in a reused
    # workspace: a per-row constant, so the softmax (and attention) is the same.
    k = 3
    encoding = make("nezha", causal, max_relative_position=k)
    positions = torch.arange(length)
    for trial in range(2):  # the second call reuses the workspace
        q, key, v = (torch.randn(2, H, length, DH) for _ in range(3))
        exact = encoding.bias(positions, positions, q).detach()
        with torch.no_grad():
            shifted = encoding.bias(positions, positions, q).clone()
        difference = exact - shifted  # (B, H, L, L), constant along each row
        assert torch.allclose(difference, difference[..., :1].expand_as(difference), atol=1e-6)
        assert not torch.equal(exact, shifted) or length == 1
        mask = torch.ones(length, length, dtype=torch.bool).tril() if causal else torch.ones(length, length, dtype=torch.bool)
        attend = lambda bias: F.scaled_dot_product_attention(q, key, v, attn_mask=bias.masked_fill(~mask, float("-inf")))
        assert torch.allclose(attend(shifted), attend(exact), atol=1e-5)


@pytest.mark.parametrize("values", [True, False], ids=["keys+values", "keys"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [3, 7, 20])
def test_nezha_attention_matches_the_reference_transcription(values, causal, length):
    k = 3
    encoding = make("nezha", causal, max_relative_position=k, values=values)
    assert encoding.mixes_values == values
    q, key, v = (torch.randn(2, H, length, DH, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.ones(length, length, dtype=torch.bool)
    mask = mask.tril() if causal else mask
    expected = hf_nezha_attention(q, key, v, naive_nezha_vectors(length, k).double(), mask, values)
    encoding = encoding.double()
    encoding.relative_vectors.copy_(hf_nezha_table(2 * k + 1, DH))  # the same float32 roundings as the reference
    positions = torch.arange(length)
    upstream = torch.randn_like(expected)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), (q, key, v))
    for path in ("reference", None):  # the reference path and the planner's choice in training
        got = attention(q, key, v, encoding, positions, None, causal=causal, tuning=Tuning(block_rows=2), path=path)
        assert torch.allclose(got, expected, atol=1e-10), path
        for a, b in zip(torch.autograd.grad((got * upstream).sum(), (q, key, v)), expected_grads):
            assert torch.allclose(a, b, atol=1e-10), path
    with torch.no_grad():  # the inference path of the model's attention agrees too
        plan = plan_attention(encoding, positions, None, causal=causal, backend="sdpa", dtype=q.dtype)
        assert torch.allclose(attend(q, key, v, plan), expected, atol=1e-10)


@pytest.mark.parametrize("values", [True, False], ids=["keys+values", "keys"])
def test_nezha_model_output_is_the_same_with_and_without_autograd(values):
    # Training (blockwise, exact bias) and inference (shifted bias in a workspace) agree.
    from ablate.model.transformer import ModelConfig, TransformerModel

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=11, num_classes=3, d_model=16, num_heads=2, num_layers=2,
                         encoding={"name": "nezha", "max_relative_position": 4, "values": values}, pooling="mean")
    model = TransformerModel(config).eval()
    tokens = torch.randint(0, 11, (3, 25))
    with_grad = model(tokens)
    with torch.inference_mode():
        assert torch.allclose(model(tokens), with_grad, atol=1e-5)
        assert torch.allclose(model(tokens), with_grad, atol=1e-5)  # workspace reused


def test_nezha_value_term_changes_the_output_and_key_only_keeps_the_fused_path():
    positions = torch.arange(9)
    full, keys = make("nezha", values=True), make("nezha", values=False)
    with torch.no_grad():
        plan = lambda encoding: plan_attention(encoding, positions, None, causal=False, backend="sdpa",
                                               dtype=torch.float32).path.name
        assert plan(keys) == "query-bias" and plan(full) == "clipped-vector-blocks"
    probs = torch.softmax(torch.randn(1, H, 9, 9), dim=-1)
    assert not keys.mixes_values and keys.clipped_relative().values is None
    term = value_term(full.clipped_relative(), probs, positions, positions)  # (1, H, 9, Dh)
    expected = torch.einsum("bhij,ijd->bhid", probs, naive_nezha_vectors(9, 64))
    assert torch.allclose(term, expected, atol=1e-6)


def test_nezha_errors_and_note():
    encoding = make("nezha")
    with pytest.raises(ValueError, match="queries"):
        encoding.bias(torch.arange(4), torch.arange(4))
    with pytest.raises(ValueError, match="Lq=4"):
        encoding.bias(torch.arange(4), torch.arange(4), torch.randn(1, H, 5, DH))
    with pytest.raises(ValueError, match="key-only"):
        make("nezha", values="no")
    with pytest.raises(ValueError, match="even head_dim"):
        create_encoding("nezha", d_model=6, num_heads=2, causal=False)
    assert "32..64" in encoding.untrained_note(32, 128)
    assert encoding.untrained_note(100, 200) is None


# ------------------------------------------------------------ family invariants
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", BIAS_NAMES)
def test_shift_invariance(name, causal):
    # FIRE is shift-invariant only below its threshold L (512 by default): 300 + 10 < 512.
    encoding = make(name, causal)
    positions = torch.arange(10)
    q = torch.randn(1, H, 10, DH)
    base = bias_of(encoding, positions, positions, q)
    shifted = bias_of(encoding, positions + 300, positions + 300, q)
    assert torch.allclose(base, shifted, atol=1e-6)
    assert base.abs().sum() > 0


def test_fire_is_not_shift_invariant_past_its_threshold():
    encoding = make("fire", init_threshold=4.0)
    positions = torch.arange(10)
    assert not torch.allclose(encoding.bias(positions, positions), encoding.bias(positions + 50, positions + 50))


@pytest.mark.parametrize("name", BIAS_NAMES)
def test_batched_positions_equal_per_row(name):
    encoding = make(name)
    positions = batched_positions(7)
    q = torch.randn(2, H, 7, DH)
    batched = bias_of(encoding, positions, positions, q)
    assert batched.shape == (2, H, 7, 7)
    for row in range(2):
        single = bias_of(encoding, positions[row], positions[row], q[row : row + 1])
        assert torch.allclose(batched[row], single.reshape(H, 7, 7), atol=1e-6)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", BIAS_NAMES)
def test_score_mod_adds_exactly_the_bias(name, causal, batched):
    # Evaluate the score_mod on broadcast index grids: every element, not an average.
    encoding = make(name, causal)
    positions = batched_positions(6) + 2 if batched else torch.arange(6) * 2 + 1
    q = torch.randn(2, H, 6, DH)
    bias = bias_of(encoding, positions, positions, q).expand(2, H, 6, 6)
    score_mod = score_mod_of(encoding, positions, positions, q)
    b, h, i, j = (torch.arange(n).view([-1 if d == k else 1 for d in range(4)]) for k, n in enumerate((2, H, 6, 6)))
    score = torch.randn(2, H, 6, 6)
    assert torch.allclose(score_mod(score, b, h, i, j), score + bias, atol=1e-6)


@pytest.mark.filterwarnings(UNCOMPILED_FLEX)
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("name", BIAS_NAMES)
def test_flex_attention_matches_sdpa_with_bias(name, batched):
    from torch.nn.attention.flex_attention import flex_attention  # uncompiled: runs on CPU

    encoding = make(name)
    positions = batched_positions(8) if batched else torch.arange(8)
    q, k, v = (torch.randn(2, H, 8, DH) for _ in range(3))
    bias = bias_of(encoding, positions, positions, q)
    with torch.no_grad():
        flex = flex_attention(q, k, v, score_mod=score_mod_of(encoding, positions, positions, q))
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.detach())
    assert torch.allclose(flex, reference, atol=1e-5)


@pytest.mark.parametrize("name", ["t5", "kerple", "fire"])
def test_gradients_reach_every_learned_parameter(name):
    encoding = make(name, causal=True)
    positions = torch.arange(12)
    encoding.bias(positions, positions).tril().square().sum().backward()
    for parameter_name, parameter in encoding.named_parameters():
        assert parameter.grad is not None and bool(parameter.grad.abs().sum() > 0), parameter_name


def test_nezha_gradient_reaches_the_queries():
    q = torch.randn(1, H, 5, DH, requires_grad=True)
    make("nezha").bias(torch.arange(5), torch.arange(5), q).sum().backward()
    assert q.grad is not None and bool(q.grad.abs().sum() > 0)


# ----------------------------------------------------------------- in the model
@pytest.mark.filterwarnings(UNCOMPILED_FLEX)
@pytest.mark.parametrize("name", BIAS_NAMES)
def test_model_sdpa_and_flex_backends_agree(name):
    from ablate.model.transformer import ModelConfig, TransformerModel

    torch.manual_seed(0)
    config = dict(vocab_size=11, num_classes=3, d_model=H * DH, num_heads=H, num_layers=2, causal=True,
                  encoding={"name": name, "mlp_width": 4} if name == "fire" else name, pooling="mean")
    sdpa = TransformerModel(ModelConfig(**config, attention_backend="sdpa")).eval()
    flex = TransformerModel(ModelConfig(**config, attention_backend="flex")).eval()
    flex.load_state_dict(sdpa.state_dict())
    tokens = torch.randint(0, 11, (2, 7))
    padding_mask = torch.ones(2, 7, dtype=torch.bool)
    padding_mask[1, :3] = False  # left padding: per-sequence positions
    with torch.no_grad():
        assert torch.allclose(sdpa(tokens, padding_mask), flex(tokens, padding_mask), atol=1e-5)


# ------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="compiled FlexAttention needs CUDA")
@pytest.mark.parametrize("name", BIAS_NAMES)
def test_compiled_flex_attention_matches_sdpa_on_cuda(name):
    # Forward and backward: gradients must reach the queries and every learned parameter
    # through the captured tensors of the score_mod, as they do through the bias.
    from torch.nn.attention.flex_attention import flex_attention

    device = torch.device("cuda")
    params = {"mlp_width": 4} if name == "fire" else {}
    encoding = create_encoding({"name": name, **params}, d_model=H * 16, num_heads=H, causal=True).to(device)
    positions = batched_positions(128).to(device)
    q, k, v = (torch.randn(2, H, 128, 16, device=device, requires_grad=True) for _ in range(3))

    def gradients(out: torch.Tensor) -> list[torch.Tensor]:
        inputs = [q, *encoding.parameters()]
        return list(torch.autograd.grad(out.square().sum(), inputs))

    compiled = torch.compile(flex_attention, dynamic=False)
    out = compiled(q, k, v, score_mod=score_mod_of(encoding, positions, positions, q))
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=bias_of(encoding, positions, positions, q))
    assert torch.allclose(out, reference, atol=2e-3)
    for got, expected in zip(gradients(out), gradients(reference)):
        assert torch.allclose(got, expected, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("length", [1, 3, 6, 7, 8, 20])
def test_nezha_bias_gradient_is_the_adjoint_of_the_spread(length):
    # Under autograd the bias gathers each query's 2k + 1 scores over its row; its gradient
    # sums them back per distance.
    k = 3
    encoding = make("nezha", max_relative_position=k).double()
    positions = torch.arange(length)
    q = torch.randn(2, H, length, DH, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda queries: encoding.bias(positions, positions, queries), (q,))
    upstream = torch.randn(2, H, length, length, dtype=torch.float64)
    (actual,) = torch.autograd.grad((encoding.bias(positions, positions, q) * upstream).sum(), q)
    vectors = naive_nezha_vectors(length, k).double()  # (L, L, Dh)
    expected = torch.einsum("bhij,ijd->bhid", upstream, vectors) / math.sqrt(DH)
    assert torch.allclose(actual, expected)
