"""The measured work: a model, a frozen batch and one step (a forward pass or a training step).

A :class:`Workload` is built the same way in the measuring process and in the
spawned process that measures CPU memory, from plain picklable arguments
(:class:`WorkloadSpec`), so both measure exactly the same thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ablate.core.devices import DTYPES, autocast, check_dtype
from ablate.model.transformer import ModelConfig, TransformerModel
from ablate.run.step import TrainStep
from ablate.suite.schema import TrainSection
from ablate.tasks.base import Batch

Mode = Literal["forward", "train_step"]
MODES: tuple[str, ...] = ("forward", "train_step")


def check_arguments(mode: str, dtype: str, device: torch.device, batch_size: int, length: int) -> None:
    """``ValueError`` with a helpful message for a measurement that cannot be asked for."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    check_dtype(device, dtype)
    if batch_size < 1 or length < 1:
        raise ValueError(f"batch_size and length must be >= 1, got batch_size={batch_size}, length={length}")


def as_model_config(config: ModelConfig | Mapping[str, Any]) -> ModelConfig:
    """A :class:`ModelConfig` from itself or its plain-dict form."""
    return config if isinstance(config, ModelConfig) else ModelConfig(**dict(config))


@dataclass(frozen=True)
class WorkloadSpec:
    """Picklable description of one measured step (crosses into a spawned process)."""

    config: dict[str, Any]
    mode: str
    batch_size: int
    length: int
    dtype: str
    device: str
    seed: int = 0
    #: The suite's ``train`` section as a dict (optimiser, clipping, schedule); missing keys take
    #: :class:`~ablate.suite.schema.TrainSection`'s defaults, unknown keys are refused.
    train: dict[str, Any] | None = None


class Workload:
    """A model, its frozen inputs and targets, and the step to measure.

    ``forward``: ``model.eval()``, ``torch.inference_mode()``, logits of the batch.
    ``train_step``: one call of the training step suites train with
    (:class:`~ablate.run.step.TrainStep`: forward, loss, backward, clipping, scaler,
    optimiser, schedule), with the spec's ``train`` settings and ``dtype``.
    Inputs and weights are frozen by ``seed``. The optimizer is created here but
    its state (two moments per parameter) is created lazily by the first step,
    so it is part of what the step allocates.
    """

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.device = torch.device(spec.device)
        config = as_model_config(spec.config)
        self.config = config
        torch.manual_seed(spec.seed)
        self.model = TransformerModel(config).to(self.device)
        generator = torch.Generator().manual_seed(spec.seed + 1)
        shape = (spec.batch_size, spec.length)
        if config.input_kind == "patches":
            inputs = torch.randn(*shape, config.patch_dim, generator=generator)  # (B, L, P)
        else:
            inputs = torch.randint(config.vocab_size, shape, generator=generator)  # (B, L)
        self.inputs = inputs.to(self.device)
        # (B, L) class ids; a pooled model's targets are the first column (B,)
        self.targets = torch.randint(config.num_classes, shape, generator=generator).to(self.device)
        self.trainer: TrainStep | None = None
        if spec.mode == "train_step":
            token_level = self.model.pooling.token_level
            kind = "sequence" if token_level else "classification"
            self.batch = Batch(self.inputs, self.targets if token_level else self.targets[:, 0])
            train = TrainSection.model_validate({**(spec.train or {}), "dtype": spec.dtype})
            self.trainer = TrainStep(self.model, kind=kind, train=train, device=self.device)
            self.step = self.train_step
        else:
            self.model.eval()
            self.step = self.forward

    def forward(self) -> torch.Tensor:
        """One inference forward pass; returns the logits."""
        with torch.inference_mode(), autocast(self.device, self.spec.dtype):
            return self.model(self.inputs)

    def train_step(self) -> float:
        """One training step on the frozen batch; returns its loss."""
        if self.trainer is None:
            raise ValueError(f"a {self.spec.mode!r} workload has no training step")
        return self.trainer(self.batch)


def warm_up(spec: WorkloadSpec, make: Any = None) -> None:
    """Run the spec's step once on a throwaway instance of the same model and batch shape, then drop it.

    This pages in library code and creates one-off state that belongs to the
    shapes, not to the measured instance: JIT-compiled CPU kernels (oneDNN
    compiles bfloat16 kernels per shape), thread pools, cuBLAS
    workspaces, compiled FlexAttention kernels. Without it they would count as the
    first measured step's memory. The measured instance is built afterwards, so
    its own gradients and optimizer state are still created -- and counted -- by
    its first step.
    """
    workload = (make or Workload)(spec)
    workload.step()


def build_step(spec: WorkloadSpec) -> Any:
    """The spec's step callable (module level, so a spawned process can be handed it by name)."""
    return Workload(spec).step


def spec_of(config: ModelConfig | Mapping[str, Any], **fields: Any) -> WorkloadSpec:
    """A :class:`WorkloadSpec` whose config is a plain dict (picklable, ``ModelConfig(**d)`` rebuilds it)."""
    plain = dataclasses.asdict(config) if isinstance(config, ModelConfig) else dict(config)
    return WorkloadSpec(config=plain, **fields)
