"""Inference speed of the model per encoding, against torch.nn.TransformerEncoder, in one run.

    python scripts/bench_model.py [--lengths 128 512 2048] [--rounds 5]

Batch 8, d_model 128, 4 heads, 2 layers, mean pooling, float32, inference mode.
Every configuration is timed in interleaved rounds (so drift of this noisy
machine hits all of them alike); the table reports the median tokens/s and
ratios against the baseline measured in the same run: ``torch`` (nn.TransformerEncoder
with the same sizes, embedding and head) for ``none``, and ``none`` for every encoding.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn
from torch.utils import benchmark

from ablate.model.encodings import ENCODINGS
from ablate.model.transformer import ModelConfig, TransformerModel

BATCH, D_MODEL, HEADS, LAYERS, VOCAB = 8, 128, 4, 2, 64


class TorchEncoder(nn.Module):
    """The same sizes with torch's own encoder (fast path in inference)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, 4 * D_MODEL, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.encoder(self.embed(tokens))).mean(1))


def models() -> dict[str, nn.Module]:
    built: dict[str, nn.Module] = {"torch": TorchEncoder().eval()}
    for name in ENCODINGS.names():
        spec = {"name": name, "max_positions": 4096} if name == "learned" else name
        if name == "randomized":
            spec = {"name": "randomized", "base": "rope", "max_length": 8192}
        config = ModelConfig(vocab_size=VOCAB, num_classes=2, d_model=D_MODEL, num_heads=HEADS, num_layers=LAYERS,
                             encoding=spec, pooling="mean", attention_backend="sdpa")
        built[name] = TransformerModel(config).eval()
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.3)
    args = parser.parse_args()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    zoo = models()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}, d_model {D_MODEL}, "
          f"heads {HEADS}, layers {LAYERS}")
    for length in args.lengths:
        tokens = torch.randint(0, VOCAB, (BATCH, length))
        times: dict[str, list[float]] = {name: [] for name in zoo}
        with torch.inference_mode():
            for model in zoo.values():
                model(tokens)  # warm-up
            for _ in range(args.rounds):
                for name, model in zoo.items():
                    timer = benchmark.Timer("model(tokens)", globals={"model": model, "tokens": tokens},
                                           num_threads=threads)  # Timer's default is 1 thread
                    times[name].append(timer.blocked_autorange(min_run_time=args.min_run_time).median)
        median = {name: statistics.median(t) for name, t in times.items()}
        print(f"\nL = {length}")
        print(f"{'model':<12}{'tokens/s':>12}{'time ms':>10}{'vs torch':>10}{'time vs none':>14}")
        for name, seconds in median.items():
            versus_torch = median["torch"] / seconds
            versus_none = seconds / median["none"]
            print(f"{name:<12}{BATCH * length / seconds:>12,.0f}{seconds * 1e3:>10.2f}{versus_torch:>10.2f}{versus_none:>14.2f}")


if __name__ == "__main__":
    main()
