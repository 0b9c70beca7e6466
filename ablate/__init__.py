"""ablate: a benchmark and ablation harness for positional encodings and pooling."""

__version__ = "0.1.0"

from ablate.store import load_results

__all__ = ["__version__", "load_results"]
