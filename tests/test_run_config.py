"""The typed run config: an exact round trip of the plan's dicts, unchanged run ids, unknown keys refused."""

from __future__ import annotations

import copy

import pytest

from ablate.errors import SuiteError
from ablate.suite import load_plan, run_id
from ablate.suite.run_config import MeasurePoint, MeasureRun, ResolvedEval, TrainRun, parse_run, parse_train_run
from ablate.suite.schema import EvalSection, MeasureSection, TrainSection
from ablate.train import execute

#: ``ablate plan suites/quickstart.toml``: reading the config through typed objects must never move
#: these ids. A new setting in the schema does move them (every run's config gains its default);
#: re-pin them then, in the same commit (last: the measurement protocol's settings).
QUICKSTART_IDS = [
    "e03d963543dcd37d", "11cb0de8e9af27ac", "5ec6bd6bcb902b91", "f78856d96eaf4713", "f42dbd163baec9c9",
    "47d17e1507babd01", "968a354de0a20a54", "0f052e8af48262b9", "b798874deab5884f", "9da367d52d20c311",
    "0221ee91927945cd", "73ba817337135a2a", "cb883feb497945ee", "549084f8df223bb8", "2eeb7e7b91015086",
    "919a2541a242308d", "da1925530da18618", "11a2002658b86fe3", "7d237aa923825bd9", "c26e5e3f05213673",
    "a882017f592fdad8", "74281820284c45d8", "69fb87b8f7feddb6", "cf673d1059a4693b", "27a21c4a6c8db366",
    "9125bd647bcde08d", "bd75e350dd23073c", "643a9d2c906bf086", "c676958a8022ed07", "e7d10e5d35ca240a",
    "5592d75b40fe182d", "d17a91e0a63014fb", "056b7b0a747b64d3", "76f1e3f735f4c28f", "db4b66ec84399b71",
    "29c94fb78c707b12", "763bcc39e01a48ab", "ca6a7678671fb5b9", "e67fb91d2a25ebbd", "e8b434c8a51d36a3",
    "2a22da1fef261243", "c64eff27e1a48efe", "6dab2f9d4b7f015e", "8ee3822e8c8fdf1a", "81c72fcd00111bed",
    "9cce30f4835d903f", "898531ec1ddd2b84", "18682d6d9d3cfb55", "9980808c4461aba2", "16019e2d8dc0b6e3",
    "4191aa763f94cac0", "995fde662a5ba3b4", "abd9179abd730710", "ad9c96e29496106a", "6507619f2ec816d7",
    "6d78200320cf264e",
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
