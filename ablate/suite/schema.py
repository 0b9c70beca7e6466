"""The suite-file schema (pydantic): what a ``suites/*.toml`` may say, with defaults.

Every section forbids unknown keys, so a typo is an error that names the key
(with a suggestion) instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from ablate.core.devices import check_device_name
from ablate.core.dims import head_dim
from ablate.core.metrics import METRICS, metric
from ablate.model.config import ModelConfig
from ablate.suite.variant_schema import Variant, check_names

#: The model's own defaults: a suite's ``[model]`` section defaults to what ``ModelConfig`` does.
MODEL_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ModelConfig)}

#: A registered component: a name, or a table ``{name = "...", param = ...}``.
Component = Union[str, dict[str, Any]]

Dtype = Literal["float32", "bfloat16", "float16"]


class Section(BaseModel):
    """Base: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class ModelSection(Section):
    """Model sizes and the two components under study."""

    #: Width of the model.
    d_model: int = Field(MODEL_DEFAULTS["d_model"], ge=1)
    #: Attention heads; must divide `d_model`.
    num_heads: int = Field(MODEL_DEFAULTS["num_heads"], ge=1)
    #: Transformer blocks.
    num_layers: int = Field(MODEL_DEFAULTS["num_layers"], ge=1)
    #: Feed-forward width (unset: `4 * d_model`).
    d_ff: int | None = Field(MODEL_DEFAULTS["d_ff"], ge=1)
    #: Dropout on embeddings, attention output and feed-forward output.
    dropout: float = Field(MODEL_DEFAULTS["dropout"], ge=0.0, lt=1.0)
    #: ``"auto"`` takes the task's default (causal decoder for token-level tasks).
    causal: bool | Literal["auto"] = "auto"
    #: Pre-LayerNorm (GPT-2, nanoGPT) when true, post-LayerNorm (original Transformer, BERT) when false.
    norm_first: bool = MODEL_DEFAULTS["norm_first"]
    #: The positional encoding: a registered name or `{ name = ..., params }` (`ablate list`).
    encoding: Component = MODEL_DEFAULTS["encoding"]
    #: The pooling: a registered name or `{ name = ..., params }`; `"mean+max"` concatenates;
    #: `none` keeps per-token outputs.
    pooling: Component = MODEL_DEFAULTS["pooling"]
    #: `auto` (FlexAttention for bias encodings on CUDA, SDPA otherwise), force `sdpa` / `flex`, or `reference`
    #: (the plain path every fast one is checked against).
    attention_backend: Literal["auto", "sdpa", "flex", "reference"] = MODEL_DEFAULTS["attention_backend"]
    #: Optional word2vec/GloVe text file initialising the token embedding.
    embedding_path: str | None = MODEL_DEFAULTS["embedding_path"]
    #: Keep loaded embeddings fixed during training.
    freeze_embeddings: bool = MODEL_DEFAULTS["freeze_embeddings"]
    #: Input-embedding multiplier, the same for every encoding: ``"sqrt_d"`` or a number (docs/conventions.md).
    embedding_scale: Union[Literal["sqrt_d"], float] = MODEL_DEFAULTS["embedding_scale"]
    #: Normal standard deviation of the token embedding's initialisation, the same for every encoding.
    embedding_init_std: float = Field(MODEL_DEFAULTS["embedding_init_std"], gt=0)

    @field_validator("embedding_scale")
    @classmethod
    def _positive_scale(cls, value: Any) -> Any:
        if not isinstance(value, str) and value <= 0:
            raise ValueError(f"must be 'sqrt_d' or a positive number, got {value!r}")
        return value

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelSection":
        head_dim(self.d_model, self.num_heads)
        return self


class UntilSection(Section):
    """Training to a criterion (:mod:`ablate.run.criterion`): check every ``every`` steps, stop at ``target``
    or after ``patience`` checks without improvement; ``train.steps`` stays the cap."""

    #: Validation metric checked (unset: the task's accuracy, or loss for language models).
    metric: str | None = None
    #: Stop as soon as the metric reaches this (unset: no target).
    target: float | None = None
    #: Stop after this many checks without improvement (unset: never).
    patience: int | None = Field(None, ge=1)
    #: No stop for lack of improvement before this step.
    min_steps: int = Field(0, ge=0)
    #: Steps between checks (unset: `steps / 10`).
    every: int | None = Field(None, ge=1)
    #: Held-out batches per check, the same batches every time.
    batches: int = Field(2, ge=1)
    #: An improvement must exceed this to count.
    min_delta: float = Field(0.0, ge=0.0)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str | None) -> str | None:
        if name is not None:
            metric(name)  # unknown names raise with "did you mean"
        return name


class TrainSection(Section):
    """Training: steps, batches, optimiser, schedule, precision and device."""

    #: The cap on optimiser steps (training may stop earlier with `until`).
    steps: int = Field(200, ge=0)
    #: Sequences per training step.
    batch_size: int = Field(32, ge=1)
    #: The train length (sequence length seen in training); alias axis ``train_length``.
    length: int = Field(32, ge=1)
    #: Train on lengths drawn uniformly from ``[min_length, length]`` each step.
    min_length: int | None = Field(None, ge=1)
    #: The optimiser, the same for every encoding.
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    #: Peak learning rate.
    lr: float = Field(1e-3, gt=0)
    #: Decoupled weight decay (AdamW, SGD).
    weight_decay: float = Field(0.01, ge=0)
    #: Adam's betas.
    betas: tuple[float, float] = (0.9, 0.98)
    #: SGD's momentum.
    momentum: float = Field(0.9, ge=0)
    #: Learning-rate schedule after warm-up.
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    #: Linear warm-up steps.
    warmup_steps: int = Field(0, ge=0)
    #: Gradient-norm clip (unset: none).
    grad_clip: float | None = Field(1.0, gt=0)
    #: `float32`, or mixed precision with float32 parameters (`float16` on CUDA only).
    dtype: Dtype = "float32"
    #: ``auto`` (CUDA when this machine has it, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
    #: each run records the one it used.
    device: str = "auto"
    #: Stop and record ``diverged`` when the training loss exceeds this or is not finite.
    diverge_loss: float = Field(1e4, gt=0)
    #: Stop early at a validation target or plateau (``steps`` stays the cap); see :mod:`ablate.run.criterion`.
    until: UntilSection | None = None

    @property
    def criterion(self) -> UntilSection:
        """``until``, or its defaults when not given (nothing stops early; the validation batches still count)."""
        return self.until if self.until is not None else UntilSection()

    @model_validator(mode="after")
    def _lengths(self) -> "TrainSection":
        if self.min_length is not None and self.min_length > self.length:
            raise ValueError(f"min_length={self.min_length} exceeds length={self.length}")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, name: str) -> str:
        return check_device_name(name)


class EvalSection(Section):
    """Evaluation lengths and sample sizes.

    Give ``lengths`` explicitly, or ``multiples`` of the train length (default
    ``[1, 2, 4]``). For language-modelling tasks the same final ``score_last``
    tokens are scored at every length (default: the train length), with more
    context in front of them as the length grows, so the effect of unseen
    positions is separated from the benefit of longer context.
    """

    #: Evaluation lengths in tokens (give this or `multiples`).
    lengths: list[int] | None = None
    #: Evaluation lengths as multiples of the train length (default `[1, 2, 4]`).
    multiples: list[float] | None = None
    #: Evaluation batches per length.
    batches: int = Field(4, ge=1)
    #: Sequences per evaluation batch.
    batch_size: int = Field(64, ge=1)
    #: Language models: the final tokens scored at every length (unset: the train length).
    score_last: int | None = Field(None, ge=1)

    @field_validator("lengths", "multiples")
    @classmethod
    def _positive(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and (not values or min(values) <= 0):
            raise ValueError("needs a non-empty list of positive numbers")
        return values

    @model_validator(mode="after")
    def _one_of(self) -> "EvalSection":
        if self.lengths is not None and self.multiples is not None:
            raise ValueError("give either 'lengths' or 'multiples', not both")
        return self


class MeasureSection(Section):
    """Throughput and peak-memory measurements (``ablate bench``)."""

    #: Sequence lengths measured.
    lengths: list[PositiveInt] = Field(default_factory=lambda: [128, 512], min_length=1)
    #: Batch sizes measured.
    batch_sizes: list[PositiveInt] = Field(default_factory=lambda: [8], min_length=1)
    #: `forward` (inference) and/or `train_step` (forward, backward and optimiser step).
    modes: list[Literal["forward", "train_step"]] = Field(default_factory=lambda: ["forward"])
    #: Precisions measured.
    dtypes: list[Dtype] = Field(default_factory=lambda: ["float32"])
    #: ``auto`` (CUDA when this machine has it, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    device: str = "auto"
    #: Torch threads while measuring (unset: torch's default).
    threads: int | None = Field(None, ge=1)
    #: Also measure peak memory.
    memory: bool = True
    #: How a cost is measured: ``rounds`` (wall time in interleaved rounds across the suite's models)
    #: or ``instructions`` (instruction counts under callgrind: deterministic, one thread, slow).
    protocol: Literal["rounds", "instructions"] = "rounds"
    #: Each model is timed at least this many seconds (summed over rounds) before the rounds may stop.
    min_run_time: float = Field(0.5, gt=0)
    #: Seconds of interleaved rounds per length before they stop, tight or not.
    budget_s: float = Field(20.0, gt=0)
    #: The rounds stop once every ratio's interval is narrower than ``1 + precision`` (high / low).
    precision: float = Field(0.05, gt=0)
    #: Calls are batched so that one timed sample lasts at least this many seconds.
    sample_s: float = Field(0.02, gt=0)

    @field_validator("device")
    @classmethod
    def _device(cls, name: str) -> str:
        return check_device_name(name)
    #: Independent repetitions of every measurement, stored as seeds ``0..repeats-1`` and run
    #: round-robin (all models once, then all again), so machine drift hits every model alike
    #: and ratios can be paired by repetition, with a confidence interval over repetitions.
    repeats: int = Field(1, ge=1)
    #: Also run the measurements as part of ``ablate run`` (after the training runs).
    with_run: bool = False


class ReportSection(Section):
    """Defaults for ``ablate report`` and the decisions of adaptive seeds."""

    #: Headline metric of the report (unset: accuracy-like, else loss-like).
    main_metric: str | None = None
    #: `{ axis = value }`: what every comparison is against (default: each axis' first value).
    baseline: dict[str, Any] = Field(default_factory=dict)
    #: Family-wise error rate of the comparisons (Bonferroni over the family of judged comparisons).
    alpha: float = Field(0.05, gt=0, lt=1)
    #: Equivalence margins by metric, in the metric's scale: points of accuracy (0.02), a relative
    #: amount of a ratio (0.05 = 5% of perplexity, time or memory). Unlisted metrics use their default.
    margins: dict[str, float] = Field(default_factory=dict)
    #: Train-length value a seed must reach to count as having learned (default: 0.9 for accuracies).
    learned_threshold: float | None = None

    @field_validator("margins")
    @classmethod
    def _known_margins(cls, margins: dict[str, float]) -> dict[str, float]:
        for name, value in margins.items():
            metric(name)  # an unknown metric gets the did-you-mean message
            if not value > 0:
                raise ValueError(f"margin of {name!r} must be > 0, got {value}")
            if METRICS[name].bounds is not None and value >= METRICS[name].bounds[1] - METRICS[name].bounds[0]:
                raise ValueError(f"margin of {name!r} ({value}) is as wide as the metric's whole range")
        return margins


class SeedRange(Section):
    """Adaptive seeds: ``min`` for every cell, then ``step`` more at a time for undecided cells, up to ``max``."""

    #: Seeds every cell runs.
    min: int = Field(3, ge=2)
    #: Seeds a cell may reach.
    max: int = Field(12, ge=2)
    #: Seeds added at a time to cells in undecided comparisons (unset: `min`).
    step: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _order(self) -> "SeedRange":
        if self.max < self.min:
            raise ValueError(f"max={self.max} is below min={self.min}")
        return self


def seed_values(seeds: "list[int] | SeedRange") -> list[int]:
    """Every seed a suite may use: the list, or ``0 .. max - 1`` for a range."""
    return list(range(seeds.max)) if isinstance(seeds, SeedRange) else list(seeds)


class SuiteFile(Section):
    """A whole suite file after ``extends`` is merged and ``--set`` applied."""

    #: The suite's name: its results go to `results/<name>/`.
    name: str
    #: One line shown at the top of the report.
    description: str = ""
    #: Another suite file (relative to this one) whose keys this file overrides.
    extends: str | None = None
    #: A list of seeds, or ``{min = 3, max = 12, step = 3}`` for adaptive seeds (:mod:`ablate.run.adaptive`).
    seeds: Union[list[int], SeedRange] = Field(default_factory=lambda: [0])
    #: The task: a registered name or `{ name = ..., params }` (`ablate list` shows the tasks).
    task: Component = "parity"
    #: Model sizes and the components under study.
    model: ModelSection = Field(default_factory=ModelSection)
    #: Training budget, optimiser and device.
    train: TrainSection = Field(default_factory=TrainSection)
    #: Evaluation lengths and sample sizes.
    eval: EvalSection = Field(default_factory=EvalSection)
    #: Axes to vary: a config path (or short name) -> list of values; every combination is a run.
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    #: Extra combinations added to the grid (each a table of path -> value).
    include: list[dict[str, Any]] = Field(default_factory=list)
    #: Combinations removed from the grid (each a table of path -> value; all must match).
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    #: Throughput and peak-memory measurements (`ablate bench`, or with `ablate run` when `with_run`).
    measure: MeasureSection | None = None
    #: Defaults for the report and for the verdicts of adaptive seeds.
    report: ReportSection = Field(default_factory=ReportSection)
    #: Evaluation-only variants of every trained model (:mod:`ablate.run.variants`); not part of run ids.
    variants: dict[str, Variant] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, variants: dict[str, Variant]) -> dict[str, Variant]:
        return check_names(variants)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: "list[int] | SeedRange") -> "list[int] | SeedRange":
        if isinstance(seeds, SeedRange):
            return seeds
        if not seeds:
            raise ValueError("needs at least one seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}")
        return seeds

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for axis, values in grid.items():
            if not values:
                raise ValueError(f"grid axis {axis!r} has no values")
        return grid


#: Short axis names and the config path they stand for.
AXIS_ALIASES: dict[str, str] = {
    "encoding": "model.encoding",
    "pooling": "model.pooling",
    "d_model": "model.d_model",
    "layers": "model.num_layers",
    "num_layers": "model.num_layers",
    "heads": "model.num_heads",
    "num_heads": "model.num_heads",
    "causal": "model.causal",
    "train_length": "train.length",
    "steps": "train.steps",
    "lr": "train.lr",
    "dtype": "train.dtype",
    "device": "train.device",
    "task": "task",
}

SECTIONS: dict[str, type[Section]] = {
    "model": ModelSection,
    "train": TrainSection,
    "eval": EvalSection,
}


def known_paths() -> list[str]:
    """Every config path a grid axis, include/exclude rule or ``--set`` may name."""
    paths = list(AXIS_ALIASES) + ["task"]
    for section, schema in SECTIONS.items():
        paths += [f"{section}.{field}" for field in schema.model_fields]
    return sorted(set(paths))
