"""The one switch to the reference path: the model setting and the environment variable re-check any result."""

from __future__ import annotations

import pytest
import torch

from ablate.model.attention import SWITCH, choose_backend, requested_backend
from ablate.model.encodings import create_encoding
from ablate.model.transformer import ModelConfig, TransformerModel
from ablate.suite.schema import ModelSection

H, D = 2, 8


def _models(encoding, causal: bool) -> tuple[TransformerModel, TransformerModel]:
    config = dict(vocab_size=7, num_classes=3, d_model=D, num_heads=H, num_layers=2, causal=causal, encoding=encoding,
                  pooling="none" if causal else "mean")
    torch.manual_seed(0)
    fast = TransformerModel(ModelConfig(**config))
    reference = TransformerModel(ModelConfig(**config, attention_backend="reference"))
    reference.load_state_dict(fast.state_dict())
    return fast, reference


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
@pytest.mark.parametrize("encoding", ["alibi", "t5", {"name": "nezha", "max_relative_position": 3}, "rope"],
                         ids=["alibi", "t5", "nezha", "rope"])
def test_the_reference_setting_recomputes_the_same_outputs_and_gradients(encoding, causal: bool) -> None:
    fast, reference = _models(encoding, causal)
    tokens = torch.randint(0, 7, (2, 40))  # past 8 clipping distances: NEZHA's far keys go fused
    padding_mask = torch.ones(2, 40, dtype=torch.bool)
    padding_mask[1, :6] = False
    for mask in (None, padding_mask):
        outputs = [model(tokens, mask) for model in (fast, reference)]
        torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
        grads = [torch.autograd.grad(out.square().sum(), list(model.parameters()), allow_unused=True)
                 for out, model in zip(outputs, (fast, reference))]
        for (name, _), a, b in zip(fast.named_parameters(), *grads):
            assert (a is None) == (b is None), name
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_the_environment_variable_overrides_every_model(monkeypatch) -> None:
    alibi = create_encoding("alibi", d_model=D, num_heads=H, causal=False)
    cpu = torch.device("cpu")
    assert choose_backend("auto", cpu, alibi) == "sdpa"
    monkeypatch.setenv(SWITCH, "reference")
    assert requested_backend("flex") == "reference" and choose_backend("auto", cpu, alibi) == "reference"
    fast, _ = _models("alibi", causal=False)
    seen = []
    original = fast.blocks[0].attn.forward

    def spy(x, plan, encoding):
        seen.append(plan.path.name)
        return original(x, plan, encoding)

    fast.blocks[0].attn.forward = spy
    fast(torch.randint(0, 7, (1, 5)))
    assert seen == ["reference"]
    monkeypatch.setenv(SWITCH, "fastest")
    with pytest.raises(ValueError, match="ABLATE_ATTENTION must be one of auto, sdpa, flex, reference"):
        requested_backend("auto")


def test_a_suite_may_ask_for_the_reference_path() -> None:
    assert ModelSection(attention_backend="reference").attention_backend == "reference"
