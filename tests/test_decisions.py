"""Sequential verdicts over a results frame: the family, not-judged cells, decided and undecided rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablate.stats.decisions import NOT_JUDGED, cell_status, looks_of, sequential_comparisons

#: Train-length accuracy and accuracy at 4x per encoding (order, mean pooling, bidirectional).
CELLS = {"sinusoidal": (0.99, 0.60), "rope": (0.995, 0.90), "none": (0.50, 0.50), "alibi": (0.50, 0.51),
         "t5": (0.60, 0.55)}


def _frame(seeds: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for encoding, (short, long) in CELLS.items():
        for seed in range(seeds):
            for length, value in ((32, short), (128, long)):
                rows.append({"run_id": f"{encoding}-{seed}", "kind": "train", "task": "order", "encoding": encoding,
                             "pooling": "mean", "model.causal": False, "seed": seed, "metric": "accuracy",
                             "eval_length": length, "train_length": 32, "status": "ok", "higher_is_better": True,
                             "value": min(1.0, value + rng.normal(0, 0.003))})
    frame = pd.DataFrame(rows)
    frame.attrs.update(axes=["encoding"], baseline={"encoding": "sinusoidal"},
                       suite_config={"seeds": list(range(seeds))})
    return frame


def test_looks_of_a_range_and_a_list() -> None:
    assert looks_of({"min": 3, "max": 12, "step": 3}) == (3, 6, 9, 12)
    assert looks_of({"min": 3, "max": 10, "step": 3}) == (3, 6, 9, 10)
    assert looks_of({"min": 4, "max": 8}) == (4, 8)
    assert looks_of([0, 1, 2, 3, 4]) == (5,)


def test_cells_that_cannot_or_did_not_learn_are_named() -> None:
    status = cell_status(_frame(), "accuracy", 0.9).set_index("encoding")
    assert status.loc["rope", "learned"] and not status.loc["t5", "learned"]
    assert "permutation-invariant" in status.loc["none", "unable"]
    assert "cannot see direction" in status.loc["alibi", "unable"]
    assert pd.isna(status.loc["t5", "unable"])  # t5 could learn; it did not


def test_verdicts_family_and_not_judged_extrapolation() -> None:
    table = sequential_comparisons(_frame(), "accuracy", threshold=0.9).set_index(["encoding", "eval_length"])
    assert table.attrs["family_size"] == 8  # 4 encodings x 2 lengths, fixed whatever is judged
    assert table.loc[("rope", 128), "verdict"] == "better"
    assert table.loc[("rope", 32), "verdict"] == "equivalent"  # 0.995 vs 0.99 within +-0.02, tiny spread
    assert table.loc[("none", 32), "verdict"] == "worse"  # at the train length the failure itself is a finding
    for encoding in ("none", "alibi", "t5"):
        assert table.loc[(encoding, 128), "verdict"] == NOT_JUDGED
    assert "did not learn" in table.loc[("t5", 128), "why"]
    assert "by construction" in table.loc[("none", 128), "why"]
    low, high = table.loc[("rope", 128), ["low", "high"]]
    assert low > 0 and high > low


def test_two_cells_that_both_failed_are_not_compared() -> None:
    frame = _frame()
    frame.attrs["baseline"] = {"encoding": "none"}
    table = sequential_comparisons(frame, "accuracy", threshold=0.9).set_index(["encoding", "eval_length"])
    assert table.loc[("alibi", 32), "verdict"] == NOT_JUDGED
    assert table.loc[("rope", 32), "verdict"] == "better"
