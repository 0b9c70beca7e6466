"""One token-embedding convention for every encoding: a model setting, never an encoding's private one."""

from __future__ import annotations

import math

import pytest
import torch

from ablate.model.encodings import ENCODINGS
from ablate.model.encodings.absolute import SinusoidalEncoding, sinusoidal_table
from ablate.model.transformer import ModelConfig, TransformerModel, embedding_multiplier
from ablate.suite.load import SuiteError, suite_from_dict


@pytest.mark.parametrize("name", ENCODINGS.names())
def test_every_encoding_gets_the_same_scaled_input_embedding(name: str) -> None:
    torch.manual_seed(0)
    model = TransformerModel(ModelConfig(vocab_size=7, num_classes=2, d_model=16, num_heads=2, encoding=name))
    assert model.embedding_multiplier == pytest.approx(4.0)  # sqrt(16), whatever the encoding
    assert model.embed_in.weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_sinusoidal_adds_its_table_without_scaling_the_input() -> None:
    encoding = SinusoidalEncoding(d_model=8, num_heads=2)
    x = torch.randn(2, 5, 8)
    positions = torch.arange(5)
    torch.testing.assert_close(encoding.embed(x, positions), x + sinusoidal_table(positions, 8))


def test_the_scale_is_a_model_setting() -> None:
    assert embedding_multiplier("sqrt_d", 64) == 8.0 and embedding_multiplier(1.0, 64) == 1.0
    with pytest.raises(ValueError, match="sqrt_d"):
        embedding_multiplier("sqrt", 64)
    model = TransformerModel(ModelConfig(vocab_size=7, num_classes=2, d_model=16, num_heads=2,
                                         embedding_scale=1.0, embedding_init_std=1.0))
    assert model.embedding_multiplier == 1.0 and model.embed_in.weight.std().item() == pytest.approx(1.0, rel=0.3)


def test_the_old_private_flag_is_refused_with_the_new_setting_named() -> None:
    raw = {"name": "x", "model": {"encoding": {"name": "sinusoidal", "scale_embeddings": False}}}
    from pathlib import Path

    from ablate.suite import expand

    with pytest.raises(SuiteError, match="scale_embeddings"):
        expand(suite_from_dict(raw, "x.toml"), Path("x.toml"))
    with pytest.raises(SuiteError, match="embedding_scale"):
        suite_from_dict({"name": "x", "model": {"embedding_scale": -1.0}}, "x.toml")


def test_learned_table_starts_at_the_token_scale() -> None:
    torch.manual_seed(0)
    model = TransformerModel(ModelConfig(vocab_size=7, num_classes=2, d_model=64, num_heads=2, encoding="learned"))
    assert model.encoding.table.weight.std().item() == pytest.approx(0.02 * math.sqrt(64), rel=0.05)
