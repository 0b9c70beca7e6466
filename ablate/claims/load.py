"""A claim file, read and checked before any training: a user's format, as strict as a suite.

A claim file has three parts: ``[claim]`` (the paper, where, the claim in one
sentence), ``[suite]`` (an ordinary suite, with optional ``[scales.<name>]``
overrides) and ``[[expect]]`` (predicates, :mod:`ablate.claims.predicates`).
:func:`load_claim` refuses, with one line naming the file, the entry and the key,
and a suggestion: unknown keys in ``[claim]`` or ``[[expect]]``; unknown or missing
predicate parameters; metrics, cells (``where`` values) or lengths that the suite
does not produce; operators and statistics that do not exist; thresholds outside
the metric's range; and predicates whose threshold holds or fails by construction
(:mod:`ablate.claims.bounds`).
"""

from __future__ import annotations

import hashlib
import inspect
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.claims.bounds import by_construction
from ablate.claims.predicates import OPS, PREDICATES, STATISTICS, cells_of
from ablate.core.metrics import METRICS
from ablate.core.registry import did_you_mean
from ablate.results.store import axis_column
from ablate.suite import Plan, SuiteError, expand, suites_dir
from ablate.suite.load import suite_from_dict
from ablate.tasks import TASKS
from ablate.run.train import EVAL_METRICS

CLAIM_KEYS = {"id": True, "title": True, "paper": True, "year": True, "where": True, "statement": True,
              "notes": False}
TOP_KEYS = ("claim", "suite", "expect", "scales")
#: Metrics every training run reports beside its task's evaluation metrics.
TRAIN_METRICS = ("train_loss", "train_time_s", "eval_time_s", "steps_used", "criterion_met")
MEASURE_METRICS = ("tokens_per_s", "time_median_s", "time_iqr_s", "peak_memory_bytes", "peak_reserved_bytes",
                   "instructions")


@dataclass
class Claim:
    """A claim file, loaded and checked."""

    id: str
    path: Path
    title: str
    paper: str
    year: int
    where: str
    statement: str
    suite: dict[str, Any]
    expect: list[dict[str, Any]]
    scales: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: str = ""
    #: SHA-256 of the file's bytes: the thresholds a verdict was reached with.
    digest: str = ""

    @property
    def source(self) -> str:
        return f"{self.paper} ({self.year}), {self.where}"

    def plan(self, scale: str = "small") -> Plan:
        """The claim's suite expanded at ``scale`` (``small`` is the file's own suite)."""
        if scale != "small" and scale not in self.scales:
            raise SuiteError(f"{self.path}: no [scales.{scale}] table; available: small, "
                             f"{', '.join(self.scales) or '(none)'}")
        overrides = [f"{key}={_toml_value(value)}" for key, value in self.scales.get(scale, {}).items()]
        # Claims whose [suite] shares a name share their results (and checkpoints): trained once,
        # each claim's evaluation-only variants are evaluated from the same runs.
        name = self.suite.get("name", self.id)
        raw = dict(self.suite, name=name if scale == "small" else f"{name}-{scale}")
        return expand(suite_from_dict(raw, str(self.path), overrides), self.path)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def claims_dir() -> Path:
    return suites_dir() / "claims"


def digest_of(path: Path) -> str:
    """The claim file's SHA-256 (hex), the fingerprint of its thresholds."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_claim(path: str | Path) -> Claim:
    """Read and check a claim file; every problem raises :class:`SuiteError` naming the file and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError) as error:
        raise SuiteError(f"{path}: cannot read claim: {error}") from None
    for key in raw:
        if key not in TOP_KEYS:
            raise SuiteError(f"{path}: unknown top-level key {key!r}.{did_you_mean(key, TOP_KEYS)} "
                             f"A claim has {', '.join(f'[{k}]' for k in TOP_KEYS)}")
    meta = raw.get("claim", {})
    for key in meta:
        if key not in CLAIM_KEYS:
            raise SuiteError(f"{path}: claim.{key}: unknown key.{did_you_mean(key, CLAIM_KEYS)} "
                             f"Keys: {', '.join(CLAIM_KEYS)}")
    for key, required in CLAIM_KEYS.items():
        if required and key not in meta:
            raise SuiteError(f"{path}: claim.{key}: required key is missing")
    if "suite" not in raw or not raw.get("expect"):
        raise SuiteError(f"{path}: a claim needs a [suite] table and at least one [[expect]]")
    claim = Claim(id=meta["id"], path=path, title=meta["title"], paper=meta["paper"], year=int(meta["year"]),
                  where=meta["where"], statement=meta["statement"], suite=raw["suite"], expect=raw["expect"],
                  scales=raw.get("scales", {}), notes=meta.get("notes", ""), digest=digest_of(path))
    plan = claim.plan()  # the suite itself, checked as any suite is
    for index, expectation in enumerate(claim.expect):
        _check_expectation(claim, plan, index, expectation)
    return claim


def _fail(claim: Claim, index: int, text: str) -> SuiteError:
    return SuiteError(f"{claim.path}: expect[{index}]: {text}")


def _check_expectation(claim: Claim, plan: Plan, index: int, expectation: dict[str, Any]) -> None:
    name = expectation.get("predicate")
    if name is None:
        raise _fail(claim, index, f"'predicate' is missing; one of {', '.join(PREDICATES.names())}")
    try:
        predicate = PREDICATES.get(str(name))
    except ValueError as error:
        raise _fail(claim, index, f"predicate: {error}") from None
    parameters = {p: v for p, v in inspect.signature(predicate).parameters.items()
                  if v.kind is inspect.Parameter.KEYWORD_ONLY and p != "alpha"}
    for key in expectation:
        if key != "predicate" and key not in parameters:
            raise _fail(claim, index, f"unknown key {key!r} for predicate {name!r}.{did_you_mean(key, parameters)} "
                                      f"Keys: {', '.join(parameters)}")
    for key, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty and key not in expectation:
            raise _fail(claim, index, f"predicate {name!r} needs {key!r}")
    metric = str(expectation["metric"])
    produced = produced_metrics(plan)
    if metric not in produced:
        raise _fail(claim, index, f"metric {metric!r} is not produced by this suite.{did_you_mean(metric, produced)} "
                                  f"It produces: {', '.join(sorted(produced))}")
    if "op" in expectation and expectation["op"] not in OPS:
        raise _fail(claim, index, f"op must be one of {', '.join(repr(o) for o in OPS)}, got {expectation['op']!r}")
    statistic = expectation.get("statistic", "median")
    if statistic not in STATISTICS:
        raise _fail(claim, index, f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    if statistic == "mean" and (metric not in METRICS or METRICS[metric].bounds is None):
        raise _fail(claim, index, f"statistic 'mean' needs a metric with a range; {metric!r} has none: use 'median'")
    _check_lengths(claim, plan, index, expectation, metric)
    for cell in cells_of(expectation):
        _check_cell(claim, plan, index, cell)
    _check_threshold(claim, plan, index, expectation, metric)


def produced_metrics(plan: Plan) -> set[str]:
    """Every metric the plan's runs (and their evaluation variants) store."""
    produced: set[str] = set()
    # A task's kind is a class attribute: building the task would load its data (a corpus) once per run.
    for kind in {TASKS.get(run.config["task"]["name"]).kind for run in plan.train_runs()}:
        produced |= set(EVAL_METRICS[kind]) | set(TRAIN_METRICS)
    if plan.measure_runs():
        produced |= set(MEASURE_METRICS)
    if plan.suite.variants:
        produced.add("finetune_loss")
    return produced


def _lengths(plan: Plan, metric: str) -> set[int]:
    runs = plan.measure_runs() if metric in MEASURE_METRICS else plan.train_runs()
    lengths: set[int] = set()
    for run in runs:
        typed = run.typed()
        lengths |= set(typed.measure.lengths) if metric in MEASURE_METRICS else set(typed.eval.lengths)
    return lengths


def _check_lengths(claim: Claim, plan: Plan, index: int, expectation: dict[str, Any], metric: str) -> None:
    wanted = [expectation[k] for k in ("length", "reference_length") if k in expectation]
    wanted += list(expectation.get("lengths", []))
    available = _lengths(plan, metric)
    for length in wanted:
        if length not in available:
            raise _fail(claim, index, f"length {length} is not evaluated by this suite for {metric!r}; "
                                      f"lengths: {', '.join(map(str, sorted(available)))}")


def _check_cell(claim: Claim, plan: Plan, index: int, cell: dict[str, Any]) -> None:
    columns: dict[str, set[str]] = {}
    for run in plan.runs:
        for axis, value in run.axes.items():
            columns.setdefault(axis_column(axis), set()).add(str(value))
    if plan.suite.variants:  # evaluation-time variants of the trained models are a column of their own
        columns["variant"] = {"base", *plan.suite.variants}
    for key, value in cell.items():
        if key not in columns:
            raise _fail(claim, index, f"cell {cell}: {key!r} is not a grid axis of this suite."
                                      f"{did_you_mean(key, columns)} Axes: {', '.join(sorted(columns))}")
        if str(value) not in columns[key]:
            raise _fail(claim, index, f"cell {cell}: {key}={value!r} is not run by this suite."
                                      f"{did_you_mean(str(value), columns[key])} Values: "
                                      f"{', '.join(sorted(columns[key]))}")


def _check_threshold(claim: Claim, plan: Plan, index: int, expectation: dict[str, Any], metric: str) -> None:
    if "threshold" not in expectation:
        return
    threshold = float(expectation["threshold"])
    if expectation["predicate"] in ("ratio", "cost"):
        if threshold <= 0:
            raise _fail(claim, index, f"a ratio threshold must be > 0, got {threshold:g}")
        return
    bounds = METRICS[metric].bounds if metric in METRICS else None
    if bounds is not None and not bounds[0] <= threshold <= bounds[1]:
        raise _fail(claim, index, f"threshold {threshold:g} is outside {metric}'s range [{bounds[0]:g}, {bounds[1]:g}]")
    problem = by_construction(plan, expectation)
    if problem:
        raise _fail(claim, index, problem)


def all_claims() -> list[Claim]:
    """The shipped claims."""
    return [load_claim(p) for p in sorted(claims_dir().glob("*.toml"))]


def is_claim_file(path: Path) -> bool:
    """Whether ``path`` is a TOML file with a ``[claim]`` table (a claim file, not a suite)."""
    try:
        return path.is_file() and path.suffix == ".toml" and "claim" in tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        return False


def find_claim(name: str) -> Claim:
    """A shipped claim by id, or a claim file by path (``my_claim.toml``, anywhere).

    Raises:
        SuiteError: a name that is neither, with the nearest ids; a path that is not a claim file.
    """
    path = Path(name).expanduser()
    if is_claim_file(path):
        return load_claim(path)
    if path.is_file():
        raise SuiteError(f"{name}: not a claim file (no [claim] table); a suite runs with 'ablate run {name}'")
    if name.endswith(".toml"):
        raise SuiteError(f"{name}: no such claim file")
    claims = {c.id: c for c in all_claims()}
    if name not in claims:
        raise SuiteError(f"unknown claim {name!r}.{did_you_mean(name, claims, cutoff=0.5)} Known claims: "
                         f"{', '.join(sorted(claims))}; or give the path of a claim file")
    return claims[name]
