"""Attention over blocks in training: the dense reference's values and gradients, in linear memory.

Parametrized over the encoding registry: every encoding with a bias or a value term
(the bias and query-dependent-bias families) is covered the moment it is registered.
The planner's numbers are explicit inputs (:class:`~ablate.model.attention.Tuning`), not patched.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from ablate.model.attention import Tuning, attend, attention, kernels, plan_attention
from ablate.model.attention.kernels import static_bias_blocks
from ablate.model.attention.kernels.biased_attention import BiasedAttention
from ablate.model.attention.masks import block_allowed
from ablate.model.encodings import ENCODINGS, create_encoding
from ablate.model.encodings.clipped import value_term
from ablate.model.transformer import ModelConfig, TransformerModel

H, DH, B, L = 2, 4, 2, 10
#: Attention over blocks at any length (no shared mask is small enough).
OVER_BLOCKS = Tuning(shared_mask_max_elements=0, shared_learned_mask_max_elements=0)
#: The paths that go over blocks of query rows.
BLOCK_PATHS = {"blocks", *(kernel.name for kernel in kernels("blocks"))}


def over_blocks(rows: int) -> Tuning:
    """:data:`OVER_BLOCKS` in blocks of ``rows`` query rows."""
    return Tuning(shared_mask_max_elements=0, shared_learned_mask_max_elements=0, block_rows=rows,
                  fused_block_rows=rows)


def _bias_family() -> list[tuple[str, dict]]:
    """Every registered encoding whose default instance has a bias or mixes values, plus NEZHA key-only."""
    found = []
    for name in ENCODINGS.names():
        encoding = create_encoding(name, d_model=H * DH, num_heads=H, causal=False)
        if encoding.has_bias or encoding.mixes_values:
            found.append((name, {"mlp_width": 4} if name == "fire" else {}))
    found.append(("nezha", {"values": False}))  # the key-only switch keeps SDPA inside each block
    found.append(("randomized", {"base": "t5", "max_length": 40}))  # a wrapper forwards the bias
    return found


BIAS_FAMILY = _bias_family()
IDS = [name + "".join(f"-{k}={v}" for k, v in params.items() if k != "mlp_width") for name, params in BIAS_FAMILY]


def make(name: str, params: dict, causal: bool):
    torch.manual_seed(1)
    encoding = create_encoding({"name": name, **params}, d_model=H * DH, num_heads=H, causal=causal)
    with torch.no_grad():  # non-trivial values for parameters that start at zero
        for parameter in encoding.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return encoding


def dense_reference(q, k, v, encoding, positions, padding_mask, causal):
    """Attention with the whole ``(B, H, L, L)`` bias, as the model computed it before blocks."""
    length = q.shape[-2]
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, L, L)
    bias = encoding.bias(positions, positions, q)
    if bias is not None:
        logits = logits + bias
    allowed = torch.ones(length, length, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    if padding_mask is not None:  # real queries never see padding keys; a padding query sees itself
        allowed = allowed & (padding_mask[:, None, None, :] | torch.eye(length, dtype=torch.bool))
    probs = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
    out = probs @ v
    if not encoding.mixes_values:
        return out
    return out + value_term(encoding.clipped_relative(), probs, positions, positions)


def inputs(padded: bool):
    q, k, v = (torch.randn(B, H, L, DH, requires_grad=True) for _ in range(3))
    if not padded:
        return q, k, v, torch.arange(L), None
    padding_mask = torch.ones(B, L, dtype=torch.bool)
    padding_mask[1, :3] = False  # left padding: the second row's positions start at its first real token
    positions = (padding_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L)
    return q, k, v, positions, padding_mask


@pytest.mark.parametrize("padded", [False, True], ids=["dense", "padded"])
@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
@pytest.mark.parametrize("name, params", BIAS_FAMILY, ids=IDS)
def test_blockwise_equals_the_dense_reference_with_every_gradient(name, params, causal, padded):
    torch.manual_seed(0)
    encoding = make(name, params, causal)
    q, k, v, positions, padding_mask = inputs(padded)
    leaves = [q, k, v, *encoding.parameters()]
    names = ["q", "k", "v", *(n for n, _ in encoding.named_parameters())]
    upstream = torch.randn(B, H, L, DH)

    expected = dense_reference(q, k, v, encoding, positions, padding_mask, causal)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), leaves)
    got = attention(q, k, v, encoding, positions, padding_mask, causal=causal, tuning=over_blocks(3))
    grads = torch.autograd.grad((got * upstream).sum(), leaves)

    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for label, actual, reference in zip(names, grads, expected_grads):
        torch.testing.assert_close(actual, reference, rtol=1e-5, atol=1e-5, msg=lambda m, label=label: f"{label}: {m}")
    for label, reference in zip(names[3:], expected_grads[3:]):
        assert bool(reference.abs().sum() > 0), f"{label} gets no gradient even in the reference"


@pytest.mark.parametrize("name, params", BIAS_FAMILY, ids=IDS)
def test_blockwise_keeps_no_quadratic_tensor_for_backward(name, params):
    # Record every tensor autograd saves: the dense reference keeps (B, H, L, L) ones, the
    # blockwise path only block inputs (views of q, k, v) and the small bias parameters.
    length, rows = 64, 8
    encoding = make(name, params, causal=True)
    q, k, v = (torch.randn(B, H, length, DH, requires_grad=True) for _ in range(3))
    positions = torch.arange(length)

    def largest_saved(run) -> int:
        sizes = [0]

        def pack(tensor):
            sizes.append(tensor.numel())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            run()
        return max(sizes)

    quadratic = B * H * length * length
    assert largest_saved(lambda: dense_reference(q, k, v, encoding, positions, None, True)) >= quadratic
    blockwise = largest_saved(lambda: attention(q, k, v, encoding, positions, None, causal=True,
                                                 tuning=over_blocks(rows)))
    assert blockwise <= B * H * length * DH


def test_causal_blocks_skip_keys_past_the_block():
    # A causal block reads keys only up to its last row: the bias hook is asked for exactly those.
    encoding = make("alibi", {}, causal=True)
    asked = []
    original = encoding.bias

    def spy(q_positions, k_positions, q=None):
        asked.append((q_positions.tolist(), k_positions.shape[-1]))
        return original(q_positions, k_positions, q)

    encoding.bias = spy
    q, k, v = (torch.randn(1, H, 7, DH) for _ in range(3))
    with torch.no_grad():
        attention(q, k, v, encoding, torch.arange(7), None, causal=True, tuning=Tuning(block_rows=3), path="blocks")
    assert asked == [([0, 1, 2], 3), ([3, 4, 5], 6), ([6], 7)]


def test_block_rows_must_be_positive():
    with pytest.raises(ValueError, match="block_rows must be an integer >= 1"):
        Tuning(block_rows=0)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-mask", "blocks"])
@pytest.mark.parametrize("name, params", BIAS_FAMILY, ids=IDS)
def test_model_training_paths_agree_with_inference_and_reach_every_bias_parameter(name, params, shared):
    tuning = Tuning() if shared else OVER_BLOCKS  # what a long sequence gets
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=11, num_classes=3, d_model=H * DH, num_heads=H, num_layers=2, causal=True,
                         encoding={"name": name, **params}, pooling="mean")
    model = TransformerModel(config, tuning=tuning).eval()
    positions = torch.arange(70)
    per_layer = model.encoding.bias_needs_query or model.encoding.mixes_values
    with torch.enable_grad():
        path = plan_attention(model.encoding, positions, None, causal=True, backend="sdpa", dtype=torch.float32,
                              tuning=tuning).path.name
    assert path == "shared-mask" if shared and not per_layer else path in BLOCK_PATHS
    tokens = torch.randint(0, 11, (2, 70))  # longer than one block of rows
    padding_mask = torch.ones(2, 70, dtype=torch.bool)
    padding_mask[0, :5] = False
    trained = model(tokens, padding_mask)
    trained.square().sum().backward()
    assert all(p.grad is not None for p in model.encoding.parameters())
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, padding_mask), trained, rtol=1e-5, atol=1e-5)


STATIC_BIASES = sorted(name for name, cls in ENCODINGS.items() if cls.family == "bias")


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
@pytest.mark.parametrize("name", STATIC_BIASES)
def test_static_bias_trains_over_blocks_once_its_shared_mask_is_too_large(name, causal):
    encoding = make(name, {}, causal)
    learned = any(p.requires_grad for p in encoding.parameters())
    limit = "shared_learned_mask_max_elements" if learned else "shared_mask_max_elements"
    positions = torch.arange(40)

    def path(elements: int) -> str:
        return plan_attention(encoding, positions, None, causal=causal, backend="sdpa", dtype=torch.float32,
                              tuning=Tuning(**{limit: elements})).path.name

    with torch.enable_grad():
        assert path(H * 40 * 40) == "shared-mask"
        assert path(H * 40 * 40 - 1) == "static-bias-blocks"


def test_causal_static_bias_row_blocks_read_keys_up_to_their_last_row_and_agree_with_the_dense_mask():
    torch.manual_seed(0)
    alibi = make("alibi", {}, True)
    q, k, v = (torch.randn(2, H, 40, DH, requires_grad=True) for _ in range(3))
    padding_mask = torch.ones(2, 40, dtype=torch.bool)
    padding_mask[1, :7] = False
    positions = torch.arange(40)
    plan = plan_attention(alibi, positions, padding_mask, causal=True, backend="sdpa", dtype=torch.float32,
                          tuning=Tuning(causal_row_block=16))
    assert [(a, b, m.shape[-2:]) for a, b, m in plan.row_blocks] == [
        (0, 16, (16, 16)), (16, 32, (16, 32)), (32, 40, (8, 40))]
    out = attend(q, k, v, plan)
    allowed = block_allowed(padding_mask, causal=True, start=0, stop=40, keys=40, device=q.device)
    dense = alibi.bias(positions, positions).unsqueeze(0).masked_fill(~allowed, float("-inf"))
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.sum(), (q, k, v))
    for grad, expected in zip(grads, torch.autograd.grad(reference.sum(), (q, k, v))):
        torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (compiled FlexAttention)")
@pytest.mark.parametrize("name, params", BIAS_FAMILY, ids=IDS)
def test_flex_training_step_gradients_equal_the_blockwise_path_on_cuda(name, params):
    # FlexAttention differentiates through the tensors its score_mod captures: every
    # parameter's gradient after one training forward/backward matches the blockwise path.
    device = torch.device("cuda")
    torch.manual_seed(0)
    config = dict(vocab_size=11, num_classes=3, d_model=64, num_heads=4, num_layers=2, causal=True,
                  encoding={"name": name, **params}, pooling="mean")
    flex = TransformerModel(ModelConfig(**config, attention_backend="flex")).to(device)
    blocks = TransformerModel(ModelConfig(**config, attention_backend="sdpa")).to(device)
    blocks.load_state_dict(flex.state_dict())
    tokens = torch.randint(0, 11, (2, 256), device=device)
    padding_mask = torch.ones(2, 256, dtype=torch.bool, device=device)
    padding_mask[1, :17] = False
    for model in (flex, blocks):
        model(tokens, padding_mask).square().sum().backward()
    torch.testing.assert_close(flex(tokens, padding_mask), blocks(tokens, padding_mask), rtol=1e-3, atol=1e-3)
    for (label, a), (_, b) in zip(flex.named_parameters(), blocks.named_parameters()):
        assert a.grad is not None and b.grad is not None, label
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-2, atol=1e-3, msg=lambda m, label=label: f"{label}: {m}")


@pytest.mark.parametrize("mask_batch", [1, 2])
def test_biased_attention_backward_is_the_gradient_of_attention_with_its_mask(mask_batch):
    q = torch.randn(2, H, 3, DH, dtype=torch.float64, requires_grad=True)
    k, v = (torch.randn(2, H, 5, DH, dtype=torch.float64, requires_grad=True) for _ in range(2))
    mask = torch.randn(mask_batch, H, 3, 5, dtype=torch.float64)
    mask[..., 0, 4] = float("-inf")  # a masked key: no gradient flows there
    mask.requires_grad_()
    upstream = torch.randn(2, H, 3, DH, dtype=torch.float64)
    got = torch.autograd.grad((BiasedAttention.apply(q, k, v, mask, 128) * upstream).sum(), (q, k, v, mask))
    logits = q @ k.transpose(-1, -2) / math.sqrt(DH) + mask
    expected = torch.autograd.grad(((torch.softmax(logits, -1) @ v) * upstream).sum(), (q, k, v, mask))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_flex_requested_on_the_cpu_trains_as_sdpa_would_and_infers_with_flex():
    # FlexAttention has no CPU backward: training takes the sdpa plan (a shared mask while
    # it is small, blocks past that); inference keeps flex.
    encoding = make("t5", {}, causal=True)
    positions = torch.arange(8)

    def path(tuning: Tuning = Tuning()) -> str:
        return plan_attention(encoding, positions, None, causal=True, backend="flex", dtype=torch.float32,
                              tuning=tuning).path.name

    assert path() == "shared-mask"
    assert path(OVER_BLOCKS) == "static-bias-blocks"
    with torch.no_grad():
        assert path() == "flex"


@pytest.mark.parametrize("batched_mask", [False, True], ids=["shared-mask", "per-sequence-mask"])
def test_biased_attention_backward_over_row_steps_equals_autograd_of_the_dense_softmax(batched_mask):
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, 40, DH, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.randn(B if batched_mask else 1, H, 40, 40, dtype=torch.float64)
    mask[..., :3, 30:] = float("-inf")  # masked keys, as padding and causality give
    mask.requires_grad_(True)
    out = BiasedAttention.apply(q, k, v, mask, 16)  # 40 query rows: three steps, the last one short
    logits = q @ k.transpose(-1, -2) / math.sqrt(DH) + mask
    reference = torch.softmax(logits, dim=-1) @ v
    torch.testing.assert_close(out, reference)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v, mask))
    expected = torch.autograd.grad((reference * weights).sum(), (q, k, v, mask))
    for grad, want in zip(grads, expected):
        torch.testing.assert_close(grad, want)


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
@pytest.mark.parametrize("name", STATIC_BIASES)
def test_shared_mask_training_gives_the_blockwise_gradients_of_every_parameter(name, causal):
    config = ModelConfig(vocab_size=11, num_classes=3, d_model=H * DH, num_heads=H, num_layers=2, causal=causal,
                         encoding=name, pooling="mean")
    tokens = torch.randint(0, 11, (2, 70), generator=torch.Generator().manual_seed(1))
    padding_mask = torch.ones(2, 70, dtype=torch.bool)
    padding_mask[0, :5] = False
    grads = {}
    for path, limit in (("shared", 2**30), ("blocks", 0)):
        # 70 positions: three row blocks of a shared mask
        tuning = Tuning(shared_mask_max_elements=limit, shared_learned_mask_max_elements=limit, causal_row_block=32)
        torch.manual_seed(0)
        model = TransformerModel(config, tuning=tuning)
        model(tokens, padding_mask).square().sum().backward()
        grads[path] = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads["shared"].keys() == grads["blocks"].keys()
    for parameter, grad in grads["shared"].items():
        torch.testing.assert_close(grad, grads["blocks"][parameter], rtol=1e-4, atol=1e-5, msg=parameter)


def test_a_bias_without_parameters_trains_through_the_fused_backward(monkeypatch):
    # ALiBi's mask needs no gradient: the fused kernel's backward, not the explicit one.
    calls = []
    original = static_bias_blocks.flash_attention_backward
    monkeypatch.setattr(static_bias_blocks, "flash_attention_backward",
                        lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    q, k, v, positions, _ = inputs(padded=False)
    for name in ("alibi", "kerple"):
        calls.clear()
        encoding = make(name, {}, causal=False)
        out = attention(q, k, v, encoding, positions, None, causal=False, tuning=over_blocks(4))
        out.sum().backward()
        assert bool(calls) == (name == "alibi"), name
