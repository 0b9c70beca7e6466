"""One readable transformer: encoder or decoder, with encoding and pooling injected.

The model calls the encoding's three hooks (``embed``, ``rotate``, ``bias``) and
the pooling; it knows nothing about any particular encoding. Positions are
computed once per forward pass from the encoding and the padding mask, so a
left-padded sequence sees exactly the positions it would see unpadded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from ablate.model.attention import TUNING, AttentionPlan, MaskCache, Tuning, attend, choose_backend, plan_attention
from ablate.core.dims import head_dim
from ablate.model.encodings import PositionalEncoding, create_encoding
from ablate.model.config import ModelConfig
from ablate.model.pooling import Pooling, create_pooling, token_rank


class GELU(nn.GELU):
    """Exact GELU that overwrites its input when no gradient is needed.

    Only for an input that nothing else reads: here the ``(B, L, d_ff)`` output of
    the first feed-forward linear. In inference that saves allocating (and
    page-faulting) a tensor of that size per layer, which is a large share of an
    inference step's memory traffic. Same values either way.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return super().forward(x)
        return torch.ops.aten.gelu_(x, approximate=self.approximate)


class SelfAttention(nn.Module):
    """Multi-head self-attention whose positional behaviour comes from the encoding."""

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, plan: AttentionPlan, encoding: PositionalEncoding) -> torch.Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, Dh) each
        q, k = encoding.rotate(q, k, plan.positions)
        y = attend(q, k, v, plan)  # (B, H, L, Dh)
        y = y.transpose(1, 2).reshape(batch, length, dim)  # (B, L, D)
        return self.dropout(self.out(y))


class Block(nn.Module):
    """Attention + feed-forward with residuals; pre-LN or post-LN."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d_ff = config.d_ff or 4 * config.d_model
        self.norm_first = config.norm_first
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = SelfAttention(config.d_model, config.num_heads, config.dropout)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.ff = nn.Sequential(
            nn.Linear(config.d_model, d_ff), GELU(), nn.Linear(d_ff, config.d_model), nn.Dropout(config.dropout)
        )

    def forward(self, x: torch.Tensor, plan: AttentionPlan, encoding: PositionalEncoding) -> torch.Tensor:
        if self.norm_first:
            x = x + self.attn(self.norm1(x), plan, encoding)
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self.attn(x, plan, encoding))
        return self.norm2(x + self.ff(x))


class TransformerModel(nn.Module):
    """Embedding -> encoding hooks -> blocks -> pooling -> head.

    ``forward(inputs, padding_mask)``: inputs ``(B, L)`` int64 token ids (or
    ``(B, L, P)`` patches), padding mask ``(B, L)`` bool with ``True`` at real
    tokens (or ``None``). Returns logits ``(B, num_classes)``, or
    ``(B, L, num_classes)`` for token-level pooling ``"none"``. ``tuning`` sets the attention
    planner's numbers (:class:`~ablate.model.attention.Tuning`; tests pass others to reach every path).
    """

    def __init__(self, config: ModelConfig, *, tuning: Tuning = TUNING) -> None:
        super().__init__()
        head_dim(config.d_model, config.num_heads)
        self.config = config
        self.attention_tuning = tuning
        self.encoding = create_encoding(
            config.encoding, d_model=config.d_model, num_heads=config.num_heads, causal=config.causal
        )
        self.pooling: Pooling = create_pooling(config.pooling, d_model=config.d_model, num_heads=config.num_heads)
        if self.pooling.prepends_cls and config.causal:
            raise ValueError("pooling 'cls' needs a bidirectional encoder: in a causal decoder [CLS] sees nothing")
        if config.input_kind == "patches":
            if config.patch_dim < 1:
                raise ValueError("input_kind='patches' needs patch_dim >= 1")
            self.embed_in: nn.Module = nn.Linear(config.patch_dim, config.d_model)
        elif config.input_kind == "tokens":
            self.embed_in = nn.Embedding(config.vocab_size, config.d_model)
        else:
            raise ValueError(f"input_kind must be 'tokens' or 'patches', got {config.input_kind!r}")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.d_model)) if self.pooling.prepends_cls else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        # Pre-LN needs a final norm; post-LN blocks already end normalised.
        self.final_norm = nn.LayerNorm(config.d_model) if config.norm_first else nn.Identity()
        self.head = nn.Linear(self.pooling.out_dim(), config.num_classes)
        self.mask_cache = MaskCache()  # a static bias's combined mask, reused between inference calls
        for name, module in self.named_modules():
            if not name.startswith("encoding"):  # encodings keep their paper's initialisation
                _init_weights(module)
        nn.init.normal_(self.embed_in.weight, std=config.embedding_init_std)
        self.embedding_multiplier = embedding_multiplier(config.embedding_scale, config.d_model)
        if config.embedding_path:
            self._load_embeddings(Path(config.embedding_path))

    def _load_embeddings(self, path: Path) -> None:
        if not isinstance(self.embed_in, nn.Embedding):
            raise ValueError("embedding_path applies to token inputs only")
        weight = load_text_vectors(path, self.config.vocab_size, self.config.d_model, self.config.vocabulary)
        with torch.no_grad():
            self.embed_in.weight.copy_(weight)
        self.embed_in.weight.requires_grad_(not self.config.freeze_embeddings)

    def check_length(self, length: int) -> None:
        """Raise :class:`~ablate.core.errors.UnsupportedLengthError` if ``length`` input tokens cannot be encoded.

        Counts the [CLS] token a ``cls`` pooling prepends, which the encoding sees too.
        """
        self.encoding.check_length(length + (1 if self.cls_token is not None else 0))

    def positions(self, length: int, padding_mask: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """``(L,)`` positions, or ``(B, L)`` counted over real tokens when padded."""
        positions = self.encoding.positions(length, device=device)
        if padding_mask is None:
            return positions
        return positions[token_rank(padding_mask)]

    def forward(self, inputs: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed_in(inputs)  # (B, L, D)
        if self.embedding_multiplier != 1.0:
            x = x * self.embedding_multiplier
        if padding_mask is not None and bool(padding_mask.all()):
            padding_mask = None  # nothing padded: take the fast unmasked path
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
            if padding_mask is not None:
                padding_mask = F.pad(padding_mask, (1, 0), value=True)
        length = x.shape[1]
        self.encoding.check_length(length)
        positions = self.positions(length, padding_mask, x.device)
        x = self.drop(self.encoding.embed(x, positions))
        backend = choose_backend(self.config.attention_backend, x.device, self.encoding)
        plan = plan_attention(
            self.encoding, positions, padding_mask, causal=self.config.causal, backend=backend, dtype=x.dtype,
            cache=self.mask_cache, tuning=self.attention_tuning,
        )
        for block in self.blocks:
            x = block(x, plan, self.encoding)
        x = self.final_norm(x)
        return self.head(self.pooling(x, padding_mask))


def embedding_multiplier(scale: float | str, d_model: int) -> float:
    """The input-embedding multiplier of :attr:`ModelConfig.embedding_scale` (``"sqrt_d"`` or a number)."""
    if scale == "sqrt_d":
        return math.sqrt(d_model)
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0:
        return float(scale)
    raise ValueError(f"embedding_scale must be 'sqrt_d' or a positive number, got {scale!r}")


def _init_weights(module: nn.Module) -> None:
    # GPT-2 / nanoGPT initialisation: small normal weights, zero biases.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


def load_text_vectors(
    path: Path, vocab_size: int, dim: int, vocabulary: tuple[str, ...] | None = None
) -> torch.Tensor:
    """Read word2vec/GloVe text vectors into a ``(vocab_size, dim)`` matrix.

    With ``vocabulary``, rows are matched by word and unmatched ids keep a small
    random init; without, file row ``i`` is token ``i``. A word2vec header line
    (``count dim``) is skipped.
    """
    if not path.is_file():
        raise ValueError(f"embedding_path {str(path)!r} does not exist")
    weight = torch.randn(vocab_size, dim) * 0.02
    index = {word: i for i, word in enumerate(vocabulary)} if vocabulary else None
    row = 0
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            parts = line.rstrip().split(" ")
            if line_number == 1 and len(parts) == 2:
                continue  # word2vec header
            word, values = parts[0], parts[1:]
            if len(values) != dim:
                raise ValueError(
                    f"{path}:{line_number}: vector has {len(values)} values but d_model is {dim}"
                )
            target = index.get(word) if index is not None else row
            if target is not None and target < vocab_size:
                weight[target] = torch.tensor([float(v) for v in values])
            row += 1
    return weight


def build_model(config: ModelConfig | Mapping[str, Any]) -> TransformerModel:
    """A :class:`TransformerModel` from a config or its dict form."""
    if not isinstance(config, ModelConfig):
        config = ModelConfig(**config)
    return TransformerModel(config)
