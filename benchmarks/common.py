"""What every benchmark shares: the nightly suite, the cases it defines, frozen inputs.

The benchmark params are generated from ``suites/nightly.toml`` (or the file in
``$ABLATE_NIGHTLY_SUITE``), never typed here: :func:`measure_params` reads the
grid and the ``[measure]`` section, and :func:`build_case` turns one parameter
combination into a model, a frozen batch and a device, by the library's own
functions (``load_plan``, ``create_task``, ``ablate.run.train.build``). A combination
the suite cannot run (a length an encoding cannot represent, a combination the
suite excludes, a mode it does not list, CUDA on a CPU machine) raises
``NotImplementedError``, which asv records as skipped rather than failed.

The suite is read from the working tree next to this file, like the benchmarks
themselves, so every commit in the history is measured on the same cases.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ablate.core.devices import autocast, resolve_device
from ablate.core.errors import UnsupportedLengthError, UnsupportedRun
from ablate.run.step import TrainStep
from ablate.suite import Plan, load_plan
from ablate.suite.components import label
from ablate.suite.run_config import MeasureRun, TrainRun, parse_run, parse_train_run
from ablate.suite.schema import TrainSection
from ablate.tasks import create_task
from ablate.run.train import build

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SUITE = REPO / "suites" / "nightly.toml"

#: Seed of the measured token batches (model weights use the suite's seed).
INPUT_SEED = 1234

#: Axes every measurement benchmark has, in order; ``batch_size`` and ``dtype``
#: join them only when the suite lists more than one value.
BASE_AXES = ("encoding", "pooling", "length")


def suite_path() -> Path:
    """The suite the benchmarks are generated from."""
    return Path(os.environ.get("ABLATE_NIGHTLY_SUITE") or DEFAULT_SUITE)


def suite_overrides() -> tuple[str, ...]:
    """``--set``-style overrides from ``$ABLATE_NIGHTLY_SET`` (e.g. ``"train.steps=10"``), used by ``--check``."""
    return tuple(shlex.split(os.environ.get("ABLATE_NIGHTLY_SET", "")))


@functools.cache
def load(path: str, overrides: tuple[str, ...] = ()) -> Plan:
    """The expanded :class:`~ablate.suite.Plan` of a suite file (cached per process)."""
    return load_plan(path, list(overrides))


def plan() -> Any:
    """The nightly plan (suite + runs)."""
    return load(str(suite_path()), suite_overrides())


#: The suite sections that define each kind of benchmark (its recipe); the grid only names its params.
RECIPES: dict[str, tuple[str, ...]] = {
    "forward": ("seeds", "task", "model", "measure"),
    "train_step": ("seeds", "task", "model", "measure", "train"),
    "accuracy": ("seeds", "task", "model", "train", "eval"),
    "threads": ("measure",),
}


def recipe_version(kind: str, *code: Any, the_plan: Any | None = None) -> str:
    """asv's ``version`` of a benchmark: a hash of its recipe (:data:`RECIPES`) and of its code.

    asv starts a new series when a benchmark's version changes, and never compares
    numbers across two versions. The recipe is read resolved (defaults filled in),
    so changing what the nightly suite trains or measures starts a new history, as
    does changing the benchmark's own code (``code``: the classes and functions that
    build and run it); a change to the grid only adds or removes parameter combinations.
    """
    suite = (the_plan or plan()).suite.model_dump(mode="json")
    recipe = {section: suite.get(section) for section in RECIPES[kind]}
    text = json.dumps(recipe, sort_keys=True) + "".join(inspect.getsource(part) for part in code)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def grid_labels(suite: Any, axis: str) -> list[str]:
    """Display labels of a grid axis (``rope``, ``learned[max_positions=1024]``), in suite order."""
    values = suite.grid.get(axis)
    if values is None:  # not a grid axis: the single value of the model section
        values = [getattr(suite.model, axis)]
    return [label(value) for value in values]


def measure_params(the_plan: Any | None = None) -> tuple[list[list[Any]], list[str]]:
    """``(params, param_names)`` of the speed/memory benchmarks: encoding x pooling x length (x batch x dtype)."""
    suite = (the_plan or plan()).suite
    if suite.measure is None:
        raise ValueError(f"{suite_path()}: the nightly suite needs a [measure] section")
    measure = suite.measure
    params: list[list[Any]] = [grid_labels(suite, "encoding"), grid_labels(suite, "pooling"), sorted(set(measure.lengths))]
    names = list(BASE_AXES)
    if len(measure.batch_sizes) > 1:
        params.append(list(measure.batch_sizes))
        names.append("batch_size")
    if len(measure.dtypes) > 1:
        params.append(list(measure.dtypes))
        names.append("dtype")
    return params, names


def accuracy_params(the_plan: Any | None = None) -> tuple[list[list[Any]], list[str]]:
    """``(params, param_names)`` of ``track_accuracy``: encoding x pooling x evaluation length."""
    the_plan = the_plan or plan()
    suite = the_plan.suite
    lengths = sorted({length for run in the_plan.train_runs() for length in run.config["eval"]["lengths"]})
    return [grid_labels(suite, "encoding"), grid_labels(suite, "pooling"), lengths], ["encoding", "pooling", "eval_length"]


@dataclass(frozen=True)
class AccuracyRun:
    """A train run of the suite, its config typed (what :func:`ablate.run.train.train_and_evaluate` takes)."""

    run_id: str
    config: TrainRun


def accuracy_runs(the_plan: Any | None = None) -> dict[tuple[str, str], AccuracyRun]:
    """The suite's train runs by ``(encoding, pooling)`` label (its first seed)."""
    runs: dict[tuple[str, str], AccuracyRun] = {}
    for run in (the_plan or plan()).train_runs():
        config = parse_train_run(run.config, f"run {run.run_id}")
        key = (label(config.model.encoding), label(config.model.pooling))
        if key not in runs:
            runs[key] = AccuracyRun(run.run_id, config)
    return runs


def measure_device(the_plan: Any | None = None) -> torch.device:
    """Where the suite's measurements run on this machine; CUDA on a machine without it is a skip."""
    measure = (the_plan or plan()).suite.measure
    name = measure.device if measure is not None else "cpu"
    try:
        return resolve_device(name)
    except UnsupportedRun as error:
        raise NotImplementedError(f"the suite measures on {name!r}: {error}") from None


def cuda_measured() -> bool:
    """Whether this machine measures on CUDA (decides at discovery whether CUDA-only benchmarks exist)."""
    try:
        return measure_device().type == "cuda"
    except NotImplementedError:
        return False


def apply_threads(the_plan: Any | None = None) -> int:
    """Set torch's intra-op threads from ``[measure] threads`` (if given); returns the count in use."""
    measure = (the_plan or plan()).suite.measure
    if measure is not None and measure.threads is not None and torch.get_num_threads() != measure.threads:
        torch.set_num_threads(measure.threads)
    return torch.get_num_threads()


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work, so a timed region ends when the GPU is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Case:
    """One measured combination: a model, its frozen batch, where it runs and how."""

    model: Any
    batch: Any
    task: Any
    device: torch.device
    dtype: str
    #: The suite's ``train`` section at the case's ``dtype``: what the training step runs with.
    train: TrainSection
    trainer: TrainStep | None = None  # made by the first train step, kept with the model it updates

    def forward(self) -> Any:
        """One inference forward pass (eval mode, no autograd)."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            return self.model(self.batch.inputs, self.batch.padding_mask)

    def train_step(self) -> float:
        """One step of :class:`ablate.run.step.TrainStep`, the step suites train with, on the frozen batch."""
        if self.trainer is None:
            self.trainer = TrainStep(self.model, kind=self.task.kind, train=self.train, device=self.device)
        return self.trainer(self.batch)


def measure_run(the_plan: Any, encoding: str, pooling: str, mode: str, batch_size: int, dtype: str) -> Any:
    """The plan's measure run for one combination; ``NotImplementedError`` if the suite has none."""
    for run in the_plan.measure_runs():
        model, measure = run.config["model"], run.config["measure"]
        if (label(model["encoding"]) == encoding and label(model["pooling"]) == pooling and measure["mode"] == mode
                and measure["batch_size"] == batch_size and measure["dtype"] == dtype):
            return run
    raise NotImplementedError(f"the nightly suite has no {mode} run for encoding={encoding} pooling={pooling} "
                              f"batch_size={batch_size} dtype={dtype} (excluded, or not in its grid)")


#: Built cases by (plan, mode, params); the plan is kept with its cases so its id stays unique.
_CASES: dict[tuple[Any, ...], tuple[Any, Case]] = {}


def build_case(mode: str, *params: Any, the_plan: Any | None = None) -> Case:
    """The model and frozen batch for one benchmark parameter combination, built once per process.

    asv calls ``setup`` again before every sample; the case is reused, so the
    samples time the same model on the same batch (and CUDA kernels or
    FlexAttention compiled in the warm-up stay compiled).

    Args:
        mode: ``"forward"`` or ``"train_step"`` (a ``[measure] modes`` entry).
        params: values in the order of :func:`measure_params`' names.

    Raises:
        NotImplementedError: the suite does not measure this combination here
            (unsupported length, excluded combination, unlisted mode, no CUDA).
    """
    the_plan = the_plan or plan()
    key = (id(the_plan), mode, *params)
    if key not in _CASES:
        _CASES[key] = (the_plan, _build_case(mode, params, the_plan))
    return _CASES[key][1]


def _build_case(mode: str, params: tuple[Any, ...], the_plan: Any) -> Case:
    _, names = measure_params(the_plan)
    values = dict(zip(names, params))
    measure = the_plan.suite.measure
    if mode not in measure.modes:
        raise NotImplementedError(f"mode {mode!r} is not in the suite's [measure] modes {measure.modes}")
    batch_size = values.get("batch_size", measure.batch_sizes[0])
    dtype = values.get("dtype", measure.dtypes[0])
    run = measure_run(the_plan, values["encoding"], values["pooling"], mode, batch_size, dtype)
    device = measure_device(the_plan)
    if dtype == "float16" and device.type != "cuda":
        raise NotImplementedError("float16 is measured on CUDA only")
    apply_threads(the_plan)
    measured = parse_run(run.config, f"run {run.run_id}")
    if not isinstance(measured, MeasureRun):
        raise NotImplementedError(f"run {run.run_id} is not a measurement run")
    # The optimiser settings of the suite's train section (the measure run keeps only the train length).
    train_run = next(r for r in the_plan.train_runs() if r.config["model"] == run.config["model"])
    train = parse_train_run(train_run.config, f"run {train_run.run_id}").train.model_copy(update={"dtype": dtype})
    task = create_task(measured.task)
    torch.manual_seed(measured.seed)  # frozen weights
    model = build(measured, task)
    length = int(values["length"])
    try:
        model.check_length(length)
    except UnsupportedLengthError as error:
        raise NotImplementedError(f"{values['encoding']} at length {length}: {error}") from None
    generator = torch.Generator().manual_seed(INPUT_SEED)  # frozen tokens
    batch = task.sample(generator, batch_size, length, split="test").to(device)
    model = model.to(device).train(mode == "train_step")
    return Case(model=model, batch=batch, task=task, device=device, dtype=dtype, train=train)
