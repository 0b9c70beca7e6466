"""Registries (discovery, suggestions, executors) and the one implementation of each shared check."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from ablate.core.devices import autocast, check_device_name, resolve_device
from ablate.core.dims import head_dim
from ablate.core.errors import UnsupportedRun
from ablate.model.encodings import create_encoding
from ablate.run.executors import EXECUTORS, create_executor
from ablate.measure.workload import check_arguments
from ablate.core.metrics import higher_is_better
from ablate.model.transformer import ModelConfig, TransformerModel
from ablate.model.pooling import create_pooling
from ablate.tasks import create_task
from ablate.core.registry import Registry, UnknownNameError, did_you_mean
from ablate.suite.schema import MeasureSection, ModelSection, TrainSection


def test_register_build_and_suggest() -> None:
    registry: Registry[object] = Registry("widget")

    @registry.register("alibi")
    class Alibi:
        def __init__(self, slope: float = 1.0) -> None:
            self.slope = slope

    assert registry.names() == ["alibi"] and "alibi" in registry and len(registry) == 1
    assert registry.build("alibi", slope=2.0).slope == 2.0
    with pytest.raises(UnknownNameError, match=r"unknown widget 'allibi'\. Did you mean 'alibi'\?"):
        registry.get("allibi")
    with pytest.raises(UnknownNameError, match="Known widgets: alibi"):
        registry.get("zzz")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("alibi")(Alibi)


@pytest.mark.parametrize("build, message", [
    (lambda: create_encoding({"name": "rope", "factr": 4}, d_model=16, num_heads=2, causal=False),
     r"encoding 'rope' has no parameter 'factr'\. Did you mean 'factor'\? Its parameters: .*factor"),
    (lambda: create_pooling({"name": "attention", "num_querys": 2}, d_model=16),
     r"pooling 'attention' has no parameter 'num_querys'\. Did you mean 'num_queries'\?"),
    (lambda: create_task({"name": "parity", "vocabb": 2}), r"task 'parity' has no parameter 'vocabb'\."),
    (lambda: create_executor("process", worker=3), r"executor 'process' has no option 'worker'\."),
    (lambda: create_task({"name": "needle"}) and Registry("widget").build(3), r"a component is a name or a table"),
], ids=["encoding", "pooling", "task", "executor", "spec"])
def test_every_registry_validates_parameters_the_same_way(build, message) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_build_names_a_missing_required_parameter() -> None:
    registry: Registry[object] = Registry("widget")

    @registry.register("gear")
    class Gear:
        def __init__(self, *, teeth: int) -> None:
            self.teeth = teeth

    with pytest.raises(ValueError, match="widget 'gear': missing a required argument: 'teeth'"):
        registry.build("gear")
    assert registry.build({"name": "gear", "teeth": 12}).teeth == 12


def test_did_you_mean_is_the_one_phrasing() -> None:
    assert did_you_mean("allibi", ["alibi", "rope"]) == " Did you mean 'alibi'?"
    assert did_you_mean("lr_rate", ["lr", "lr_rate2", "lr_rates"], n=2) == " Did you mean 'lr_rates' or 'lr_rate2'?"
    assert did_you_mean("zzz", ["alibi"]) == ""


def test_executors_are_found_and_reject_an_unknown_option() -> None:
    assert EXECUTORS.names()[:2] == ["local", "process"] and "ray" in EXECUTORS
    assert create_executor("local", threads=2).threads == 2
    with pytest.raises(ValueError, match=r"executor 'process' has no option 'worker'\. Did you mean 'workers'\?"):
        create_executor("process", worker=3)
    with pytest.raises(ValueError, match="has no option 'address'"):
        create_executor("local", address="auto")
    with pytest.raises(UnknownNameError, match="Did you mean 'local'"):
        create_executor("locall")


def test_one_heads_check_everywhere() -> None:
    assert head_dim(64, 4) == 16
    message = r"d_model=30 must be divisible by num_heads=4 \(e\.g\. num_heads=3\)"
    with pytest.raises(ValueError, match=message):
        head_dim(30, 4)
    with pytest.raises(ValueError, match=message):
        TransformerModel(ModelConfig(vocab_size=2, num_classes=2, d_model=30, num_heads=4))
    with pytest.raises(ValueError, match=message):
        create_encoding("alibi", d_model=30, num_heads=4, causal=False)
    with pytest.raises(ValueError, match=message):
        create_pooling({"name": "attention", "num_queries": 1}, d_model=30, num_heads=4)
    with pytest.raises(ValidationError, match=message):
        ModelSection(d_model=30, num_heads=4)


def test_the_model_section_defaults_are_the_model_config_defaults() -> None:
    section = ModelSection()
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    for name in ModelSection.model_fields:
        if name != "causal":  # "auto": the task decides
            assert getattr(section, name) == defaults[name], name


def test_a_metric_direction_comes_from_the_registry_else_the_frame() -> None:
    assert higher_is_better("accuracy") and not higher_is_better("loss")
    frame = pd.DataFrame({"metric": ["custom_score"], "higher_is_better": [False]})
    assert higher_is_better("custom_score", frame) is False
    assert higher_is_better("accuracy", frame) is True
    with pytest.raises(UnknownNameError, match="unknown metric 'custom_score'"):
        higher_is_better("custom_score")


def test_one_device_check_and_one_float16_check() -> None:
    message = r"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'gpu'"
    for check in (lambda: TrainSection(device="gpu"), lambda: MeasureSection(device="gpu"),
                  lambda: resolve_device("gpu")):
        with pytest.raises(ValueError, match=message):
            check()
    assert resolve_device("auto").type in ("cpu", "cuda") and check_device_name("cuda:3") == "cuda:3"
    with pytest.raises(UnsupportedRun, match="float16 is only supported"):
        autocast(torch.device("cpu"), "float16")
    with pytest.raises(UnsupportedRun, match="float16 is only supported"):
        check_arguments("forward", "float16", torch.device("cpu"), 1, 1)
    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedRun, match="CUDA is not available"):
            resolve_device("cuda")
