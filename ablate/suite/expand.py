"""Expanding a suite into a plan: grid x seeds (+ include, - exclude) -> RunSpecs with stable ids."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from ablate.model.encodings import ENCODINGS
from ablate.model.pooling import POOLINGS
from ablate.suite.components import check_component, label, normalize
from ablate.suite.load import SuiteError, canonical_path, format_validation_error, set_path
from ablate.suite.run_config import MeasurePoint, ResolvedEval, RunConfig, parse_run
from ablate.suite.schema import SECTIONS, EvalSection, SuiteFile, seed_values
from ablate.tasks import TASKS

#: Paths whose values are registered components (compared by name in rules).
COMPONENT_PATHS = ("task", "model.encoding", "model.pooling")


@dataclass(frozen=True)
class RunSpec:
    """One run: a fully resolved config and its stable id.

    Attributes:
        run_id: first 16 hex digits of the SHA-256 of the canonical JSON config.
        suite: the suite's name (not part of the id: the same config is the same run).
        kind: ``"train"`` (train + evaluate at every length) or ``"measure"``.
        config: ``{"kind", "task", "model", "train", "eval" | "measure", "seed"}``.
        axes: the grid values of this run as display labels (for tables/progress).
    """

    run_id: str
    suite: str
    kind: str
    config: dict[str, Any]
    axes: dict[str, Any] = field(default_factory=dict)

    def typed(self) -> RunConfig:
        """The typed form of :attr:`config` (:func:`~ablate.suite.run_config.parse_run`)."""
        return parse_run(self.config, f"run {self.run_id}")

    def describe(self) -> str:
        """One line for progress bars and logs."""
        parts = [f"{k}={v}" for k, v in self.axes.items()]
        return f"{self.kind} {' '.join(parts)} seed={self.config['seed']}"


@dataclass
class Plan:
    """A suite expanded into runs."""

    suite: SuiteFile
    path: Path
    runs: list[RunSpec]
    axes: list[str]
    baseline: dict[str, Any]

    @property
    def name(self) -> str:
        return self.suite.name

    def train_runs(self) -> list[RunSpec]:
        return [r for r in self.runs if r.kind == "train"]

    def measure_runs(self) -> list[RunSpec]:
        return [r for r in self.runs if r.kind == "measure"]


def run_id(config: dict[str, Any]) -> str:
    """Stable id: hash of the canonical JSON (sorted keys, no whitespace) of ``config``."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def get_path(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def axis_label(path: str, value: Any) -> Any:
    """What a table shows for an axis value (component labels, plain values otherwise)."""
    if path in COMPONENT_PATHS or isinstance(value, dict):
        return label(value)
    return value


def _rule_matches(rule: dict[str, Any], config: dict[str, Any]) -> bool:
    for path, wanted in rule.items():
        actual = config["seed"] if path == "seed" else get_path(config, path)
        if path in COMPONENT_PATHS:
            actual_spec = normalize(actual)
            if isinstance(wanted, str):
                if actual_spec["name"] != wanted:
                    return False
            elif normalize(wanted) != actual_spec:
                return False
        elif actual != wanted:
            return False
    return True


def _canonical_rule(rule: dict[str, Any], where: str) -> dict[str, Any]:
    return {("seed" if key == "seed" else canonical_path(key, f"{where}.{key}")): value for key, value in rule.items()}


def _task_traits(task_spec: dict[str, Any], where: str) -> tuple[str, bool]:
    try:
        check_component(TASKS, task_spec, where)
    except ValueError as error:
        raise SuiteError(str(error)) from None
    task_class = TASKS.get(task_spec["name"])
    return task_class.kind, task_class.default_causal


def resolve(config: dict[str, Any], source: str) -> dict[str, Any]:
    """Normalise components, fill ``auto`` values and validate one run's config."""
    config["task"] = normalize(config["task"])
    kind, default_causal = _task_traits(config["task"], f"{source}: task")
    model = config["model"]
    for key, registry in (("encoding", ENCODINGS), ("pooling", POOLINGS)):
        try:
            model[key] = normalize(model[key])
            check_component(registry, model[key], f"{source}: model.{key}")
        except ValueError as error:
            raise SuiteError(str(error)) from None
    if model["causal"] == "auto":
        model["causal"] = default_causal
    if kind in ("sequence", "lm"):
        model["pooling"] = {"name": "none"}  # token-level tasks predict every position
    elif model["pooling"]["name"] == "none":
        raise SuiteError(f"{source}: pooling 'none' is token-level; task {config['task']['name']!r} needs a pooled vector")
    for section, schema in SECTIONS.items():
        if section not in config:
            continue
        try:
            config[section] = schema.model_validate(config[section]).model_dump(mode="json")
        except ValidationError as error:
            raise SuiteError(format_validation_error(source, error, schema).replace(f"{source}: ", f"{source}: {section}.")) from None
    if "eval" in config:
        section = EvalSection.model_validate(config["eval"])
        config["eval"] = ResolvedEval.resolve(section, config["train"]["length"]).model_dump(mode="json")
    return config


def _combinations(suite: SuiteFile, source: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Grid axes (canonical paths) and one ``{path: value}`` per grid point, then the includes."""
    axes = [canonical_path(axis, f"{source}: grid.{axis}") for axis in suite.grid]
    combos = [dict(zip(axes, values)) for values in itertools.product(*suite.grid.values())]
    includes = [_canonical_rule(rule, f"{source}: include[{i}]") for i, rule in enumerate(suite.include)]
    return axes, combos + includes


def expand(suite: SuiteFile, path: Path) -> Plan:
    """Expand ``suite`` into a :class:`Plan`; raises :class:`SuiteError` before anything runs."""
    source = str(path)
    axes, combos = _combinations(suite, source)
    excludes = [_canonical_rule(rule, f"{source}: exclude[{i}]") for i, rule in enumerate(suite.exclude)]
    base = {
        "task": suite.task,
        "model": suite.model.model_dump(mode="json"),
        "train": suite.train.model_dump(mode="json"),
        "eval": suite.eval.model_dump(mode="json"),
    }
    runs: list[RunSpec] = []
    seen: set[str] = set()
    display_axes = list(dict.fromkeys(axes + [k for combo in combos for k in combo if k != "seed"]))
    for combo in combos or [{}]:
        seeds = [combo["seed"]] if "seed" in combo else seed_values(suite.seeds)
        for seed in seeds:
            config = copy.deepcopy(base)
            for key, value in combo.items():
                if key != "seed":
                    set_path(config, key, copy.deepcopy(value))
            config["seed"] = seed
            config = resolve(config, source)
            if any(_rule_matches(rule, config) for rule in excludes):
                continue
            config = {"kind": "train", **config}
            identifier = run_id(config)
            if identifier in seen:
                continue  # e.g. a pooling axis on a token-level task collapses to one run
            seen.add(identifier)
            labels = {a: axis_label(a, get_path(config, a)) for a in display_axes}
            runs.append(RunSpec(identifier, suite.name, "train", config, labels))
    runs += list(_measure_runs(suite, runs))
    baseline = {a: axis_label(a, suite.grid[_alias_of(suite, a)][0]) for a in axes}
    baseline.update(suite.report.baseline)
    return Plan(suite=suite, path=path, runs=runs, axes=display_axes, baseline=baseline)


def _alias_of(suite: SuiteFile, path: str) -> str:
    for axis in suite.grid:
        if canonical_path(axis, "grid") == path:
            return axis
    raise KeyError(path)


def _measure_runs(suite: SuiteFile, train_runs: list[RunSpec]) -> Iterator[RunSpec]:
    """One measurement run per distinct model (seed-independent) x mode x batch size x dtype x repeat.

    Repeats are the outer loop, so every model is measured once before any is measured
    again; a repeat's index is its seed (``0`` without repeats, as before they existed).
    """
    if suite.measure is None:
        return
    measure = suite.measure
    seen: set[str] = set()
    combinations = itertools.product(range(measure.repeats), train_runs, measure.modes, measure.batch_sizes,
                                     measure.dtypes)
    for repeat, run, mode, batch_size, dtype in combinations:
        config = {
            "kind": "measure",
            "task": run.config["task"],
            "model": run.config["model"],
            "train": {"length": run.config["train"]["length"]},
            "measure": MeasurePoint.of(measure, mode=mode, batch_size=batch_size, dtype=dtype).model_dump(mode="json"),
            "seed": repeat,
        }
        identifier = run_id(config)
        if identifier in seen:
            continue
        seen.add(identifier)
        axes = {k: v for k, v in run.axes.items() if k != "seed"}
        axes.update({"measure.mode": mode, "measure.batch_size": batch_size, "measure.dtype": dtype})
        yield RunSpec(identifier, suite.name, "measure", config, axes)
