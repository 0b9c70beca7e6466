"""The suite-file schema (pydantic): what a ``suites/*.toml`` may say, with defaults.

Every section forbids unknown keys, so a typo is an error that names the key
(with a suggestion) instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

#: A registered component: a name, or a table ``{name = "...", param = ...}``.
Component = Union[str, dict[str, Any]]

Dtype = Literal["float32", "bfloat16", "float16"]


class Section(BaseModel):
    """Base: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class ModelSection(Section):
    """Model sizes and the two components under study."""

    d_model: int = Field(64, ge=1)
    num_heads: int = Field(4, ge=1)
    num_layers: int = Field(2, ge=1)
    d_ff: int | None = Field(None, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    #: ``"auto"`` takes the task's default (causal decoder for token-level tasks).
    causal: bool | Literal["auto"] = "auto"
    norm_first: bool = True
    encoding: Component = "none"
    pooling: Component = "mean"
    attention_backend: Literal["auto", "sdpa", "flex"] = "auto"
    embedding_path: str | None = None
    freeze_embeddings: bool = False

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelSection":
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        return self


class TrainSection(Section):
    """Training: steps, batches, optimiser, schedule, precision and device."""

    steps: int = Field(200, ge=0)
    batch_size: int = Field(32, ge=1)
    #: The train length (sequence length seen in training); alias axis ``train_length``.
    length: int = Field(32, ge=1)
    #: Train on lengths drawn uniformly from ``[min_length, length]`` each step.
    min_length: int | None = Field(None, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.98)
    momentum: float = Field(0.9, ge=0)
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    dtype: Dtype = "float32"
    device: str = "cpu"
    #: Stop and record ``diverged`` when the training loss exceeds this or is not finite.
    diverge_loss: float = Field(1e4, gt=0)

    @model_validator(mode="after")
    def _lengths(self) -> "TrainSection":
        if self.min_length is not None and self.min_length > self.length:
            raise ValueError(f"min_length={self.min_length} exceeds length={self.length}")
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        return self


class EvalSection(Section):
    """Evaluation lengths and sample sizes.

    Give ``lengths`` explicitly, or ``multiples`` of the train length (default
    ``[1, 2, 4]``). For language-modelling tasks the same final ``score_last``
    tokens are scored at every length (default: the train length), with more
    context in front of them as the length grows, so the effect of unseen
    positions is separated from the benefit of longer context.
    """

    lengths: list[int] | None = None
    multiples: list[float] | None = None
    batches: int = Field(4, ge=1)
    batch_size: int = Field(64, ge=1)
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

    lengths: list[PositiveInt] = Field(default_factory=lambda: [128, 512], min_length=1)
    batch_sizes: list[PositiveInt] = Field(default_factory=lambda: [8], min_length=1)
    modes: list[Literal["forward", "train_step"]] = Field(default_factory=lambda: ["forward"])
    dtypes: list[Dtype] = Field(default_factory=lambda: ["float32"])
    device: str = "cpu"
    threads: int | None = Field(None, ge=1)
    memory: bool = True
    min_run_time: float = Field(0.5, gt=0)
    #: Independent repetitions of every measurement, stored as seeds ``0..repeats-1`` and run
    #: round-robin (all models once, then all again), so machine drift hits every model alike
    #: and ratios can be paired by repetition, with a confidence interval over repetitions.
    repeats: int = Field(1, ge=1)
    #: Also run the measurements as part of ``ablate run`` (after the training runs).
    with_run: bool = False


class ReportSection(Section):
    """Defaults for ``ablate report``."""

    main_metric: str | None = None
    baseline: dict[str, Any] = Field(default_factory=dict)


class SuiteFile(Section):
    """A whole suite file after ``extends`` is merged and ``--set`` applied."""

    name: str
    description: str = ""
    extends: str | None = None
    seeds: list[int] = Field(default_factory=lambda: [0])
    task: Component = "parity"
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    include: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    measure: MeasureSection | None = None
    report: ReportSection = Field(default_factory=ReportSection)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
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
