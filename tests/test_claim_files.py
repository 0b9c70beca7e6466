"""Claim files from anywhere: ``ablate reproduce PATH.toml`` runs one, ``ablate validate PATH.toml`` checks one."""

from __future__ import annotations

from pathlib import Path

import pytest

import ablate.claims as claims
from ablate import load_results
from ablate.cli import main

TINY_CLAIM = """
[claim]
id = "tiny-parity"
title = "A tiny claim kept outside the package"
paper = "Nobody et al."
year = 2024
where = "Table 0"
statement = "A one-layer model learns parity at length 8 in two steps."

[suite]
description = "parity, two steps, three seeds"
seeds = [0, 1, 2]
task = { name = "parity" }

[suite.model]
d_model = 16
num_heads = 2
num_layers = 1

[suite.train]
steps = 2
batch_size = 8
length = 8

[suite.eval]
lengths = [8]
batches = 1
batch_size = 16

[suite.grid]
encoding = ["none"]
pooling = ["mean"]

[[expect]]
predicate = "value"
where = { encoding = "none" }
metric = "accuracy"
length = 8
op = ">="
threshold = 0.9
"""


@pytest.fixture
def claim_file(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "my_claim.toml"
    path.parent.mkdir()
    path.write_text(TINY_CLAIM)
    return path


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_reproduce_runs_a_claim_file_from_a_path(claim_file: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    reports: list[Path] = []
    monkeypatch.setattr(claims, "write_report", lambda frame, out, **_: reports.append(out))  # the report has its own tests
    results = tmp_path / "results"
    assert main(["reproduce", str(claim_file), "--out", str(results)]) == 0
    frame = load_results(results / "tiny-parity")
    assert frame["run_id"].nunique() == 3 and set(frame["seed"]) == {0, 1, 2}
    assert reports == [results / "tiny-parity" / "report"]
    verdicts = (results / "verdicts.md").read_text()
    assert "A tiny claim kept outside the package" in verdicts and "Nobody et al. (2024), Table 0" in verdicts
    assert "tiny-parity" in capsys.readouterr().out


def test_validate_checks_a_claim_file_and_expands_its_suite(claim_file: Path, capsys) -> None:
    assert main(["validate", str(claim_file)]) == 0
    assert "claim tiny-parity, 1 predicates, 3 runs at scale small" in capsys.readouterr().out
    bad = claim_file.with_name("bad.toml")
    bad.write_text(TINY_CLAIM.replace('predicate = "value"', 'predicate = "valeu"'))
    assert "expect[0]: predicate" in _error_line(capsys, ["validate", str(bad)])
    broken_suite = claim_file.with_name("broken.toml")
    broken_suite.write_text(TINY_CLAIM.replace("num_layers = 1", "num_layer = 1"))
    assert "num_layer" in _error_line(capsys, ["validate", str(broken_suite)])
    assert "claim file" in _error_line(capsys, ["validate", str(claim_file), "--set", "train.steps=3"])


def test_validate_builds_each_model_so_a_component_refuses_before_training(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "suite.toml"
    # A causal T5 bias keeps distances 0..15 in its 16 exact buckets: max_distance = 16 leaves no log buckets.
    suite.write_text('task = { name = "copy" }\n[model]\ncausal = true\nd_model = 16\nnum_heads = 2\n'
                     '[grid]\nencoding = ["rope", { name = "t5", max_distance = 16 }]\n')
    line = _error_line(capsys, ["validate", str(suite)])
    assert "max_distance=16 must exceed the 16 exact buckets" in line and "t5" in line
    suite.write_text(suite.read_text().replace("max_distance = 16", "max_distance = 32"))
    assert main(["validate", str(suite)]) == 0


def test_reproduce_names_what_it_expected(claim_file: Path, tmp_path: Path, capsys) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text('task = { name = "parity" }\n[grid]\nencoding = ["none"]\n')
    results = ["--out", str(tmp_path / "results")]
    assert "not a claim file" in _error_line(capsys, ["reproduce", str(suite), *results])
    assert "no such claim file" in _error_line(capsys, ["reproduce", str(tmp_path / "missing.toml"), *results])
    line = _error_line(capsys, ["reproduce", "alibi-lmm", *results])
    assert "Did you mean 'alibi-lm'" in line and "path of a claim file" in line
    assert not (tmp_path / "results").exists()  # nothing ran
