"""Loss and accuracy by token position: the tally's arithmetic, and what a run stores."""

from __future__ import annotations

import math

import pytest
import torch

from ablate.cli import main
from ablate.results.positions.frame import load_positions
from ablate.results.positions.tally import PositionTally
from ablate.results.store import load_results
from ablate.tasks.base import Batch


def _batch(loss_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, Batch]:
    # two sequences of three positions over a vocabulary of 2; logits favour token 0 everywhere
    logits = torch.tensor([[[2.0, 0.0], [2.0, 0.0], [2.0, 0.0]],
                           [[2.0, 0.0], [2.0, 0.0], [2.0, 0.0]]])  # (B, L, V)
    targets = torch.tensor([[0, 1, 0], [0, 0, 1]])
    return logits, Batch(torch.zeros(2, 3, dtype=torch.long), targets, None, loss_mask)


def test_the_tally_averages_each_position_over_the_batch():
    right, wrong = math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(2.0))  # the NLL of each prediction
    tally = PositionTally("lm")
    tally.add(*_batch())
    rows = tally.rows(3)
    assert [r.position for r in rows] == [0, 1, 2] and {r.eval_length for r in rows} == {3}
    assert [r.tokens for r in rows] == [2, 2, 2]
    assert [r.accuracy for r in rows] == [1.0, 0.5, 0.5]
    assert rows[0].loss == pytest.approx(right) and rows[1].loss == pytest.approx((right + wrong) / 2)
    tally.add(*_batch())  # a second batch: the sums grow, the means stay
    assert [r.tokens for r in tally.rows(3)] == [4, 4, 4] and tally.rows(3)[1].accuracy == 0.5


def test_sequence_tasks_count_only_answer_positions_and_classification_none():
    mask = torch.tensor([[False, True, True], [False, False, True]])
    tally = PositionTally("sequence")
    tally.add(*_batch(mask))
    rows = tally.rows(3)
    assert [(r.position, r.tokens, r.accuracy) for r in rows] == [(1, 1, 0.0), (2, 2, 0.5)]
    lm = PositionTally("lm")  # a language model scores every position, whatever the final-token mask says
    lm.add(*_batch(mask))
    assert [r.tokens for r in lm.rows(3)] == [2, 2, 2]
    classification = PositionTally("classification")
    classification.add(torch.zeros(2, 2), Batch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long)))
    assert classification.rows(3) == []


COPY_SUITE = """name = "copy-positions"
seeds = [0]
task = { name = "copy" }
[model]
d_model = 16
num_heads = 2
num_layers = 1
[train]
steps = 3
batch_size = 8
length = 10
[eval]
lengths = [10, 20]
batches = 2
batch_size = 8
[grid]
encoding = ["rope", "alibi"]
"""


def test_a_sequence_run_stores_positions_that_add_up_to_its_token_accuracy(tmp_path):
    suite = tmp_path / "copy.toml"
    suite.write_text(COPY_SUITE)
    assert main(["run", str(suite), "--out", str(tmp_path), "--no-report"]) == 0
    positions, results = load_positions(tmp_path / "copy-positions"), load_results(tmp_path / "copy-positions")
    assert set(positions["eval_length"]) == {10, 20} and set(positions["encoding"]) == {"rope", "alibi"}
    assert positions["position"].max() < 20
    for (run_id, length), rows in positions.groupby(["run_id", "eval_length"]):
        metric = results.query("run_id == @run_id and eval_length == @length and metric == 'token_accuracy'")
        pooled = (rows["accuracy"] * rows["tokens"]).sum() / rows["tokens"].sum()
        assert pooled == pytest.approx(metric["value"].item())  # the same answer tokens, counted by position


def test_results_without_positions_load_as_an_empty_frame(tmp_path):
    suite = tmp_path / "copy.toml"
    suite.write_text(COPY_SUITE.replace('task = { name = "copy" }', 'task = { name = "parity" }')
                     .replace("length = 10", "length = 6").replace("[10, 20]", "[6]"))
    assert main(["run", str(suite), "--out", str(tmp_path), "--no-report"]) == 0
    assert load_positions(tmp_path / "copy-positions").empty


def test_the_report_draws_loss_by_position_for_each_learned_cell(tmp_path):
    suite = tmp_path / "copy.toml"
    suite.write_text(COPY_SUITE.replace('"alibi"]', '"alibi"]\n[report]\nlearned_threshold = 0.0'))
    assert main(["run", str(suite), "--out", str(tmp_path)]) == 0
    markdown = (tmp_path / "copy-positions" / "report" / "report.md").read_text(encoding="utf-8")
    section = markdown.split("## By position")[1].split("\n## ")[0]
    assert "Accuracy at each token position of the longest evaluation length (20)" in section
    assert (tmp_path / "copy-positions" / "report" / "figures" / "by-position-0.png").is_file()
