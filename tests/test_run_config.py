"""The typed run config: an exact round trip of the plan's dicts, unchanged run ids, unknown keys refused."""

from __future__ import annotations

import copy

import pytest

from ablate.core.errors import SuiteError
from ablate.suite import load_plan, run_id
from ablate.suite.run_config import MeasurePoint, MeasureRun, ResolvedEval, TrainRun, parse_run, parse_train_run
from ablate.suite.schema import EvalSection, MeasureSection, TrainSection
from ablate.run.executors.worker import execute

#: ``ablate plan suites/quickstart.toml``: reading the config through typed objects must never move
#: these ids. A new setting in the schema does move them (every run's config gains its default);
#: re-pin them then, in the same commit (last: the cost sweep at one thread and 10 s of rounds per length).
QUICKSTART_IDS = [
    "f2133476819f57e9", "8bc8caf2b33862ce", "a3d01181dbc73bb4", "9a3417eb50dd7269", "c98e52f31d5adc88",
    "24d281d1a8b649f7", "4dc4349e6173bfcb", "1dc5096af2187751", "adc0f530f7520d97", "58a3689c4fb9c76b",
    "d3ea1b586ade240f", "96631cd3a25f1e80", "1952b89762365781", "d3b0f6b05d7584ab", "c462565430b3dc2a",
    "e8e6bd545f8ec0a0", "c32044c9648668c5", "8c57ee6e43b76b03", "3116c53c9e88da3f", "f0309c91b34718ce",
    "577f6496a4b08b8e", "a049c30e7d2f9e76", "7a7fd2d5b11aea0d", "dda23bdb511f6c55", "39b5727f9772f914",
    "2762b726a67aeda3", "84c5a83e7435659d", "725b74f70a7221db", "276104aadef9670e", "5587b75484254d25",
    "8501c030b9a13db0", "6f396834d9d360cd", "ae3cee06004eaeaa", "0150d4554d0695e8", "4335ffe4488df067",
    "f21d6e7a00907c70", "80646127c88e4141", "533cafa40a6e84e6", "9c31b8dc1f6e4057", "fc270a923a915231",
    "56c9f1b849363f5d", "f43ce1195d2897ab", "ae988d4497aed045", "069d621403cb8777", "f6337a2c445ff6fb",
    "6000aa36106525d9", "e217be79c1c51499", "6036eb4fd1c356ae", "3b365c0196817d13", "ce51caddf7330b95",
    "9091b7d22a53abad", "a639fca90825c875", "5921d968d98f2beb", "aa5adfbc8fd2e1f4", "bdd50fd6cac9c1d9",
    "5bde611b57e3c4a6", "875cc8e31dd8e2a0", "0d8f03591ddb52cd", "33f3e2fb761dcd2d", "1018609bed2f4950",
    "24582e465828b685", "98ab97fa91cef332", "bdb69e2c298757c3", "420240714e432127", "ae3f2cbca91f0146",
    "d3fe6e007b160e4a", "0bc94a899f9a4660", "939fed27c1bd1538", "8ad4264d6b69956b", "6c21f22f112085ae",
    "1646b893590b00f6", "07aca1e534b789a4", "f8b4aa82887a85a7", "1a5161301941ebaa", "547860fda1be9352",
    "ffadbb239d11b2af", "af4aa7bba7eed3b5", "039248c62a083b3c", "2bdcf90a02b7ca5e", "e284e3c63410e425",
    "57e1eeea5e53c30f", "ec5820f0f81b1ac7", "f36da5f171db2fbe", "f2a613e55d41b55d", "0da03aaaef80f53b",
    "b687ac919182d0c8", "56716ef1b0a70298", "fe3698e13301f3d4", "9b1a4393166faeac", "bb139dd7f9a8c310",
    "6702043831f1071a", "33a8ecfe413bf3ce", "9f4f36200beb2c3e", "31d1b03da66ac300", "80e54ea36209ffe6",
    "883299a249469ea8", "5e4cb74b069d840c", "bc670bf96dbebfe9", "3cb3d93e707b9177", "b1eb3287c8143476",
    "33189c9676d98928", "1599f2486b4c8b1d", "ab69fce01740540c", "431f98d32a145716",
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
    section = MeasureSection(lengths=[512, 128, 128], device="cpu", threads=2, memory=False, min_run_time=0.1,
                             protocol="instructions", budget_s=7.0)
    point = MeasurePoint.of(section, mode="train_step", batch_size=4, dtype="bfloat16")
    assert point.model_dump() == {"mode": "train_step", "batch_size": 4, "dtype": "bfloat16", "device": "cpu",
                                  "threads": 2, "lengths": [128, 512], "memory": False, "protocol": "instructions",
                                  "min_run_time": 0.1, "budget_s": 7.0, "precision": 0.05, "sample_s": 0.02}


def test_validation_batches_default_once_without_until():
    assert TrainSection().criterion.batches == 2
    assert TrainSection(until={"batches": 5}).criterion.batches == 5


def test_a_worker_records_a_config_that_does_not_parse_as_failed_with_the_one_line_reason():
    config = _train_config()
    config["train"]["stpes"] = 3
    record = execute("abc", "quickstart", "train", config, {})
    assert record.status == "failed" and record.metrics == [] and record.config is config
    assert record.reason.startswith("run abc: train.stpes: unknown key. Did you mean") and "Traceback" not in record.reason
