"""RoPE context extension at evaluation time: PI, NTK-aware, dynamic NTK and YaRN.

These act on a model *trained with plain RoPE*: the frequencies are swapped only
while the variant is evaluated (or fine-tuned), then restored. That is the
setting of the papers, and it differs from ``rope``'s own ``scaling=`` parameter,
which trains with the scaled frequencies from the first step (a different
frequency set, not an extension method).

Formulas follow HF ``transformers`` ``modeling_rope_utils`` (default, linear,
dynamic, yarn); the tests pin reference values from transcriptions of it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

from ablate.model.encodings.rotary import RotaryEncoding, ntk_base, rope_inv_freq, yarn_inv_freq
from ablate.core.registry import Registry

#: ``(dim, base, factor, train_length, length) -> (inv_freq (dim/2,) float64, attention_factor)``.
Frequencies = Callable[[int, float, float, int, int], tuple[torch.Tensor, float]]

ROPE_METHODS: Registry[Frequencies] = Registry("rope scaling method")


@ROPE_METHODS.register("pi")
def pi_frequencies(dim: int, base: float, factor: float, train_length: int, length: int) -> tuple[torch.Tensor, float]:
    """Position interpolation (Chen et al. 2023; HF ``linear``): every frequency divided by ``factor``."""
    return rope_inv_freq(dim, base) / factor, 1.0


@ROPE_METHODS.register("ntk")
def ntk_frequencies(dim: int, base: float, factor: float, train_length: int, length: int) -> tuple[torch.Tensor, float]:
    """NTK-aware scaling (bloc97 2023): base ``* factor^(dim/(dim-2))``; high frequencies barely move."""
    return rope_inv_freq(dim, ntk_base(base, factor, dim)), 1.0


@ROPE_METHODS.register("dynamic")
def dynamic_frequencies(dim: int, base: float, factor: float, train_length: int, length: int) -> tuple[torch.Tensor, float]:
    """Dynamic NTK (HF ``dynamic``): NTK with ``factor * L / L_train - (factor - 1)``, from ``L > L_train`` on.

    Evaluated as one full-sequence forward pass, every position of a length-``L``
    window uses the frequencies for ``L`` (HF without a KV cache).
    """
    seq_len = max(length, train_length)
    alpha = factor * seq_len / train_length - (factor - 1)
    return rope_inv_freq(dim, base * alpha ** (dim / (dim - 2))), 1.0


@ROPE_METHODS.register("yarn")
def yarn_frequencies(dim: int, base: float, factor: float, train_length: int, length: int) -> tuple[torch.Tensor, float]:
    """YaRN (Peng et al. 2023): NTK-by-parts ramp plus attention temperature ``0.1 ln(factor) + 1`` on cos/sin."""
    return yarn_inv_freq(dim, base, factor, train_length)


def rotary_modules(model: torch.nn.Module) -> list[RotaryEncoding]:
    """The plain ``rope`` encodings inside ``model`` (also when wrapped, e.g. by ``randomized``)."""
    return [m for m in model.modules() if isinstance(m, RotaryEncoding)]


def unsupported_reason(model: torch.nn.Module) -> str | None:
    """Why evaluation-time RoPE scaling cannot apply to ``model``, or ``None`` when it can."""
    ropes = rotary_modules(model)
    if not ropes:
        return "rope_scaling needs a model with a 'rope' encoding"
    scaled = [m.scaling for m in ropes if m.scaling is not None]
    if scaled:
        return (f"rope_scaling extends a model trained with plain RoPE; this one trains with scaling={scaled[0]!r} "
                "from the first step")
    return None


def set_frequencies(encoding: RotaryEncoding, inv_freq: torch.Tensor, attention_factor: float) -> None:
    """Give ``encoding`` new frequencies ``(R/2,)`` and attention factor (its cached tables are dropped)."""
    encoding.set_frequencies(inv_freq, attention_factor)


@contextmanager
def restored_frequencies(model: torch.nn.Module) -> Iterator[list[RotaryEncoding]]:
    """Yield the model's rope encodings and put their original frequencies back on exit."""
    ropes = rotary_modules(model)
    saved = [(m.inv_freq, m.attention_factor) for m in ropes]
    try:
        yield ropes
    finally:
        for module, (inv_freq, attention_factor) in zip(ropes, saved):
            set_frequencies(module, inv_freq, attention_factor)


def scale_model(model: torch.nn.Module, method: str, factor: float, train_length: int, length: int) -> float:
    """Set every rope encoding of ``model`` to ``method`` at ``factor`` for evaluation length ``length``.

    Returns the attention factor applied (1 except for YaRN). Call inside
    :func:`restored_frequencies` so the trained frequencies come back.
    """
    frequencies = ROPE_METHODS.get(method)
    attention = 1.0
    for module in rotary_modules(model):
        inv_freq, attention = frequencies(module.rotary_dim, module.base, factor, train_length, length)
        set_frequencies(module, inv_freq, attention)
    return attention


def resolve_factor(factor: float | str | None, method: str, train_length: int, length: int,
                   finetune_length: int | None = None) -> float:
    """The scaling factor at evaluation length ``length`` (see :class:`~ablate.suite.variant_schema.RopeScaling`)."""
    if isinstance(factor, (int, float)):
        return float(factor)
    if method == "dynamic":
        return 1.0
    reach = finetune_length if finetune_length is not None else length
    return max(1.0, reach / train_length) if math.isfinite(reach) else 1.0
