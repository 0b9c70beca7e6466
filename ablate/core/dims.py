"""Model dimensions every component checks the same way."""

from __future__ import annotations


def head_dim(d_model: int, num_heads: int) -> int:
    """``d_model // num_heads``; ``ValueError`` unless ``num_heads`` divides ``d_model``.

    The one check of this invariant: the suite schema, the model, the encodings
    and attention pooling all call it, so the message is the same wherever a
    wrong pair is first seen.
    """
    if num_heads < 1 or d_model % num_heads:
        raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads} "
                         f"(e.g. num_heads={_divisor_near(d_model, num_heads)})")
    return d_model // num_heads


def _divisor_near(d_model: int, num_heads: int) -> int:
    divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
    return min(divisors, key=lambda h: (abs(h - num_heads), h))
