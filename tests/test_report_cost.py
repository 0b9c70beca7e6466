"""The cost section: ratios to the baseline paired by round, with an interval and one verdict (synthetic rounds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablate.analysis.report import write_report
from ablate.analysis.report.cost import cost_verdicts, ratio_text
from conftest_report import make_frame

#: Time per call relative to sinusoidal: rope is 25% slower, alibi the same.
TRUE_RATIO = {"sinusoidal": 1.0, "rope": 1.25, "alibi": 1.0}


def synthetic_rounds(frame: pd.DataFrame, rounds: int = 40, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """Rounds of every ok measurement: a drift shared by the round (cancels in a pair) times per-call noise."""
    rng = np.random.default_rng(seed)
    measured = frame[frame["kind"].eq("measure") & frame["status"].eq("ok") & frame["metric"].eq("time_median_s")]
    records = []
    for length, group in measured.groupby("eval_length"):
        drift = np.exp(rng.normal(0, 0.3, rounds))  # large, shared within a round: interleaving cancels it
        for row in group.to_dict("records"):
            base = 1e-3 * length / 128 * TRUE_RATIO.get(row["encoding"], 1.0)
            values = base * drift * np.exp(rng.normal(0, noise, rounds))
            records += [{"run_id": row["run_id"], "metric": "time_median_s", "eval_length": length, "round": i,
                         "value": v, "position": -1, "session": f"s{length}", "encoding": row["encoding"]}
                        for i, v in enumerate(values)]
    return pd.DataFrame.from_records(records)


def test_paired_rounds_decide_what_the_drift_would_hide():
    frame = make_frame()
    verdicts = cost_verdicts(frame, synthetic_rounds(frame), axis="encoding",
                             baseline={"encoding": "sinusoidal", "pooling": "mean"})
    time = verdicts[verdicts["metric"].eq("time_median_s")].set_index(["encoding", "eval_length"])
    assert set(time["paired_by"]) == {"rounds"} and set(time["n"]) == {40}
    assert time.loc[("rope", 512), "verdict"] == "worse"
    assert time.loc[("rope", 512), "low"] < 1.25 < time.loc[("rope", 512), "high"]
    assert time.loc[("alibi", 128), "verdict"] == "equivalent"
    assert ("alibi", 2048) not in time.index  # out of memory there: nothing to compare
    assert time.loc[("rope", 128), "family"] == 2  # rope and alibi at one length and measure point
    memory = verdicts[verdicts["metric"].eq("peak_memory_bytes")]
    assert set(memory["paired_by"]) == {"seeds"} and set(memory["verdict"]) == {"undecided"}  # one repeat


def test_without_interleaving_the_same_numbers_are_undecided():
    frame = make_frame()
    rounds = synthetic_rounds(frame)
    # Shuffle the baseline's rounds: pairs no longer share their round's drift.
    shuffled = rounds.copy()
    base = shuffled["run_id"].str.startswith("m-sinusoidal")
    shuffled.loc[base, "round"] = np.random.default_rng(5).permutation(shuffled.loc[base, "round"].to_numpy())
    verdicts = cost_verdicts(frame, shuffled, axis="encoding", baseline={"encoding": "sinusoidal"})
    rope = verdicts[verdicts["metric"].eq("time_median_s") & verdicts["encoding"].eq("rope")]
    assert set(rope["verdict"]) == {"undecided"}


def test_the_report_shows_each_ratio_with_its_interval_and_verdict(tmp_path):
    frame = make_frame()
    markdown = write_report(frame, tmp_path, rounds=synthetic_rounds(frame))["markdown"].read_text(encoding="utf-8")
    cost = markdown[markdown.index("## Cost"):]
    rope = next(line for line in cost.splitlines() if line.startswith("| rope |"))
    assert rope.count("▼ worse") == 3 and "1.2" in rope
    alibi = next(line for line in cost.splitlines() if line.startswith("| alibi |"))
    assert alibi.count("≈ same") == 2 and alibi.rstrip().endswith("| oom |")
    assert "paired by rounds" in cost


def test_ratio_text():
    row = {"n": 12, "estimate": 1.3141, "low": 1.22, "high": 1.40, "verdict": "worse"}
    assert ratio_text(row) == "1.31× [1.22, 1.40] ▼ worse"
    assert ratio_text({**row, "low": 0.0, "high": float("inf"), "verdict": "undecided"}) == \
        "1.31× [not yet bounded] ? undecided"
    assert ratio_text({**row, "n": 0}) == "n/a"
