"""Speed and peak memory of the model: one forward pass, one training step, per encoding x pooling x length.

Params come from ``suites/nightly.toml`` (see :mod:`benchmarks.common`); each
class is a thin shell over :func:`~benchmarks.common.build_case`, which builds a
combination's model (frozen weights) and batch (frozen tokens) once per process;
every sample times one call on them.

Timing attributes are chosen so the whole nightly suite takes about 10 minutes
on 2 CPU cores: one round (each combination runs in its own process anyway),
one call per sample, 2-10 samples within about a second (a training step at the
longest length with a materialised bias takes ~10 s on one core: one sample).
No warm-up on the CPU, where the first call costs no more than the others at
these sizes; on CUDA a warm-up second keeps kernel selection and FlexAttention
compilation out of the samples.
"""

from __future__ import annotations

from typing import Any

from .common import (
    Case,
    _build_case,
    apply_threads,
    build_case,
    cuda_measured,
    measure_params,
    recipe_version,
    synchronize,
)

try:  # asv's own marker: leave CUDA-only benchmarks undiscovered on machines that measure on the CPU
    from asv_runner.benchmarks.mark import skip_benchmark_if
except ImportError:  # pragma: no cover - asv_runner is absent outside asv
    def skip_benchmark_if(condition: bool) -> Any:
        return lambda func: func

PARAMS, PARAM_NAMES = measure_params()
CUDA = cuda_measured()


class Measured:
    """Shared asv attributes of the measurement benchmarks."""

    params = PARAMS
    param_names = PARAM_NAMES
    rounds = 1  # every combination already runs in its own process; a second round doubles the run
    number = 1  # one call per sample
    repeat = (2, 10, 1.0)  # (min samples, max samples, seconds of sampling)
    warmup_time = 1.0 if CUDA else 0.0
    timeout = 300  # a CUDA FlexAttention compile on the first call can take a while


class Forward(Measured):
    """Inference: ``model(inputs)`` in eval mode under ``torch.inference_mode``."""

    def setup(self, *params: Any) -> None:
        self.case = build_case("forward", *params)

    def time_forward(self, *params: Any) -> None:
        self.case.forward()
        synchronize(self.case.device)

    def peakmem_forward(self, *params: Any) -> None:
        # asv reports the peak RSS of this process: imports, model, batch and one forward pass.
        self.case.forward()
        synchronize(self.case.device)


class TrainStep(Measured):
    """One step of :class:`ablate.run.step.TrainStep`: forward, loss, backward, clipping, scaler, optimiser,
    schedule."""

    repeat = (1, 10, 1.0)
    min_run_count = 1  # a single ~10 s step is sample enough

    def setup(self, *params: Any) -> None:
        self.case = build_case("train_step", *params)

    def time_train_step(self, *params: Any) -> None:
        self.case.train_step()
        synchronize(self.case.device)

    def peakmem_train_step(self, *params: Any) -> None:
        # asv reports the peak RSS of this process: imports, model, batch, optimizer state and one
        # training step; a bias encoding's training memory turning quadratic again shows up here.
        self.case.train_step()
        synchronize(self.case.device)


class CudaMemory(Measured):
    """Peak CUDA memory of one forward pass (``torch.cuda.max_memory_allocated``)."""

    unit = "bytes"

    def setup(self, *params: Any) -> None:
        self.case = build_case("forward", *params)
        if self.case.device.type != "cuda":
            raise NotImplementedError("track_cuda_peak_memory needs CUDA; this machine measures on the CPU")
        self.case.forward()  # warm-up: kernels and FlexAttention compile stay out of the peak
        synchronize(self.case.device)

    @skip_benchmark_if(not CUDA)
    def track_cuda_peak_memory(self, *params: Any) -> int:
        import torch

        torch.cuda.reset_peak_memory_stats(self.case.device)
        self.case.forward()
        synchronize(self.case.device)
        return torch.cuda.max_memory_allocated(self.case.device)


class Threads:
    """The torch intra-op thread count the measurements ran with (``[measure] threads``)."""

    unit = "threads"

    def track_threads(self) -> int:
        return apply_threads()


# asv's version of each benchmark: its recipe in the suite and its code (a change starts a new series).
for _kind, _benchmark in (("forward", Forward), ("train_step", TrainStep), ("forward", CudaMemory)):
    _benchmark.version = recipe_version(_kind, Measured, _benchmark, Case, _build_case)
Threads.version = recipe_version("threads", Threads)
