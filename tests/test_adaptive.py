"""Adaptive seeds: undecided cells get more seeds, decided ones stop; the runner hook end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ablate import load_results
from ablate.adaptive import STOP_CAP, STOP_DECIDED, run_adaptive
from ablate.runner import run_plan
from ablate.suite import expand
from ablate.suite.load import suite_from_dict

RAW = {"name": "adaptive", "seeds": {"min": 3, "max": 9, "step": 3}, "task": {"name": "parity"},
       "model": {"d_model": 16, "num_heads": 2, "num_layers": 1},
       "train": {"steps": 4, "batch_size": 4, "length": 6}, "eval": {"lengths": [6], "batches": 1, "batch_size": 8},
       "grid": {"encoding": ["sinusoidal", "rope", "alibi"]}, "report": {"main_metric": "accuracy", "margin": 0.01}}


def _plan(raw: dict = RAW):
    return expand(suite_from_dict(raw, "adaptive.toml"), Path("adaptive.toml"))


def test_only_undecided_cells_get_more_seeds() -> None:
    """rope is far better than sinusoidal at once; alibi's noisy difference never decides."""
    plan = _plan()
    stored: list = []
    noise = np.random.default_rng(0).normal(0, 0.3, 20)
    value = {"sinusoidal": lambda s: 0.5, "rope": lambda s: 0.9 + 0.001 * s, "alibi": lambda s: 0.5 + noise[s]}

    def run_round(sub):
        stored[:] = sub.runs
        return len(sub.runs)

    def load():
        rows = [{"run_id": r.run_id, "kind": "train", "metric": "accuracy", "value": value[r.axes["model.encoding"]](
            r.config["seed"]), "status": "ok", "eval_length": 6, "train_length": 6, "task": "parity",
            "encoding": r.axes["model.encoding"], "pooling": "mean", "seed": r.config["seed"], "higher_is_better": True}
            for r in stored]
        frame = pd.DataFrame(rows)
        frame.attrs.update(axes=["encoding"], baseline={"encoding": "sinusoidal"},
                           suite_config={"seeds": {"min": 3, "max": 9, "step": 3}, "report": {}})
        return frame

    accounts: list = []
    run_adaptive(plan, run_round, load, accounts.append)
    (account,) = accounts
    assert account["encoding=rope"] == {"seeds": 3, "stop": STOP_DECIDED}
    assert account["encoding=alibi"] == {"seeds": 9, "stop": STOP_CAP}
    assert account["encoding=sinusoidal"]["seeds"] == 9  # the baseline serves the undecided comparison
    seeds = {r.axes["model.encoding"]: sorted(r.config["seed"] for r in stored if r.axes["model.encoding"] == e)
             for r in stored for e in [r.axes["model.encoding"]]}
    assert seeds == {"rope": [0, 1, 2], "alibi": list(range(9)), "sinusoidal": list(range(9))}


def test_a_seed_range_runs_through_run_plan_and_records_the_account(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    raw = dict(RAW, seeds={"min": 2, "max": 3, "step": 1}, grid={"encoding": ["sinusoidal", "rope"]})
    summary = run_plan(_plan(raw), tmp_path, progress=False)
    frame = load_results(summary.results_dir)
    account = frame.attrs["adaptive"]
    assert set(account) == {"encoding=sinusoidal", "encoding=rope"}
    for cell in account.values():
        assert cell["seeds"] in (2, 3) and cell["stop"] in (STOP_DECIDED, STOP_CAP)
    runs = frame.drop_duplicates("run_id")
    assert len(runs) == sum(c["seeds"] for c in account.values())
    assert summary.counts.get("ok") == len(runs) == summary.total and summary.skipped == 0
