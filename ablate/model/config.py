"""What defines a model, as plain data: :class:`ModelConfig` (no torch).

A suite's ``[model]`` section defaults to its defaults (:mod:`ablate.suite.schema`) and a
resolved run builds one (:mod:`ablate.suite.run_config`); :class:`ablate.model.transformer.TransformerModel`
is built from it. Kept apart from the model so that reading a configuration never
imports the model's code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model; a plain-dict round trip (``dataclasses.asdict``).

    Attributes:
        vocab_size: input token ids (ignored for ``input_kind="patches"``).
        num_classes: output classes, or the output vocabulary for token-level models.
        d_model, num_heads, num_layers: sizes; ``d_ff`` defaults to ``4 * d_model``.
            These defaults are also a suite's ``[model]`` defaults (:mod:`ablate.suite.schema`).
        dropout: on embeddings, attention output and feed-forward output.
        causal: causal decoder (``True``) or bidirectional encoder.
        norm_first: pre-LN (default, GPT-2/nanoGPT) or post-LN (original Transformer/BERT).
        encoding: positional-encoding spec, e.g. ``"rope"`` or ``{"name": "alibi"}``.
        pooling: pooling spec; ``"none"`` keeps per-token outputs (LM head).
        input_kind: ``"tokens"`` (ids) or ``"patches"`` (ViT-style float patches).
        patch_dim: features per patch for ``input_kind="patches"``.
        embedding_path: optional word2vec/GloVe text-format vectors (``word v1 .. vD``)
            initialising the token embedding; row ``i`` of the file is token ``i``
            unless ``vocabulary`` maps words to ids.
        vocabulary: token strings by id, used to match ``embedding_path`` rows.
        freeze_embeddings: keep loaded embeddings fixed during training.
        attention_backend: ``auto``, ``sdpa``, ``flex`` or ``reference`` (the plain path every fast
            one is checked against; the environment variable ``ABLATE_ATTENTION`` overrides this
            for every model of a process). See docs/attention.md.
        embedding_scale: multiplier of the input embedding (tokens or patches) before the
            encoding's ``embed`` hook: ``"sqrt_d"`` (``sqrt(d_model)``, the original
            Transformer's convention) or a number (``1.0``: BERT/GPT-2's). The same for every
            encoding, so a comparison of encodings never differs in it (docs/conventions.md: "Token
            embedding convention").
        embedding_init_std: normal std of the input embedding's initialisation.
    """

    vocab_size: int
    num_classes: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int | None = None
    dropout: float = 0.0
    causal: bool = False
    norm_first: bool = True
    encoding: Any = "none"
    pooling: Any = "mean"
    input_kind: Literal["tokens", "patches"] = "tokens"
    patch_dim: int = 0
    embedding_path: str | None = None
    vocabulary: tuple[str, ...] | None = field(default=None, repr=False)
    freeze_embeddings: bool = False
    attention_backend: str = "auto"
    embedding_scale: float | str = "sqrt_d"
    embedding_init_std: float = 0.02

    def to_dict(self) -> dict[str, Any]:
        """A plain, picklable dict (``ModelConfig(**d)`` rebuilds it)."""
        return dataclasses.asdict(self)
