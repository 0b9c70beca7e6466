"""The typed run config: an exact round trip of the plan's dicts, unchanged run ids, unknown keys refused."""

from __future__ import annotations

import copy

import pytest

from ablate.errors import SuiteError
from ablate.suite import load_plan, run_id
from ablate.suite.run_config import MeasurePoint, MeasureRun, ResolvedEval, TrainRun, parse_run, parse_train_run
from ablate.suite.schema import EvalSection, MeasureSection, TrainSection
from ablate.train import execute

#: ``ablate plan suites/quickstart.toml`` before the typed config existed: the ids must never move.
QUICKSTART_IDS = [
    "bc4853c17a01e60a", "0140c3dd4a05f4cf", "44339aeebfe77ceb", "796c479c039b7757", "c2bb4f8c84b1f591",
    "b6418c5155b0815b", "6fc7ea8deca6598a", "ee74436b81f321d2", "a1486d971f62e3aa", "428bad97b8345bf1",
    "78d8107dcc72b975", "e4b4cd9f641cfd56", "ae6b3d30e5498d7d", "fe93ed7cafd039e7", "047acf8a516751a5",
    "c5e5f3d7cc19e161", "0c3713d109932189", "a3fd249d7ca7431e", "abd9a65470839bc1", "97011731ba82fe91",
    "81013fb1a85f703c", "60f6a949847394f1", "406df24e39fc1f6d", "3905742643f64ca7", "f51d59e0d5cb5191",
    "cac6dfc69c803c49", "f2aa22ec0a294221", "e3abe4a89185dc06", "bc51b6eb8dd9588b", "fbcec6c9a2b76b10",
    "171d4ac22a91e59e", "ded6b2442c553486", "6216b27c6a47df9b", "cf97442057d3bc17", "872c54910bcd7546",
    "89d293424b1e8192", "a5c98dc99b2eaa78", "a1137e7ab8c775fa", "84b95d60825baba0", "cd7813f168fca145",
    "976b3ebe9afd002a", "7722be63acf18a16", "ef2c228befacaf55", "0f50a620dc563bdf", "9e3f82ba6826a401",
    "2e86e487c5e517a2", "a1dde40db281d8ad", "0ed65404d9698bce", "eccf391b32e8b0cf", "847d56774e5b6837",
    "71cc5c2b32da40dc", "af4507a789f4901b", "3c666fbd30e80bcb", "7950656f914ee284", "903db53a3fe9af58",
    "359680c3ce3b0cc1",
]


def test_quickstart_run_ids_are_unchanged():
    assert [run.run_id for run in load_plan("quickstart").runs] == QUICKSTART_IDS


@pytest.mark.parametrize("suite", ["quickstart", "nightly", "cost", "cost_long"])
def test_every_run_config_round_trips_exactly_and_hashes_to_its_id(suite):
    plan = load_plan(suite)
    kinds = set()
    for run in plan.runs:
        typed = parse_run(run.config)
        kinds.add(type(typed))
        assert typed.kind == run.kind
        assert typed.to_dict() == run.config
        assert run_id(typed.to_dict()) == run.run_id
    assert TrainRun in kinds


def test_the_typed_sections_hold_the_resolved_values():
    run = load_plan("quickstart").train_runs()[0]
    typed = parse_train_run(run.config)
    assert typed.train.lr == run.config["train"]["lr"] and isinstance(typed.train.betas, tuple)
    assert typed.eval.lengths == run.config["eval"]["lengths"] and isinstance(typed.model.causal, bool)
    assert typed.model.encoding == run.config["model"]["encoding"] and typed.seed == run.config["seed"]


def _train_config() -> dict:
    return copy.deepcopy(load_plan("quickstart").train_runs()[0].config)


@pytest.mark.parametrize("path, key", [(("train",), "lrr"), (("model",), "d_modle"), (("eval",), "batchs"),
                                       ((), "sede")])
def test_a_misspelled_key_in_a_stored_config_is_refused_with_a_suggestion(path, key):
    config = _train_config()
    node = config
    for part in path:
        node = node[part]
    node[key] = 1
    with pytest.raises(SuiteError) as caught:
        parse_run(config, "stored run abc")
    message = str(caught.value)
    assert "\n" not in message and "stored run abc" in message and key in message and "unknown key" in message


def test_a_wrong_value_kind_or_missing_key_is_refused():
    config = _train_config()
    config["train"]["lr"] = -1.0
    with pytest.raises(SuiteError, match=r"train\.lr"):
        parse_run(config)
    with pytest.raises(SuiteError, match="kind: expected one of"):
        parse_run({**_train_config(), "kind": "trian"})
    missing = _train_config()
    del missing["eval"]["lengths"]
    with pytest.raises(SuiteError, match="required key is missing"):
        parse_run(missing)
    unresolved = _train_config()
    unresolved["eval"]["multiples"] = [1, 2]  # a resolved config has lengths only
    with pytest.raises(SuiteError, match="multiples"):
        parse_run(unresolved)
    with pytest.raises(SuiteError, match="expected a train run"):
        parse_train_run(load_plan("quickstart").measure_runs()[0].config)


def test_a_measurement_run_keeps_only_its_train_length():
    run = load_plan("quickstart").measure_runs()[0]
    typed = parse_run(run.config)
    assert isinstance(typed, MeasureRun) and typed.train.length == run.config["train"]["length"]
    assert typed.to_dict()["train"] == {"length": typed.train.length}


def test_evaluation_lengths_are_derived_in_one_place():
    assert ResolvedEval.resolve(EvalSection(), 8).lengths == [8, 16, 32]  # default multiples 1, 2, 4
    assert ResolvedEval.resolve(EvalSection(multiples=[0.5, 1.5, 1.5]), 10).lengths == [5, 15]
    assert ResolvedEval.resolve(EvalSection(lengths=[64, 16, 16]), 8).lengths == [16, 64]
    assert "multiples" not in ResolvedEval.resolve(EvalSection(), 8).model_dump()


def test_a_measure_point_takes_its_settings_from_the_measure_section():
    section = MeasureSection(lengths=[512, 128, 128], device="cpu", threads=2, memory=False, min_run_time=0.1)
    point = MeasurePoint.of(section, mode="train_step", batch_size=4, dtype="bfloat16")
    assert point.model_dump() == {"mode": "train_step", "batch_size": 4, "dtype": "bfloat16", "device": "cpu",
                                  "threads": 2, "lengths": [128, 512], "memory": False, "min_run_time": 0.1}


def test_validation_batches_default_once_without_until():
    assert TrainSection().criterion.batches == 2
    assert TrainSection(until={"batches": 5}).criterion.batches == 5


def test_a_worker_records_a_config_that_does_not_parse_as_failed_with_the_one_line_reason():
    config = _train_config()
    config["train"]["stpes"] = 3
    record = execute("abc", "quickstart", "train", config, {})
    assert record.status == "failed" and record.metrics == [] and record.config is config
    assert record.reason.startswith("run abc: train.stpes: unknown key. Did you mean") and "Traceback" not in record.reason
