"""The one training step: reference values, divergence, and that train, bench and asv all take it."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from ablate.run import step as step_module
from ablate.core.errors import Diverged, UnsupportedRun
from ablate.measure.workload import Workload, spec_of
from ablate.model.transformer import ModelConfig, TransformerModel
from ablate.run.step import TrainStep, lr_factor
from ablate.suite.run_config import parse_train_run
from ablate.suite.schema import ModelSection, TrainSection
from ablate.tasks import Batch, create_task
from ablate.run.train import build, train_model

REPO = Path(__file__).resolve().parents[1]
TRAIN = TrainSection(lr=1e-2, grad_clip=0.5, schedule="linear", steps=4, warmup_steps=1)


def tiny(seed: int = 0) -> TransformerModel:
    torch.manual_seed(seed)
    return TransformerModel(ModelConfig(vocab_size=7, num_classes=3, d_model=8, num_heads=2, num_layers=1,
                                        encoding="alibi", pooling="mean"))


def batch() -> Batch:
    generator = torch.Generator().manual_seed(1)
    return Batch(torch.randint(0, 7, (4, 6), generator=generator), torch.randint(0, 3, (4,), generator=generator))


def test_train_step_is_forward_loss_backward_clip_adamw_and_schedule():
    model, reference = tiny(), tiny()
    step = TrainStep(model, kind="classification", train=TRAIN, device=torch.device("cpu"))
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, betas=(0.9, 0.98), weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(i, TRAIN))
    reference.train()
    for _ in range(3):
        loss = step(batch())
        expected = torch.nn.functional.cross_entropy(reference(batch().inputs), batch().targets)
        optimizer.zero_grad()
        expected.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        optimizer.step()
        scheduler.step()
        assert loss == pytest.approx(expected.item(), rel=1e-6)
    for got, want in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert step.steps_taken == 3 and step.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * lr_factor(3, TRAIN))


def test_lr_factor_warms_up_then_decays_to_zero():
    train = TrainSection(warmup_steps=2, steps=6, schedule="linear")
    assert [lr_factor(i, train) for i in range(7)] == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0])
    assert lr_factor(4, train.model_copy(update={"schedule": "cosine"})) == pytest.approx(0.5)


def test_a_diverging_loss_stops_before_the_update():
    model = tiny()
    before = [p.detach().clone() for p in model.parameters()]
    step = TrainStep(model, kind="classification", train=TRAIN.model_copy(update={"diverge_loss": 1e-3}), device=torch.device("cpu"))
    with pytest.raises(Diverged, match="at step 0"):
        step(batch())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.fixture
def counted(monkeypatch):
    """Counts calls of TrainStep.__call__ (every caller holds the same class)."""
    calls: list[int] = []
    original = step_module.TrainStep.__call__

    def call(self, batch):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, batch)

    monkeypatch.setattr(step_module.TrainStep, "__call__", call)
    return calls


def test_suite_training_takes_the_one_step(counted):
    task = create_task({"name": "parity"})
    config = parse_train_run({
        "kind": "train", "seed": 0, "task": {"name": "parity"},
        "model": ModelSection(d_model=8, num_heads=2, num_layers=1, causal=False, encoding={"name": "none"},
                              pooling={"name": "mean"}).model_dump(mode="json"),
        "train": TRAIN.model_copy(update={"steps": 3, "length": 6, "batch_size": 4}).model_dump(mode="json"),
        "eval": {"lengths": [6], "batches": 1, "batch_size": 4, "score_last": None}})
    loss = train_model(build(config, task), task, config, torch.device("cpu"))
    assert len(counted) == 3 and math.isfinite(loss)


def test_ablate_bench_measures_the_one_step(counted):
    config = ModelConfig(vocab_size=7, num_classes=3, d_model=8, num_heads=2, num_layers=1, pooling="none")
    workload = Workload(spec_of(config, mode="train_step", batch_size=2, length=5, dtype="float32", device="cpu",
                                train={"grad_clip": 0.25}))
    assert workload.trainer is not None and workload.trainer.train.grad_clip == 0.25
    assert workload.trainer.train.lr == TrainSection().lr  # the schema's defaults fill the rest
    assert math.isfinite(workload.step())
    assert len(counted) == 1


def test_the_asv_benchmark_times_the_one_step(counted):
    sys.path.insert(0, str(REPO))
    from benchmarks import common  # noqa: PLC0415 - the benchmarks live beside the package

    case = common.build_case("train_step", "alibi", "mean", 128)
    before = [p.detach().clone() for p in case.model.parameters()]
    case.train_step()
    assert len(counted) == 1 and isinstance(case.trainer, TrainStep)
    assert case.trainer.train is case.train and case.train.grad_clip == TrainSection().grad_clip
    assert any(not torch.equal(a, b) for a, b in zip(before, case.model.parameters()))


def test_the_gradient_scaler_is_for_float16_only_and_float16_needs_cuda():
    cpu = torch.device("cpu")
    step = TrainStep(tiny(), kind="classification", train=TRAIN.model_copy(update={"dtype": "bfloat16"}), device=cpu)
    assert not step.scaler.is_enabled() and math.isfinite(step(batch()))
    with pytest.raises(UnsupportedRun, match="float16"):
        TrainStep(tiny(), kind="classification", train=TRAIN.model_copy(update={"dtype": "float16"}), device=cpu)(batch())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_float16_steps_are_scaled_on_cuda():
    device = torch.device("cuda")
    model = tiny().to(device)
    step = TrainStep(model, kind="classification", train=TRAIN.model_copy(update={"dtype": "float16"}), device=device)
    assert step.scaler.is_enabled()
    before = [p.detach().clone() for p in model.parameters()]
    assert math.isfinite(step(batch().to(device))) and step.scaler.get_scale() > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
