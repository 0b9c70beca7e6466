"""One run's resolved configuration, typed: what a worker trains or measures.

A plan stores each run's config as a plain JSON-able dict (:attr:`RunSpec.config`):
it is hashed into the run id, written to SQLite and checkpoints, and pickled to
process and Ray workers. Where a worker receives that dict, :func:`parse_run`
turns it into a :class:`TrainRun` or :class:`MeasureRun` once; everything below
(training, evaluation, the training step, the criterion, variants, measurement)
reads attributes of these objects. ``parse_run(d).to_dict() == d`` for every
resolved config, so the dict stays the one wire and storage format and run ids
do not change.

Every section forbids unknown keys, so a misspelled key in a stored or hand-made
config is refused with a :class:`~ablate.core.errors.SuiteError` that names it.
Defaults have one source: the suite sections of :mod:`ablate.suite.schema`; the
resolved forms here only narrow types (``causal`` is a bool, evaluation lengths
are a list) and add no defaults of their own.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from ablate.core.errors import SuiteError
from ablate.model.config import ModelConfig
from ablate.suite.load import format_validation_error
from ablate.suite.schema import Dtype, EvalSection, MeasureSection, ModelSection, Section, TrainSection

#: Evaluation lengths as multiples of the train length when a suite gives neither.
DEFAULT_MULTIPLES = (1.0, 2.0, 4.0)


class ComponentSpec(BaseModel):
    """A registered component of a resolved run: its ``name`` and parameters, ``{"name": "rope", "factor": 4}``.

    The registries build it as it is (:meth:`ablate.core.registry.Registry.build`); it dumps back to
    the same dict. Parameters stay as the suite gave them (a wrapper's base is a nested dict).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str

    @property
    def params(self) -> dict[str, Any]:
        """Everything but the name."""
        return dict(self.model_extra or {})


class ResolvedModel(ModelSection):
    """A ``[model]`` section after resolution: components typed, ``causal`` decided."""

    causal: bool
    encoding: ComponentSpec
    pooling: ComponentSpec

    def model_config_for(self, task: Any) -> ModelConfig:
        """The :class:`ModelConfig` of this section for ``task`` (which sets the input and output sizes)."""
        vocabulary = getattr(task, "vocabulary", None)
        return ModelConfig(
            vocab_size=getattr(task, "vocab_size", 1),
            num_classes=task.num_classes,
            input_kind=task.input_kind,
            patch_dim=getattr(task, "patch_dim", 0),
            vocabulary=tuple(vocabulary) if vocabulary else None,
            **self.model_dump(mode="json"),
        )


class ResolvedEval(EvalSection):
    """An ``[eval]`` section after resolution: the sorted, distinct evaluation ``lengths`` (no ``multiples``)."""

    lengths: list[PositiveInt]
    multiples: None = Field(None, exclude=True)

    @classmethod
    def resolve(cls, section: EvalSection, train_length: int) -> "ResolvedEval":
        """``section``'s lengths, or its ``multiples`` (default ``1, 2, 4``) of ``train_length``, rounded."""
        if section.lengths is None:
            lengths = [max(1, round(m * train_length)) for m in section.multiples or DEFAULT_MULTIPLES]
        else:
            lengths = list(section.lengths)
        fields = section.model_dump(exclude={"lengths", "multiples"})
        return cls(lengths=sorted(set(lengths)), **fields)


class TrainLength(Section):
    """A measurement run's ``train`` section: only the train length of the model it measures."""

    length: int = Field(..., ge=1)


class MeasurePoint(Section):
    """A measurement run's ``measure`` section: one mode, batch size and dtype of a ``[measure]`` section."""

    mode: Literal["forward", "train_step"]
    batch_size: PositiveInt
    dtype: Dtype
    device: str
    threads: int | None = Field(..., ge=1)
    lengths: list[PositiveInt] = Field(..., min_length=1)
    memory: bool
    protocol: Literal["rounds", "instructions"]
    min_run_time: float = Field(..., gt=0)
    budget_s: float = Field(..., gt=0)
    precision: float = Field(..., gt=0)
    sample_s: float = Field(..., gt=0)

    @classmethod
    def of(cls, measure: MeasureSection, *, mode: str, batch_size: int, dtype: str) -> "MeasurePoint":
        """The point of ``measure`` at one ``mode``, ``batch_size`` and ``dtype`` (lengths sorted, distinct)."""
        shared = measure.model_dump(include={"device", "threads", "memory", *PROTOCOL_FIELDS})
        return cls(mode=mode, batch_size=batch_size, dtype=dtype, lengths=sorted(set(measure.lengths)), **shared)


#: How a point is measured (``[measure]`` settings every measurement run carries).
PROTOCOL_FIELDS = ("protocol", "min_run_time", "budget_s", "precision", "sample_s")


class _Run(Section):
    seed: int
    task: ComponentSpec
    model: ResolvedModel

    def to_dict(self) -> dict[str, Any]:
        """The plain JSON-able dict this config was parsed from (the plan's, store's and workers' format)."""
        return self.model_dump(mode="json")


class TrainRun(_Run):
    """A train run: train at ``train.length``, evaluate at every ``eval.lengths``."""

    kind: Literal["train"]
    train: TrainSection
    eval: ResolvedEval


class MeasureRun(_Run):
    """A measurement run (``ablate bench``, ``[measure]``): one model measured at every ``measure.lengths``."""

    kind: Literal["measure"]
    train: TrainLength
    measure: MeasurePoint


RunConfig = Union[TrainRun, MeasureRun]

#: The typed form of each run kind.
RUN_KINDS: dict[str, type[TrainRun] | type[MeasureRun]] = {"train": TrainRun, "measure": MeasureRun}


def parse_run(config: dict[str, Any], source: str = "run config") -> RunConfig:
    """The typed form of a resolved run ``config`` dict; :class:`SuiteError` names a wrong or unknown key."""
    kind = config.get("kind")
    schema = RUN_KINDS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise SuiteError(f"{source}: kind: expected one of {sorted(RUN_KINDS)}, got {kind!r}")
    try:
        return schema.model_validate(config)
    except ValidationError as error:
        raise SuiteError(format_validation_error(source, error, schema).replace("\n", "; ")) from None


def parse_train_run(config: dict[str, Any], source: str = "run config") -> TrainRun:
    """:func:`parse_run` for a config that must be a train run."""
    run = parse_run(config, source)
    if not isinstance(run, TrainRun):
        raise SuiteError(f"{source}: expected a train run, got kind {run.kind!r}")
    return run
