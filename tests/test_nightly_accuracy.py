"""Nightly accuracy regressions are judged in points: a synthetic 5-point drop is flagged, noise is not."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ablate import nightly
from ablate.nightly_accuracy import ACCURACY_BENCHMARK, Drop, accuracy_drops, compare_accuracy, read_accuracies

PARAMS = [["'rope'", "'alibi'"], ["'mean'"], ["16", "32"]]
COLUMNS = ["result", "params", "version", "started_at", "duration"]


def write_result(folder: Path, commit: str, date: int, accuracies: list[float | None], env: str = "env") -> Path:
    """An asv result file as asv 0.6 writes it (flat results in the order of the params' product)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{commit[:8]}-{env}.json"
    data = {"commit_hash": commit, "env_name": env, "date": date, "result_columns": COLUMNS, "version": 2,
            "results": {ACCURACY_BENCHMARK: [accuracies, PARAMS, "v", 0, 1.0],
                        "model.Forward.time_forward": [[0.01], [["'rope'"]], "v", 0, 1.0]}}
    path.write_text(json.dumps(data))
    return path


def test_accuracies_are_read_in_the_order_of_the_params_product(tmp_path):
    path = write_result(tmp_path, "a" * 40, 1, [0.9, 0.8, None, 0.5])
    values = read_accuracies(path)
    assert list(values) == ["track_accuracy('rope', 'mean', 16)", "track_accuracy('rope', 'mean', 32)",
                            "track_accuracy('alibi', 'mean', 16)", "track_accuracy('alibi', 'mean', 32)"]
    assert values["track_accuracy('rope', 'mean', 32)"] == 0.8 and math.isnan(values["track_accuracy('alibi', 'mean', 16)"])


def test_a_five_point_drop_is_flagged_where_a_ratio_would_not_be():
    before = {"a": 0.90, "b": 0.90, "c": 0.50, "d": 0.90, "e": math.nan}
    after = {"a": 0.85, "b": 0.88, "c": 0.55, "d": math.nan, "e": 0.2}
    assert 0.90 / 0.85 < 1.2  # asv --factor 1.2 on accuracy (the old rule) misses this drop
    (drop,) = accuracy_drops(before, after, 0.03)
    assert drop == Drop("a", 0.90, 0.85) and drop.points == pytest.approx(5.0)
    assert accuracy_drops(before, after, 0.05) == [drop]  # exactly the threshold counts
    assert accuracy_drops(before, after, 0.06) == []
    with pytest.raises(ValueError, match="fraction of 1"):
        accuracy_drops(before, after, 5)


def test_nightly_exits_1_on_a_synthetic_accuracy_drop(tmp_path, monkeypatch, capsys):
    old, new = "1" * 40, "2" * 40
    write_result(tmp_path / "box-cpu", old, 1, [0.90, 0.80, 0.70, 0.60])
    write_result(tmp_path / "box-cpu", new, 2, [0.85, 0.79, 0.70, 0.61])  # rope@16 lost 5 points
    monkeypatch.setattr(nightly, "results_dir", lambda: tmp_path)
    monkeypatch.setattr(nightly, "gpu_name", lambda: None)
    monkeypatch.setattr(nightly, "_git", lambda *args: new if args[0] == "rev-parse" else "")
    monkeypatch.setattr(nightly, "_is_ancestor", lambda commit, head: True)
    monkeypatch.setattr(nightly, "execute", lambda command, dry_run=False: (0, ""))  # asv itself finds nothing
    assert nightly.main(["--existing", "--machine", "box-cpu"]) == 1
    err = capsys.readouterr().err
    assert "1 accuracy drop(s) of 3 points or more" in err
    assert "0.900 -> 0.850 (-5.0 points)  track_accuracy('rope', 'mean', 16)" in err
    assert nightly.main(["--existing", "--machine", "box-cpu", "--accuracy-drop", "0.06"]) == 0
    assert compare_accuracy(tmp_path, "box-cpu", old, "3" * 40) == []  # no results for that commit
