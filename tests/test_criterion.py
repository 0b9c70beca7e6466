"""Training to a criterion: the stopping rule, the curve, and the curves table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ablate import load_curves, load_results
from ablate.run.criterion import STOP_CAP, STOP_PLATEAU, STOP_TARGET, TrainingMonitor
from ablate.run.runner import run_plan
from ablate.suite import expand
from ablate.suite.load import SuiteError, suite_from_dict
from ablate.suite.schema import TrainSection


def _feed(monitor: TrainingMonitor, values: list[float]) -> int:
    """Drive the monitor with one validation value per check; returns the step it stopped at."""
    values = iter(values)
    for step in range(1, monitor.cap + 1):
        if monitor.step_done(step, loss=1.0 / step) and monitor.check(lambda: {monitor.metric: next(values)}):
            return step
    return monitor.cap


def test_stops_at_the_target_on_the_first_check_that_reaches_it() -> None:
    monitor = TrainingMonitor(metric="accuracy", every=10, cap=100, target=0.9)
    assert _feed(monitor, [0.5, 0.8, 0.91, 0.99]) == 30
    assert monitor.stop_reason == STOP_TARGET and monitor.met and monitor.steps_used == 30
    assert [p.step for p in monitor.curve] == [10, 20, 30]
    assert monitor.curve[0].train_loss == pytest.approx(sum(1 / s for s in range(1, 11)) / 10)


def test_lower_is_better_metrics_stop_below_the_target() -> None:
    monitor = TrainingMonitor(metric="loss", every=5, cap=50, target=1.0, higher=False)
    assert _feed(monitor, [2.0, 1.5, 0.9]) == 15 and monitor.met


def test_patience_counts_checks_without_improvement_beyond_min_delta() -> None:
    monitor = TrainingMonitor(metric="accuracy", every=10, cap=1000, patience=3, min_delta=0.01)
    # 0.6 is the best; 0.605 improves by less than min_delta, so checks 3, 4, 5 are stale
    assert _feed(monitor, [0.5, 0.6, 0.605, 0.55, 0.6, 0.9]) == 50
    assert monitor.stop_reason == STOP_PLATEAU and not monitor.met


def test_min_steps_keeps_a_slow_starter_training_through_its_plateau() -> None:
    at_chance_then_learns = [0.5] * 6 + [0.7, 0.99]
    impatient = TrainingMonitor(metric="accuracy", every=10, cap=1000, patience=3, target=0.98)
    assert _feed(impatient, at_chance_then_learns) == 40 and impatient.stop_reason == STOP_PLATEAU
    patient = TrainingMonitor.from_config(
        TrainSection(steps=1000, until={"every": 10, "patience": 3, "target": 0.98, "min_steps": 70}), "classification")
    assert _feed(patient, at_chance_then_learns) == 80 and patient.met


def test_without_until_the_cap_ends_training_and_ten_checks_make_the_curve() -> None:
    monitor = TrainingMonitor.from_config(TrainSection(steps=95), "classification")
    assert (monitor.every, monitor.metric, monitor.target, monitor.patience) == (10, "accuracy", None, None)
    assert _feed(monitor, [0.5] * 20) == 95
    assert monitor.stop_reason == STOP_CAP and [p.step for p in monitor.curve][-2:] == [90, 95]


def test_language_models_default_to_validation_loss() -> None:
    monitor = TrainingMonitor.from_config(TrainSection(steps=10, until={"target": 2.0}), "lm")
    assert monitor.metric == "loss" and not monitor.higher


def test_an_unknown_until_metric_is_a_suite_error_with_a_suggestion() -> None:
    raw = {"name": "x", "train": {"until": {"metric": "acuracy"}}}
    with pytest.raises(SuiteError, match="accuracy"):
        suite_from_dict(raw, "x.toml")


def test_a_run_stops_early_and_stores_its_curve(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    raw = {"name": "until", "seeds": [0, 1], "task": {"name": "parity"},
           "model": {"d_model": 16, "num_heads": 2, "num_layers": 1},
           "train": {"steps": 60, "batch_size": 8, "length": 6, "until": {"every": 10, "patience": 1, "target": 0.99}},
           "eval": {"lengths": [6, 12], "batches": 1, "batch_size": 16}}
    summary = run_plan(expand(suite_from_dict(raw, "until.toml"), Path("until.toml")), tmp_path, progress=False)
    frame, curves = load_results(summary.results_dir), load_curves(summary.results_dir)
    assert set(curves["run_id"]) == set(frame["run_id"])  # every stored run has a curve
    used = frame[frame["metric"].eq("steps_used")].set_index("run_id")["value"]
    for run_id, curve in curves.groupby("run_id"):
        steps = list(curve["step"])
        assert steps == list(range(10, 10 * len(steps) + 1, 10))
        assert used[run_id] == steps[-1] <= 60
        assert curve["metric"].eq("accuracy").all() and curve["value"].between(0, 1).all()
        assert not math.isnan(curve["train_loss"].iloc[0])
    met = frame[frame["metric"].eq("criterion_met")]
    assert met["note"].str.startswith("stopped: ").all()
