"""The settings a variant may combine, one class each, applied to a restored model.

A setting can refuse a model (:meth:`Setting.unsupported`), change it for the
whole variant (:meth:`Setting.prepare`, undone when the variant's stack closes;
a fine-tune trains here and returns its loss row) and change it per evaluation
length (:meth:`Setting.at_length`). Settings apply in the order of
:class:`~ablate.suite.variant_schema.Variant`'s fields: RoPE scaling and evaluation
positions first, so a fine-tune trains under them.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Protocol

import torch

from ablate.model.encodings.randomized import RandomizedPositions
from ablate.core.registry import Registry
from ablate.results.store import MetricRow
from ablate.suite.run_config import TrainRun
from ablate.suite.schema import TrainSection
from ablate.tasks.base import Task
from ablate.run.train import train_model
from ablate.run.variants import rope
from ablate.suite.variant_schema import Variant


@dataclass
class VariantContext:
    """What a setting needs besides the model: the run's resolved config, the variant, task and device."""

    config: TrainRun
    variant: Variant
    task: Task
    device: torch.device

    @property
    def train_length(self) -> int:
        return self.config.train.length

    @property
    def finetune_length(self) -> int | None:
        return self.variant.finetune.length if self.variant.finetune is not None else None


class Setting(Protocol):
    def unsupported(self, model: torch.nn.Module, context: VariantContext) -> str | None: ...

    def prepare(self, model: torch.nn.Module, context: VariantContext, stack: ExitStack) -> list[MetricRow]: ...

    def at_length(self, model: torch.nn.Module, context: VariantContext, length: int, stack: ExitStack) -> None: ...


SETTINGS: Registry[Setting] = Registry("variant setting")


@SETTINGS.register("rope_scaling")
class RopeScalingSetting:
    """PI / NTK / dynamic NTK / YaRN frequencies while the variant runs (:mod:`ablate.run.variants.rope`)."""

    def unsupported(self, model: torch.nn.Module, context: VariantContext) -> str | None:
        return rope.unsupported_reason(model)

    def _scale(self, model: torch.nn.Module, context: VariantContext, length: int) -> None:
        spec = context.variant.rope_scaling
        if spec is None:  # only built for variants that set it
            return
        factor = rope.resolve_factor(spec.factor, spec.method, context.train_length, length, context.finetune_length)
        rope.scale_model(model, spec.method, factor, context.train_length, length)

    def prepare(self, model: torch.nn.Module, context: VariantContext, stack: ExitStack) -> list[MetricRow]:
        stack.enter_context(rope.restored_frequencies(model))
        self._scale(model, context, context.finetune_length or context.train_length)  # what a fine-tune sees
        return []

    def at_length(self, model: torch.nn.Module, context: VariantContext, length: int, stack: ExitStack) -> None:
        self._scale(model, context, length)


@SETTINGS.register("eval_positions")
class EvalPositionsSetting:
    """Randomized positions' evaluation mode (``ordinary``: ``0..L-1``; ``random``: sampled as in training)."""

    def unsupported(self, model: torch.nn.Module, context: VariantContext) -> str | None:
        if not any(isinstance(m, RandomizedPositions) for m in model.modules()):
            return "eval_positions needs a 'randomized' encoding"
        return None

    def prepare(self, model: torch.nn.Module, context: VariantContext, stack: ExitStack) -> list[MetricRow]:
        stack.enter_context(_eval_positions(model, str(context.variant.eval_positions)))
        return []

    def at_length(self, model: torch.nn.Module, context: VariantContext, length: int, stack: ExitStack) -> None:
        pass


@contextmanager
def _eval_positions(model: torch.nn.Module, mode: str) -> Iterator[None]:
    wrappers = [m for m in model.modules() if isinstance(m, RandomizedPositions)]
    saved = [m.eval_positions for m in wrappers]
    try:
        for module in wrappers:
            module.eval_positions = mode
        yield
    finally:
        for module, value in zip(wrappers, saved):
            module.eval_positions = value


@SETTINGS.register("finetune")
class FinetuneSetting:
    """Train ``steps`` more steps at ``length`` from the checkpoint (fresh optimiser), then evaluate."""

    def unsupported(self, model: torch.nn.Module, context: VariantContext) -> str | None:
        return None

    def prepare(self, model: torch.nn.Module, context: VariantContext, stack: ExitStack) -> list[MetricRow]:
        spec = context.variant.finetune
        if spec is None:  # only built for variants that set it
            return []
        trained = context.config.train
        train = TrainSection.model_validate({
            **trained.model_dump(), "length": spec.length, "steps": spec.steps, "min_length": None,
            "lr": spec.lr or trained.lr, "warmup_steps": spec.warmup_steps,
            "batch_size": spec.batch_size or trained.batch_size})
        # Another seed than training's, so the fine-tune does not replay its first batches.
        config = context.config.model_copy(update={"train": train, "seed": finetune_seed(context.config.seed)})
        model.encoding.check_length(spec.length + (1 if getattr(model, "cls_token", None) is not None else 0))
        loss = train_model(model, context.task, config, context.device)
        return [MetricRow("finetune_loss", spec.length, loss)]

    def at_length(self, model: torch.nn.Module, context: VariantContext, length: int, stack: ExitStack) -> None:
        pass


def finetune_seed(seed: int) -> int:
    """The data seed of a fine-tune from a run trained with ``seed``."""
    return (seed * 7_919 + 104_729) % (2**31)


def active(variant: Variant) -> list[tuple[str, Setting]]:
    """The variant's settings in application order (the schema's field order)."""
    return [(key, SETTINGS.build(key)) for key in Variant.model_fields if getattr(variant, key) is not None]
