"""The report's one table of verdicts: the family, cells unable or not learning, learned seeds past the train length."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablate.analysis.stats.decisions import (
    DID_NOT_LEARN,
    LEARNS,
    NOT_JUDGED,
    OPEN,
    cells_needing_seeds,
    comparisons,
    learn_status,
    learned_by_seed,
)
from ablate.analysis.stats.verdict import judge

#: Train-length accuracy and accuracy at 4x per encoding (order, mean pooling, bidirectional).
CELLS = {"sinusoidal": (0.99, 0.60), "rope": (0.995, 0.90), "none": (0.50, 0.50), "alibi": (0.50, 0.51),
         "t5": (0.60, 0.55)}


def _frame(seeds: int = 12, cells: dict = CELLS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for encoding, (short, long) in cells.items():
        for seed in range(seeds):
            for length, value in ((32, short), (128, long)):
                rows.append({"run_id": f"{encoding}-{seed}", "kind": "train", "task": "order", "encoding": encoding,
                             "pooling": "mean", "model.causal": False, "seed": seed, "metric": "accuracy",
                             "eval_length": length, "train_length": 32, "status": "ok", "higher_is_better": True,
                             "value": min(1.0, value + rng.normal(0, 0.003))})
    frame = pd.DataFrame(rows)
    frame.attrs.update(axes=["encoding"], baseline={"encoding": "sinusoidal"},
                       suite_config={"seeds": {"min": 4, "max": seeds, "step": 4}})
    return frame


def test_learn_rates_and_unable_cells() -> None:
    status = learn_status(_frame(), "accuracy", 0.9).set_index("encoding")
    assert status.loc["rope", "status"] == LEARNS and status.loc["rope", "learned"] == 12
    assert status.loc["t5", "status"] == DID_NOT_LEARN and status.loc["t5", "rate_high"] < 0.5
    assert "permutation-invariant" in status.loc["none", "unable"]
    assert "cannot see direction" in status.loc["alibi", "unable"]
    assert pd.isna(status.loc["t5", "unable"])  # t5 could learn; it did not
    assert status.loc["rope", "train_mean"] > 0.99


def test_three_seeds_that_learned_do_not_decide_a_learn_rate() -> None:
    status = learn_status(_frame(seeds=3), "accuracy", 0.9).set_index("encoding")
    assert status.loc["rope", "status"] == OPEN and status.loc["t5", "status"] == OPEN


def test_family_excludes_unable_cells_and_keeps_cells_that_did_not_learn() -> None:
    table = comparisons(_frame(), "accuracy", threshold=0.9).set_index(["encoding", "eval_length"])
    assert table.attrs["family_size"] == 4  # rope and t5 at two lengths; none and alibi are known before any run
    assert table.loc[("rope", 128), "verdict"] == "better"  # wins all twelve seeds at 4x
    assert table.loc[("t5", 32), "verdict"] == "worse"  # at the train length the failure itself is a finding
    for encoding in ("none", "alibi"):
        assert table.loc[(encoding, 32), "verdict"] == NOT_JUDGED
        assert "by construction" in table.loc[(encoding, 32), "why"]
    assert table.loc[("t5", 128), "verdict"] == NOT_JUDGED
    assert "did not learn" in table.loc[("t5", 128), "why"]
    row = table.loc[("rope", 128)]
    assert row["wins"] == 12 and row["losses"] == 0 and row["low"] < row["estimate"] < row["high"]
    # the table's verdict is judge's, at alpha over the family
    frame = _frame()
    x = frame.query("encoding == 'rope' and eval_length == 128").sort_values("seed")["value"].to_numpy()
    y = frame.query("encoding == 'sinusoidal' and eval_length == 128").sort_values("seed")["value"].to_numpy()
    assert judge(x, y, metric="accuracy", alpha=0.05 / 4).verdict == row["verdict"]


def test_past_the_train_length_only_seeds_where_both_learned_are_paired() -> None:
    frame = _frame()
    failed = frame["encoding"].eq("rope") & frame["seed"].isin([0, 1]) & frame["eval_length"].eq(32)
    frame.loc[failed, "value"] = 0.5  # two rope seeds did not learn
    table = comparisons(frame, "accuracy", threshold=0.9).set_index(["encoding", "eval_length"])
    assert table.loc[("rope", 128), "n"] == 10 and table.loc[("rope", 32), "n"] == 12
    seeds = learned_by_seed(frame, "accuracy", 0.9)
    assert not seeds.query("encoding == 'rope' and seed == 0")["learned"].item()


def test_two_cells_that_both_failed_are_not_compared() -> None:
    frame = _frame()
    frame.attrs["baseline"] = {"encoding": "t5"}
    table = comparisons(frame, "accuracy", threshold=0.9).set_index(["encoding", "eval_length"])
    assert table.loc[("rope", 32), "verdict"] == "better"
    cells = {"sinusoidal": (0.99, 0.6), "a": (0.6, 0.5), "b": (0.55, 0.5)}
    frame = _frame(cells=cells)
    frame.attrs["baseline"] = {"encoding": "a"}
    table = comparisons(frame, "accuracy", threshold=0.9).set_index(["encoding", "eval_length"])
    assert table.loc[("b", 32), "verdict"] == NOT_JUDGED and "neither cell" in table.loc[("b", 32), "why"]


def test_failed_runs_count_as_not_learned() -> None:
    frame = _frame()
    crashed = frame["encoding"].eq("rope") & frame["seed"].eq(3)
    frame.loc[crashed, ["status", "value"]] = ["diverged", np.nan]
    seeds = learned_by_seed(frame, "accuracy", 0.9)
    assert not seeds.query("encoding == 'rope' and seed == 3")["learned"].item()
    assert learn_status(frame, "accuracy", 0.9).set_index("encoding").loc["rope", "learned"] == 11


def test_cells_needing_seeds_are_the_undecided_ones_and_open_learn_rates() -> None:
    frame = _frame(seeds=4)
    status = learn_status(frame, "accuracy", 0.9)
    table = comparisons(frame, "accuracy", threshold=0.9, status=status)
    needing = cells_needing_seeds(table, status).set_index("encoding")
    assert {"rope", "sinusoidal", "t5"} <= set(needing.index)  # undecided at four seeds
    assert "none" not in needing.index and "alibi" not in needing.index  # unable: more seeds decide nothing
    assert needing.loc["t5", "learn_open"]


def test_undecided_rows_say_what_would_decide_them() -> None:
    table = comparisons(_frame(seeds=4), "accuracy", threshold=0.9).set_index(["encoding", "eval_length"])
    row = table.loc[("rope", 128)]
    assert row["verdict"] == "undecided" and 0 < row["needed"] < 20
