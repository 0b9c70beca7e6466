"""The tiny parity suite that end-to-end tests run: seconds per run, two seeds, two lengths."""

from __future__ import annotations

ENCODINGS = '"none", { name = "learned", max_positions = 12 }'


def tiny_suite(name: str = "tiny", *, steps: int = 2, encodings: str = ENCODINGS, header: str = "") -> str:
    """TOML text of the suite; ``encodings`` is the inside of the grid's list, ``header`` extra top-level keys."""
    return f"""name = "{name}"
{header}seeds = [0, 1]
task = {{ name = "parity" }}
[model]
d_model = 16
num_heads = 2
num_layers = 1
[train]
steps = {steps}
batch_size = 8
length = 8
[eval]
lengths = [8, 16]
batches = 1
batch_size = 16
[grid]
encoding = [{encodings}]
pooling = ["mean"]
"""
