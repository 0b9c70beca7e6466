"""Adaptive seeds: cells that can still be decided get more seeds, decided ones stop; the runner hook end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ablate import load_results
from ablate.run.adaptive import run_adaptive, seed_steps
from ablate.run.runner import run_plan
from ablate.suite import expand
from ablate.suite.load import suite_from_dict
from ablate.suite.schema import SeedRange

RAW = {"name": "adaptive", "seeds": {"min": 4, "max": 16, "step": 4}, "task": {"name": "parity"},
       "model": {"d_model": 16, "num_heads": 2, "num_layers": 1},
       "train": {"steps": 4, "batch_size": 4, "length": 6}, "eval": {"lengths": [6], "batches": 1, "batch_size": 8},
       "grid": {"encoding": ["sinusoidal", "rope", "alibi"]},
       "report": {"main_metric": "accuracy", "learned_threshold": 0.4}}


def _plan(raw: dict = RAW):
    return expand(suite_from_dict(raw, "adaptive.toml"), Path("adaptive.toml"))


def test_seed_steps() -> None:
    assert seed_steps(SeedRange(min=4, max=12, step=4)) == (4, 8, 12)
    assert seed_steps(SeedRange(min=3, max=10, step=3)) == (3, 6, 9, 10)
    assert seed_steps(SeedRange(min=4, max=8)) == (4, 8)


def test_only_cells_that_can_still_be_decided_get_more_seeds() -> None:
    """rope wins every seed against sinusoidal (decided once it has enough); alibi's coin flips never decide."""
    plan = _plan()
    stored: list = []
    noise = np.random.default_rng(0).normal(0, 0.3, 20)
    value = {"sinusoidal": lambda s: 0.5, "rope": lambda s: 0.9 + 0.001 * s, "alibi": lambda s: 0.5 + noise[s]}

    def run_round(sub):
        stored[:] = sub.runs
        return len(sub.runs)

    def load():
        rows = [{"run_id": r.run_id, "kind": "train", "metric": "accuracy", "value": float(np.clip(value[
            r.axes["model.encoding"]](r.config["seed"]), 0, 1)), "status": "ok", "eval_length": 6, "train_length": 6,
            "task": "parity", "encoding": r.axes["model.encoding"], "pooling": "mean", "seed": r.config["seed"],
            "higher_is_better": True} for r in stored]
        frame = pd.DataFrame(rows)
        frame.attrs.update(axes=["encoding"], baseline={"encoding": "sinusoidal"},
                           suite_config={"seeds": RAW["seeds"], "report": RAW["report"]})
        return frame

    run_adaptive(plan, run_round, load)
    seeds = {}
    for r in stored:
        seeds.setdefault(r.axes["model.encoding"], []).append(r.config["seed"])
    # rope vs sinusoidal: 8 wins of 8 do not exclude a fair coin at 0.05 / 2; 12 of 12 do
    assert sorted(seeds["rope"]) == list(range(12))
    assert sorted(seeds["alibi"]) == list(range(16)) and sorted(seeds["sinusoidal"]) == list(range(16))


def test_a_seed_range_runs_through_run_plan(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    raw = dict(RAW, seeds={"min": 2, "max": 3, "step": 1}, grid={"encoding": ["sinusoidal", "rope"]})
    summary = run_plan(_plan(raw), tmp_path, progress=False)
    frame = load_results(summary.results_dir)
    runs = frame.drop_duplicates("run_id")
    assert set(runs.groupby("encoding")["seed"].nunique()) <= {2, 3}
    assert summary.counts.get("ok") == len(runs) == summary.total and summary.skipped == 0
