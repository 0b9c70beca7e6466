"""The variant stage of ``ablate run``: evaluate stored runs' checkpoints under each pending variant.

Runs after the suite's training runs, in the driver, one evaluation at a time
(like measurement runs). A variant is pending for an ``ok`` train run until
rows with its current id (a hash of its settings) are stored; so adding a
variant to a finished suite evaluates the stored checkpoints and trains nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from ablate.run import checkpoints
from ablate.results import variant_table as table
from ablate.core.devices import is_oom, resolve_device
from ablate.core.errors import CheckpointError, Diverged, UnsupportedLengthError, UnsupportedRun
from ablate.results.store import MetricRow, Store
from ablate.suite.run_config import TrainRun, parse_train_run
from ablate.tasks import TASKS, create_task
from ablate.run.train import EVAL_METRICS, build, eval_seed, evaluate
from ablate.suite.variant_schema import Variant
from ablate.run.variants.settings import VariantContext, active


def variant_id(variant: Variant) -> str:
    """Stable id of a variant's settings (its name is not part of it)."""
    text = json.dumps(variant.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pending(plan: Any, store: Store) -> dict[str, list[str]]:
    """``run_id -> [variant names]`` still to evaluate, over the plan's train runs stored as ``ok``."""
    variants: dict[str, Variant] = dict(getattr(plan.suite, "variants", None) or {})
    if not variants:
        return {}
    statuses = store.statuses()
    done = table.stored_ids(store.connection)
    work: dict[str, list[str]] = {}
    for run in plan.train_runs():
        if statuses.get(run.run_id) != "ok":
            continue
        names = [n for n, v in variants.items() if done.get((run.run_id, n)) != variant_id(v)]
        if names:
            work[run.run_id] = names
    return work


def check_checkpoints(plan: Any, store: Store, results_dir: Path) -> None:
    """Before anything runs: every stored run a variant needs has its checkpoint file (else :class:`CheckpointError`)."""
    missing = [run_id for run_id in pending(plan, store) if not checkpoints.path_of(results_dir, run_id).is_file()]
    if missing:
        raise checkpoints.missing_error(results_dir, missing[0])


def status_rows(metrics: tuple[str, ...], lengths: list[int], status: str, reason: str) -> list[MetricRow]:
    """One non-ok row per metric and length, saying why."""
    return [MetricRow(m, length, math.nan, status, reason) for m in metrics for length in lengths]


def restore_model(results_dir: str | Path, run_id: str, config: TrainRun, device: torch.device) -> torch.nn.Module:
    """Rebuild ``run_id``'s model from its config and load its checkpoint (strict: every weight must match)."""
    payload = checkpoints.load(results_dir, run_id)
    torch.manual_seed(config.seed)
    model = build(config, create_task(config.task))
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CheckpointError(
            f"checkpoint {checkpoints.path_of(results_dir, run_id)} does not fit the model of run {run_id} ({first}); "
            f"run `ablate clean {Path(results_dir)} --retrain-missing` to retrain that run"
        ) from None
    return model.to(device)


def evaluate_variant(model: torch.nn.Module, config: TrainRun, variant: Variant, device: torch.device) -> list[MetricRow]:
    """Rows of ``model`` (restored from a run's checkpoint) evaluated under ``variant``; never raises for run problems
    except those of :func:`evaluate` (the caller records them)."""
    task = create_task(config.task)
    context = VariantContext(config, variant, task, device)
    metrics, lengths = EVAL_METRICS[task.kind], config.eval.lengths
    settings = active(variant)
    for _, setting in settings:
        reason = setting.unsupported(model, context)
        if reason is not None:
            return status_rows(metrics, lengths, "unsupported", reason)
    torch.manual_seed(eval_seed(config.seed, 0))  # randomized evaluation positions are drawn from it
    with ExitStack() as stack:
        extra: list[MetricRow] = []
        try:
            for _, setting in settings:
                extra += setting.prepare(model, context, stack)
        except UnsupportedLengthError as error:
            return status_rows(metrics, lengths, "unsupported", f"fine-tune: {error}")
        except Diverged as error:
            return status_rows(metrics, lengths, "diverged", f"fine-tune: {error}")

        @contextmanager
        def at_length(length: int) -> Iterator[None]:
            with ExitStack() as inner:
                for _, setting in settings:
                    setting.at_length(model, context, length, inner)
                yield

        rows = evaluate(model, task, config, device, at_length=at_length)
    return rows + extra


def run_variants(plan: Any, store: Store, results_dir: Path) -> int:
    """Evaluate every pending (run, variant) and store its rows; returns how many were evaluated.

    A failure of one evaluation is stored as its rows' status (``failed``/``oom``)
    and the stage goes on; a checkpoint that cannot be loaded stops it
    (:class:`CheckpointError`).
    """
    variants: dict[str, Variant] = dict(plan.suite.variants)
    runs = {run.run_id: run for run in plan.train_runs()}
    count = 0
    for run_id, names in pending(plan, store).items():
        config = parse_train_run(runs[run_id].config, f"run {run_id}")
        for name in names:
            try:
                device = resolve_device(config.train.device)
                model = restore_model(results_dir, run_id, config, device)
                rows = evaluate_variant(model, config, variants[name], device)
            except CheckpointError:
                raise
            except UnsupportedRun as error:
                rows = _failure_rows(config, "unsupported", str(error))
            except Exception as error:  # noqa: BLE001 - recorded, the stage goes on
                status = "oom" if is_oom(error) else "failed"
                rows = _failure_rows(config, status, f"{type(error).__name__}: {error}"[:500])
            table.write(store.connection, run_id, name, variant_id(variants[name]), rows)
            count += 1
    return count


def _failure_rows(config: TrainRun, status: str, reason: str) -> list[MetricRow]:
    kind = TASKS.get(config.task.name).kind
    return status_rows(EVAL_METRICS[kind], config.eval.lengths, status, reason)
