"""What a suite's ``[variants.<name>]`` table may say (pydantic; unknown keys are errors).

Example::

    [variants.pi]                      # RoPE position interpolation, factor = eval length / train length
    rope_scaling = { method = "pi" }
    [variants.yarn4]                   # YaRN with a fixed factor 4 at every length
    rope_scaling = { method = "yarn", factor = 4 }
    [variants.pi_ft]                   # the PI paper's setting: fine-tune 60 steps at 256, then evaluate
    rope_scaling = { method = "pi" }
    finetune = { length = 256, steps = 60 }
    [variants.random_eval]             # randomized positions sampled at evaluation too
    eval_positions = "random"
"""

from __future__ import annotations

import re
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The name the trained model's own evaluation (no variant) carries in the ``variant`` column.
BASE = "base"
#: ``rope_scaling.method`` values (see :mod:`ablate.run.variants.rope`).
ROPE_METHODS = ("pi", "ntk", "dynamic", "yarn")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RopeScaling(_Section):
    """RoPE context extension applied to a model trained with plain RoPE, at evaluation only.

    ``factor``: a number (the same at every length), or ``"per_length"`` (the
    default for pi/ntk/yarn): ``max(1, L / train length)`` at evaluation length
    ``L``, or ``finetune.length / train length`` at every length once the variant
    fine-tunes. ``dynamic`` is per length by construction (HF: ``factor * L / L_train
    - (factor - 1)``), so its factor is a number (default 1).
    """

    #: The extension method.
    method: Literal["pi", "ntk", "dynamic", "yarn"]
    #: A fixed factor (>= 1), or `per_length`: `max(1, L / train length)` at each length.
    factor: Union[float, Literal["per_length"], None] = None

    @field_validator("factor")
    @classmethod
    def _positive(cls, factor: float | str | None) -> float | str | None:
        if isinstance(factor, float) and not factor >= 1:
            raise ValueError(f"factor must be >= 1 (a context extension), got {factor}")
        return factor

    @model_validator(mode="after")
    def _dynamic(self) -> "RopeScaling":
        if self.method == "dynamic" and self.factor == "per_length":
            raise ValueError("dynamic NTK already follows the length; give factor a number (HF's factor) or leave it out")
        return self


class Finetune(_Section):
    """Short fine-tuning from the checkpoint at a longer length (Chen et al. 2023), before evaluation."""

    #: Fine-tuning length in tokens.
    length: int = Field(..., ge=1)
    #: Fine-tuning steps.
    steps: int = Field(..., ge=1)
    #: Fine-tuning learning rate (unset: the run's ``train.lr``).
    lr: float | None = Field(None, gt=0)
    #: Sequences per fine-tuning step (unset: the run's `train.batch_size`).
    batch_size: int | None = Field(None, ge=1)
    #: Linear warm-up steps of the fine-tune.
    warmup_steps: int = Field(0, ge=0)


class Variant(_Section):
    """One evaluation-only setting of a trained model; at least one key must be given."""

    #: RoPE context extension at evaluation (PI, NTK, dynamic NTK, YaRN).
    rope_scaling: RopeScaling | None = None
    #: Randomized positions' evaluation mode: `ordinary` (`0..L-1`) or `random`.
    eval_positions: Literal["ordinary", "random"] | None = None
    #: A short fine-tune from the checkpoint at a longer length before evaluating.
    finetune: Finetune | None = None

    @model_validator(mode="after")
    def _something(self) -> "Variant":
        if self.rope_scaling is None and self.eval_positions is None and self.finetune is None:
            raise ValueError("a variant needs at least one of rope_scaling, eval_positions, finetune")
        return self


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


def check_names(variants: dict[str, Variant]) -> dict[str, Variant]:
    """Variant names are identifiers and never ``base`` (the trained model's own rows)."""
    for name in variants:
        if name == BASE:
            raise ValueError(f"variant name {BASE!r} is reserved for the trained model's own evaluation; rename it")
        if not _NAME.match(name):
            raise ValueError(f"variant name {name!r} must start with a letter and use letters, digits, '_' or '-'")
    return variants
