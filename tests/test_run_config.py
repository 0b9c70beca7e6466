"""The typed run config: an exact round trip of the plan's dicts, unchanged run ids, unknown keys refused."""

from __future__ import annotations

import copy

import pytest

from ablate.errors import SuiteError
from ablate.suite import load_plan, run_id
from ablate.suite.run_config import MeasurePoint, MeasureRun, ResolvedEval, TrainRun, parse_run, parse_train_run
from ablate.suite.schema import EvalSection, MeasureSection, TrainSection
from ablate.executors.worker import execute

#: ``ablate plan suites/quickstart.toml``: reading the config through typed objects must never move
#: these ids. A new setting in the schema does move them (every run's config gains its default);
#: re-pin them then, in the same commit (last: ``train.device`` and ``measure.device`` default to ``auto``).
QUICKSTART_IDS = [
    "f2133476819f57e9", "8bc8caf2b33862ce", "a3d01181dbc73bb4", "9a3417eb50dd7269", "c98e52f31d5adc88",
    "24d281d1a8b649f7", "1952b89762365781", "d3b0f6b05d7584ab", "c462565430b3dc2a", "e8e6bd545f8ec0a0",
    "c32044c9648668c5", "8c57ee6e43b76b03", "39b5727f9772f914", "2762b726a67aeda3", "84c5a83e7435659d",
    "725b74f70a7221db", "276104aadef9670e", "5587b75484254d25", "80646127c88e4141", "533cafa40a6e84e6",
    "9c31b8dc1f6e4057", "fc270a923a915231", "56c9f1b849363f5d", "f43ce1195d2897ab", "3b365c0196817d13",
    "ce51caddf7330b95", "9091b7d22a53abad", "a639fca90825c875", "5921d968d98f2beb", "aa5adfbc8fd2e1f4",
    "24582e465828b685", "98ab97fa91cef332", "bdb69e2c298757c3", "420240714e432127", "ae3f2cbca91f0146",
    "d3fe6e007b160e4a", "f8b4aa82887a85a7", "1a5161301941ebaa", "547860fda1be9352", "ffadbb239d11b2af",
    "af4aa7bba7eed3b5", "039248c62a083b3c", "0da03aaaef80f53b", "b687ac919182d0c8", "56716ef1b0a70298",
    "fe3698e13301f3d4", "9b1a4393166faeac", "bb139dd7f9a8c310", "f2aa2ae09303e7e4", "d86478ace15901f3",
    "78fd5f3fe6df738e", "3fcb47ff1572209e", "ff111397f9f00e77", "05ea1f1b3f3fc1fa", "40df936877681857",
    "b8295268788e3ab4",
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
    assert typed.model.encoding.model_dump() == run.config["model"]["encoding"] and typed.seed == run.config["seed"]
    assert typed.task.name == run.config["task"]["name"] and typed.model.pooling.name == run.config["model"]["pooling"]["name"]


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
