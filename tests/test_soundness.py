"""The stated error rates hold on the data small models produce: simulated through the functions that decide.

Verdicts are reached by :func:`ablate.analysis.stats.verdict.judge`, which the report's
comparisons (:func:`ablate.analysis.stats.decisions.comparisons`), the adaptive seeds
(:func:`ablate.run.adaptive.run_adaptive`) and the claims' better/order predicates call.
Every path is looked at after each round of seeds and counts as an error if it is
*ever* wrong, as the adaptive seeds would stop there. Families: normal, learn-or-fail
mixtures (exact 1.0/0.5 and noisy), skewed, ties, zero spread (tests/families.py).
The bound checked is alpha plus three Monte-Carlo standard errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablate.run.adaptive import run_adaptive
from ablate.claims import Claim, judge as judge_claim
from ablate.claims.predicates import NOT_REPRODUCED, REPRODUCED, value_predicate
from ablate.analysis.stats.decisions import comparisons
from ablate.analysis.stats.verdict import BETTER, EQUIVALENT, WORSE, judge
from ablate.suite import expand
from ablate.suite.load import suite_from_dict
from families import EFFECTS, FIVE_MARGINS, NULLS, Scenario

ALPHA = 0.05
LOOKS = (4, 8, 12)  # the quick start's rounds of seeds
LONG_LOOKS = (3, 6, 9, 12, 15, 20, 25, 30)


def _bound(alpha: float, paths: int) -> float:
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / paths)


def _paths(scenario: Scenario, looks: tuple[int, ...], paths: int, seed: int) -> list[list[str]]:
    """The verdict at every look of ``paths`` simulated sequences of paired seeds."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(paths):
        t, b = scenario.treatment(rng, looks[-1]), scenario.baseline(rng, looks[-1])
        out.append([judge(t[:n], b[:n], metric="accuracy", alpha=ALPHA).verdict for n in looks])
    return out


@pytest.mark.parametrize("scenario", NULLS, ids=lambda s: s.name)
def test_no_difference_is_called_better_or_worse_at_most_alpha(scenario: Scenario) -> None:
    paths = 1500
    verdicts = _paths(scenario, LOOKS, paths, seed=1)
    wrong = np.mean([any(v in (BETTER, WORSE) for v in path) for path in verdicts])
    assert wrong <= _bound(ALPHA, paths), f"{scenario.name}: false better/worse in {wrong:.3f} of paths"


@pytest.mark.parametrize("scenario", [NULLS[1], NULLS[3]], ids=lambda s: s.name)
def test_error_rate_holds_over_many_looks(scenario: Scenario) -> None:
    paths = 600
    verdicts = _paths(scenario, LONG_LOOKS, paths, seed=2)
    wrong = np.mean([any(v in (BETTER, WORSE) for v in path) for path in verdicts])
    assert wrong <= _bound(ALPHA, paths)


@pytest.mark.parametrize("scenario", FIVE_MARGINS, ids=lambda s: s.name)
def test_five_margins_apart_is_never_called_equivalent(scenario: Scenario) -> None:
    paths = 1500
    verdicts = _paths(scenario, LOOKS, paths, seed=3)
    wrong = np.mean([any(v == EQUIVALENT for v in path) for path in verdicts])
    assert wrong <= _bound(ALPHA, paths), f"{scenario.name}: false equivalence in {wrong:.3f} of paths"
    # and a decided direction is the right one
    backwards = np.mean([any(v == BETTER for v in path) for path in verdicts])
    assert backwards <= _bound(ALPHA, paths)


def test_the_issues_mixture_is_no_longer_called_equivalent() -> None:
    # One cell learns in every seed, the other in 80% (chance otherwise): mean difference -0.10.
    # The sequential t design called this "equivalent" in half of the simulations.
    scenario = FIVE_MARGINS[1]
    verdicts = _paths(scenario, LONG_LOOKS, 400, seed=4)
    assert not any(EQUIVALENT in path for path in verdicts)


@pytest.mark.parametrize("scenario", EFFECTS[:2], ids=lambda s: s.name)
def test_large_consistent_differences_are_decided_with_the_quick_starts_seeds(scenario: Scenario) -> None:
    verdicts = _paths(scenario, LOOKS, 200, seed=5)
    power = np.mean([path[-1] == BETTER for path in verdicts])
    assert power >= 0.8, f"{scenario.name}: decided better in only {power:.2f} of paths at 12 seeds"


def _frame(values: dict[str, np.ndarray], length: int = 32, run_ids: dict[tuple[str, int], str] | None = None,
           baseline: str = "base") -> pd.DataFrame:
    rows = []
    for encoding, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            run = (run_ids or {}).get((encoding, seed), f"{encoding}-{seed}")
            rows.append({"run_id": run, "kind": "train", "task": "order", "encoding": encoding,
                         "pooling": "cls", "seed": seed, "metric": "accuracy", "eval_length": length,
                         "train_length": length, "status": "ok", "value": float(value)})
    frame = pd.DataFrame(rows)
    frame.attrs.update(axes=["encoding"], baseline={"encoding": baseline})
    return frame


@pytest.mark.parametrize("scenario", [NULLS[1], NULLS[5], FIVE_MARGINS[1]], ids=lambda s: s.name)
def test_the_reports_comparisons_are_judge_at_the_familys_alpha(scenario: Scenario) -> None:
    """The frame path (report, adaptive seeds) gives exactly judge's verdict, and keeps its error rate."""
    rng = np.random.default_rng(6)
    paths, wrong = 300, 0
    for _ in range(paths):
        t, b = scenario.treatment(rng, 12), scenario.baseline(rng, 12)
        table = comparisons(_frame({"base": b, "treat": t}), "accuracy", alpha=ALPHA, threshold=None)
        (row,) = table.to_dict("records")
        assert row["verdict"] == judge(t, b, metric="accuracy", alpha=ALPHA / table.attrs["family_size"]).verdict
        wrong += row["verdict"] in ((BETTER, WORSE) if scenario.difference == 0 else (EQUIVALENT, BETTER))
    assert wrong / paths <= _bound(ALPHA, paths)


RAW = {"name": "sim", "seeds": {"min": 4, "max": 12, "step": 4}, "task": {"name": "order"},
       "model": {"d_model": 16, "num_heads": 2, "num_layers": 1},
       "train": {"steps": 4, "batch_size": 4, "length": 32}, "eval": {"lengths": [32], "batches": 1, "batch_size": 8},
       "grid": {"encoding": ["sinusoidal", "rope"], "pooling": ["cls"]},
       "report": {"main_metric": "accuracy", "learned_threshold": 0.75}}


@pytest.mark.parametrize("scenario", [NULLS[1], NULLS[4]], ids=lambda s: s.name)
def test_adaptive_seeds_stop_where_decided_and_keep_alpha(scenario: Scenario) -> None:
    """End to end through run_adaptive: seeds are added while undecided, and the final verdict is wrong
    at most alpha of the time although the number of seeds depends on the data."""
    plan = expand(suite_from_dict(RAW, "sim.toml"), Path("sim.toml"))
    rng = np.random.default_rng(7)
    paths, wrong, seeds_used = 100, 0, []
    for _ in range(paths):
        draws = {"rope": scenario.treatment(rng, 12), "sinusoidal": scenario.baseline(rng, 12)}
        stored: list = []

        def run_round(sub, stored=stored):
            stored[:] = [r for r in sub.runs if r.kind == "train"]

        def load(stored=stored, draws=draws):
            seeds: dict[str, list[int]] = {}
            for r in stored:
                seeds.setdefault(r.axes["model.encoding"], []).append(r.config["seed"])
            ids = {(r.axes["model.encoding"], r.config["seed"]): r.run_id for r in stored}
            frame = _frame({e: draws[e][sorted(s)] for e, s in seeds.items()}, run_ids=ids, baseline="sinusoidal")
            frame.attrs["suite_config"] = {"report": RAW["report"]}
            return frame

        run_adaptive(plan, run_round, load)
        table = comparisons(load(), "accuracy", alpha=ALPHA, threshold=0.75)
        wrong += table["verdict"].isin([BETTER, WORSE]).any()
        seeds_used.append(len(stored))
    assert wrong / paths <= _bound(ALPHA, paths)
    assert min(seeds_used) >= 8  # 4 seeds x 2 cells: nothing can be decided at the first look


def _claim(expect: list[dict]) -> Claim:
    return Claim(id="sim", path=Path("sim.toml"), title="t", paper="p", year=2024, where="w", statement="s",
                 suite={}, expect=expect)


def test_a_median_predicate_on_its_boundary_is_decided_wrongly_at_most_alpha() -> None:
    """Half the seeds reach the threshold (learn-or-fail at 50%): neither verdict is true."""
    rng = np.random.default_rng(8)
    paths, wrong = 600, 0
    for _ in range(paths):
        frame = _frame({"base": np.where(rng.random(20) < 0.5, 0.97, 0.5)})
        for n in (5, 10, 15, 20):
            verdict = value_predicate(frame[frame["seed"] < n], alpha=ALPHA, where={"encoding": "base"},
                                      metric="accuracy", length=32, op=">=", threshold=0.9).verdict
            if verdict in (REPRODUCED, NOT_REPRODUCED):
                wrong += 1
                break
    assert wrong / paths <= _bound(ALPHA, paths)


def test_a_claims_error_is_controlled_across_its_predicates() -> None:
    """Six true predicates (each cell learns in 90% of seeds): the claim is called not reproduced at most alpha."""
    rng = np.random.default_rng(9)
    cells = [f"c{i}" for i in range(6)]
    expect = [{"predicate": "value", "where": {"encoding": c}, "metric": "accuracy", "length": 32, "op": ">=",
               "threshold": 0.9} for c in cells]
    paths, wrong = 200, 0
    for _ in range(paths):
        frame = _frame({c: np.where(rng.random(12) < 0.9, 0.98, 0.5) for c in cells})
        overall, _ = judge_claim(_claim(expect), frame)
        wrong += overall == NOT_REPRODUCED
    assert wrong / paths <= _bound(ALPHA, paths)
