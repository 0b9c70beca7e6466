"""Train one run at its train length and evaluate it at every evaluation length.

:func:`execute` never raises for a problem of the run itself: it returns a
:class:`~ablate.store.Record` whose status says what happened (``ok``,
``unsupported``, ``diverged``, ``oom`` or ``failed`` with the reason), so one
bad run never stops a suite.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from typing import Any, Callable, ContextManager

import torch
from torch.nn import functional as F

from ablate import devices
from ablate.devices import is_oom
from ablate.errors import Diverged, UnsupportedLengthError, UnsupportedRun
from ablate.model import ModelConfig, TransformerModel
from ablate.store import MetricRow, Record
from ablate.tasks import create_task
from ablate.tasks.base import Batch, Task

#: Metrics each task kind reports at every evaluation length.
EVAL_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "loss"),
    "sequence": ("token_accuracy", "exact_match", "loss"),
    "lm": ("loss", "perplexity", "bits_per_char"),
}



def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; CUDA names require CUDA (:class:`UnsupportedRun`)."""
    try:
        return devices.resolve_device(name)
    except ValueError as error:
        raise UnsupportedRun(str(error)) from None


def autocast(device: torch.device, dtype_name: str) -> ContextManager[Any]:
    """Mixed precision for bfloat16/float16 (parameters stay float32); nothing for float32."""
    if dtype_name == "float16" and device.type != "cuda":
        raise UnsupportedRun("float16 is only supported on CUDA; use bfloat16 on CPU")
    return devices.autocast(device, dtype_name)


def build(config: dict[str, Any], task: Task) -> TransformerModel:
    """The run's model for ``task``, from the resolved ``config["model"]``."""
    model_config = ModelConfig(
        vocab_size=getattr(task, "vocab_size", 1),
        num_classes=task.num_classes,
        input_kind=task.input_kind,
        patch_dim=getattr(task, "patch_dim", 0),
        vocabulary=tuple(task.vocabulary) if getattr(task, "vocabulary", None) else None,
        **config["model"],
    )
    return TransformerModel(model_config)


def loss_and_counts(logits: torch.Tensor, batch: Batch, kind: str) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy and correct-prediction counts for one batch.

    Args:
        logits: ``(B, C)`` for classification, ``(B, L, V)`` for token-level tasks.
        batch: the batch; token-level losses count only ``loss_mask`` positions.
        kind: the task kind.
    """
    logits = logits.float()
    if kind == "classification":
        loss = F.cross_entropy(logits, batch.targets)
        correct = (logits.argmax(-1) == batch.targets).sum().item()
        return loss, {"correct": correct, "count": batch.targets.numel(), "sequences": batch.targets.shape[0],
                      "exact": correct}
    mask = batch.loss_mask if batch.loss_mask is not None else torch.ones_like(batch.targets, dtype=torch.bool)
    if batch.padding_mask is not None:
        mask = mask & batch.padding_mask
    per_token = F.cross_entropy(logits.transpose(1, 2), batch.targets.clamp(min=0), reduction="none")  # (B, L)
    weights = mask.to(per_token.dtype)
    loss = (per_token * weights).sum() / weights.sum().clamp(min=1)
    hits = (logits.argmax(-1) == batch.targets) & mask
    exact = (hits | ~mask).all(-1).sum().item()
    return loss, {"correct": hits.sum().item(), "count": mask.sum().item(), "sequences": batch.targets.shape[0],
                  "exact": exact, "nll_sum": (per_token * weights).sum().item()}


def make_optimizer(model: torch.nn.Module, train: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW/Adam/SGD from the ``train`` section."""
    params = [p for p in model.parameters() if p.requires_grad]
    factories: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "adamw": lambda: torch.optim.AdamW(params, lr=train["lr"], betas=tuple(train["betas"]), weight_decay=train["weight_decay"]),
        "adam": lambda: torch.optim.Adam(params, lr=train["lr"], betas=tuple(train["betas"])),
        "sgd": lambda: torch.optim.SGD(params, lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"]),
    }
    return factories[train["optimizer"]]()


def lr_factor(step: int, train: dict[str, Any]) -> float:
    """Learning-rate multiplier: linear warm-up, then constant, cosine or linear decay to 0."""
    warmup, total = train["warmup_steps"], max(1, train["steps"])
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    schedules = {"constant": 1.0, "cosine": 0.5 * (1 + math.cos(math.pi * progress)), "linear": 1.0 - progress}
    return schedules[train["schedule"]]


def train_model(model: TransformerModel, task: Task, config: dict[str, Any], device: torch.device) -> float:
    """Run ``train.steps`` optimiser steps; returns the mean loss of the last 10 steps."""
    train = config["train"]
    generator = torch.Generator().manual_seed(config["seed"])
    optimizer = make_optimizer(model, train)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, train))
    scaler = torch.amp.GradScaler(device.type, enabled=train["dtype"] == "float16")
    recent: list[float] = []
    model.train()
    for step in range(train["steps"]):
        length = train["length"]
        if train["min_length"] is not None:
            length = int(torch.randint(train["min_length"], train["length"] + 1, (1,), generator=generator))
        batch = task.sample(generator, train["batch_size"], length, split="train").to(device)
        with autocast(device, train["dtype"]):
            logits = model(batch.inputs, batch.padding_mask)
        loss, _ = loss_and_counts(logits, batch, task.kind)
        value = loss.item()
        if not math.isfinite(value) or value > train["diverge_loss"]:
            raise Diverged(f"training loss {value:.4g} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if train["grad_clip"] is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), train["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        recent = (recent + [value])[-10:]
    return sum(recent) / len(recent) if recent else math.nan


def eval_seed(seed: int, length: int) -> int:
    """Evaluation data seed: the same for every encoding/pooling at a given seed and length (paired tests)."""
    return (seed * 1_000_003 + length * 7919 + 12345) % (2**63)


def evaluate(model: TransformerModel, task: Task, config: dict[str, Any], device: torch.device, *,
             at_length: Callable[[int], ContextManager[Any]] | None = None) -> list[MetricRow]:
    """Metrics at every evaluation length, with ``unsupported``/``oom`` rows where they apply.

    ``at_length(L)``, when given, is entered around the scoring at length ``L``
    (evaluation-time variants that depend on the length, e.g. RoPE scaling factors).
    """
    model.eval()
    evaluation, train = config["eval"], config["train"]
    lengths: list[int] = evaluation["lengths"]
    names = EVAL_METRICS[task.kind]
    rows: list[MetricRow] = []
    lm_batches = _lm_batches(task, config, max(lengths)) if task.kind == "lm" else None
    for length in lengths:
        note = model.encoding.untrained_note(train["length"], length)
        try:
            model.encoding.check_length(length + (1 if model.cls_token is not None else 0))
            if lm_batches is not None:
                score_last = min(evaluation["score_last"] or train["length"], length)
                batches = [_crop_lm(b, length, score_last) for b in lm_batches]
            else:
                generator = torch.Generator().manual_seed(eval_seed(config["seed"], length))
                batches = [task.sample(generator, evaluation["batch_size"], length, split="test")
                           for _ in range(evaluation["batches"])]
            with at_length(length) if at_length is not None else contextlib.nullcontext():
                values = _score(model, task, batches, device, train["dtype"])
        except UnsupportedLengthError as error:
            rows += [MetricRow(n, length, math.nan, "unsupported", str(error), note) for n in names]
            continue
        except Exception as error:  # noqa: BLE001 - an OOM at one length is a data point
            if not is_oom(error):
                raise
            _free(device)
            rows += [MetricRow(n, length, math.nan, "oom", _short(error), note) for n in names]
            continue
        rows += [MetricRow(n, length, values[n], "ok", None, note) for n in names]
    return rows


def _lm_batches(task: Task, config: dict[str, Any], longest: int) -> list[Batch]:
    generator = torch.Generator().manual_seed(eval_seed(config["seed"], 0))
    evaluation = config["eval"]
    return [task.sample(generator, evaluation["batch_size"], longest, split="test") for _ in range(evaluation["batches"])]


def _crop_lm(batch: Batch, length: int, score_last: int) -> Batch:
    """The last ``length`` tokens of a longer LM window, scoring only the final ``score_last``."""
    inputs, targets = batch.inputs[:, -length:], batch.targets[:, -length:]
    loss_mask = torch.zeros_like(targets, dtype=torch.bool)
    loss_mask[:, -score_last:] = True
    if batch.loss_mask is not None:
        loss_mask &= batch.loss_mask[:, -length:]
    return Batch(inputs, targets, None if batch.padding_mask is None else batch.padding_mask[:, -length:], loss_mask)


@torch.inference_mode()
def _score(model: TransformerModel, task: Task, batches: list[Batch], device: torch.device, dtype: str) -> dict[str, float]:
    totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0, "exact": 0.0, "sequences": 0.0, "nll_sum": 0.0}
    for batch in batches:
        batch = batch.to(device)
        with autocast(device, dtype):
            logits = model(batch.inputs, batch.padding_mask)
        loss, counts = loss_and_counts(logits, batch, task.kind)
        totals["loss_sum"] += loss.item() * (counts["count"] if task.kind != "classification" else counts["sequences"])
        for key in ("correct", "count", "exact", "sequences", "nll_sum"):
            totals[key] += counts.get(key, 0.0)
    if task.kind == "classification":
        loss = totals["loss_sum"] / totals["sequences"]
        return {"accuracy": totals["correct"] / totals["count"], "loss": loss}
    loss = totals["nll_sum"] / max(totals["count"], 1)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "bits_per_char": loss / math.log(2),
        "token_accuracy": totals["correct"] / max(totals["count"], 1),
        "exact_match": totals["exact"] / max(totals["sequences"], 1),
    }


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _short(error: BaseException, limit: int = 500) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def train_and_evaluate(config: dict[str, Any], keep: dict[str, Any] | None = None) -> tuple[str, str | None, list[MetricRow]]:
    """Train and evaluate a resolved train-run config: ``(status, reason, metric rows)``.

    ``keep``, when given, receives the trained model as ``keep["checkpoint"]``
    (bytes, :func:`ablate.checkpoints.serialize`) for the driver to store.
    """
    torch.manual_seed(config["seed"])
    device = resolve_device(config["train"]["device"])
    task = create_task(config["task"])
    model = build(config, task).to(device)
    started = time.perf_counter()
    try:
        model.encoding.check_length(config["train"]["length"] + (1 if model.cls_token is not None else 0))
        train_loss = train_model(model, task, config, device)
    except UnsupportedLengthError as error:
        return "unsupported", f"cannot train at length {config['train']['length']}: {error}", []
    except Diverged as error:
        return "diverged", str(error), []
    train_time = time.perf_counter() - started
    started = time.perf_counter()
    rows = evaluate(model, task, config, device)
    eval_time = time.perf_counter() - started
    if keep is not None:
        from ablate.checkpoints import serialize

        keep["checkpoint"] = serialize(model, keep.get("run_id"), config)
    length = config["train"]["length"]
    rows += [
        MetricRow("train_loss", length, train_loss),
        MetricRow("train_time_s", length, train_time),
        MetricRow("eval_time_s", length, eval_time),
    ]
    return "ok", None, rows


def execute(run_id: str, suite: str, kind: str, config: dict[str, Any], axes: dict[str, Any]) -> Record:
    """Run one spec (train or measure) and return its record; never raises for run problems."""
    from ablate.environment import environment

    started_at = time.time()
    clock = time.perf_counter()
    status, reason, rows = "failed", None, []
    keep: dict[str, Any] = {"run_id": run_id}
    try:
        if kind == "measure":
            from ablate.measure.run import run_measurement

            status, reason, rows = run_measurement(config)
        else:
            status, reason, rows = train_and_evaluate(config, keep)
    except (UnsupportedLengthError, UnsupportedRun) as error:
        status, reason = "unsupported", str(error)
    except Exception as error:  # noqa: BLE001 - recorded, the suite goes on
        status = "oom" if is_oom(error) else "failed"
        reason = _short(error) + ("" if status == "oom" else "\n" + traceback.format_exc(limit=-3))
    wall = time.perf_counter() - clock
    work = sum(r.value for r in rows if r.metric in ("train_time_s", "eval_time_s") and math.isfinite(r.value))
    return Record(run_id=run_id, suite=suite, kind=kind, status=status, config=config, axes=axes, reason=reason,
                  metrics=rows, env=environment(config), started_at=started_at, wall_s=wall, work_s=work or wall,
                  checkpoint=keep.get("checkpoint") if status == "ok" else None)
