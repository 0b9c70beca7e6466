"""Published length-extrapolation claims as executable files: ``ablate reproduce``.

A claim file (``suites/claims/*.toml``) has three parts:

* ``[claim]`` - the paper, year, table/figure and the claim in one sentence;
* ``[suite]`` - an ordinary suite (same schema as ``suites/*.toml``) that tests
  it at a scale that fits a 2-core CPU, with ``[scales.<name>]`` tables of
  overrides that bring it closer to the paper's setting (``--scale``); its
  results go to ``<results>/<claim id>``, or to ``<results>/<suite name>`` when
  the suite has a ``name`` (claims on variants of the same trained models share one);
* ``[[expect]]`` - predicates over the results (:mod:`ablate.claims.predicates`),
  each with a statistical interval and a threshold fixed in the file.

The claim's verdict is ``reproduced`` when every predicate is, ``not reproduced``
when one is not and none is undecided (a "not reproduced" resting on one predicate
while others are inconclusive is not a decision), ``did not learn`` when a
predicate past the train length rests on a cell that never learned the task,
``inconclusive`` otherwise (``measured`` predicates carry no verdict).
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.table import Table

from ablate.claims.predicates import (
    DID_NOT_LEARN,
    INCONCLUSIVE,
    MEASURED,
    NOT_REPRODUCED,
    PREDICATES,
    REPRODUCED,
    Verdict,
)
from ablate.cli_args import execution
from ablate.console import make_console
from ablate.registry import UnknownNameError
from ablate.report import write_report
from ablate.runner import run_plan
from ablate.store import load_curves, load_results
from ablate.suite import Plan, SuiteError, expand, suites_dir
from ablate.suite.load import suite_from_dict


@dataclass
class Claim:
    """A claim file, loaded."""

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

    @property
    def source(self) -> str:
        return f"{self.paper} ({self.year}), {self.where}"

    def plan(self, scale: str = "small") -> Plan:
        """The claim's suite expanded at ``scale`` (``small`` is the file's own suite)."""
        if scale != "small" and scale not in self.scales:
            raise SuiteError(f"{self.path}: no [scales.{scale}] table; available: small, {', '.join(self.scales) or '(none)'}")
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


def load_claim(path: Path) -> Claim:
    """Read and check a claim file; problems raise :class:`SuiteError` naming the file and key."""
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError) as error:
        raise SuiteError(f"{path}: cannot read claim: {error}") from None
    meta = raw.get("claim", {})
    for key in ("id", "title", "paper", "year", "where", "statement"):
        if key not in meta:
            raise SuiteError(f"{path}: claim.{key}: required key is missing")
    if "suite" not in raw or not raw.get("expect"):
        raise SuiteError(f"{path}: a claim needs a [suite] table and at least one [[expect]]")
    for index, expectation in enumerate(raw["expect"]):
        name = expectation.get("predicate")
        if name not in PREDICATES:
            try:
                PREDICATES.get(str(name))
            except ValueError as error:
                raise SuiteError(f"{path}: expect[{index}].predicate: {error}") from None
    return Claim(id=meta["id"], path=path, title=meta["title"], paper=meta["paper"], year=int(meta["year"]),
                 where=meta["where"], statement=meta["statement"], suite=raw["suite"], expect=raw["expect"],
                 scales=raw.get("scales", {}), notes=meta.get("notes", ""))


def all_claims() -> list[Claim]:
    return [load_claim(p) for p in sorted(claims_dir().glob("*.toml"))]


def judge(claim: Claim, frame: Any) -> tuple[str, list[Verdict]]:
    """Evaluate every predicate of ``claim`` on its results frame."""
    verdicts = []
    for expectation in claim.expect:
        params = {k: v for k, v in expectation.items() if k != "predicate"}
        try:
            verdicts.append(PREDICATES.get(expectation["predicate"])(frame, **params))
        except (KeyError, ValueError, TypeError) as error:
            verdicts.append(Verdict(INCONCLUSIVE, str(params), "n/a", f"could not evaluate: {error}"))
    judged = {v.verdict for v in verdicts if v.verdict != MEASURED}
    if DID_NOT_LEARN in judged:
        overall = DID_NOT_LEARN
    elif NOT_REPRODUCED in judged and INCONCLUSIVE not in judged:
        overall = NOT_REPRODUCED
    elif judged == {REPRODUCED}:
        overall = REPRODUCED
    else:
        overall = INCONCLUSIVE if judged else MEASURED
    return overall, verdicts


def _cells_of(expectation: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``where``-style cell selectors a predicate reads (``where``, ``other``, ``a``, ``b``, ``items``)."""
    cells = [expectation[k] for k in ("where", "other", "a", "b") if isinstance(expectation.get(k), dict)]
    return cells + [item for item in expectation.get("items", []) if isinstance(item, dict)]


def undecided_runs(claim: Claim) -> Callable[[Any], set[str]]:
    """For adaptive seeds (``seeds = {min, max}`` in a claim's suite): the run ids of the cells that an
    inconclusive predicate reads, so only they get more seeds."""

    def undecided(frame: Any) -> set[str]:
        _, verdicts = judge(claim, frame)
        runs: set[str] = set()
        for expectation, verdict in zip(claim.expect, verdicts):
            if verdict.verdict != INCONCLUSIVE:
                continue
            for where in _cells_of(expectation):
                rows = frame
                for column, value in where.items():
                    rows = rows[rows[column].astype(str) == str(value)] if column in rows.columns else rows.iloc[:0]
                runs |= set(rows["run_id"])
        return runs

    return undecided


def runs_spent(claim: Claim, frame: Any, scale: str = "small") -> str:
    """One line: the training runs a claim took, and what a fixed design at the maximum seeds would take."""
    runs = frame.loc[frame["kind"].eq("train"), "run_id"].nunique() if "kind" in frame.columns else 0
    account = frame.attrs.get("adaptive") or {}
    if not account:
        return f"{claim.id}: {runs} runs (fixed seeds)"
    fixed = len(claim.plan(scale).train_runs())
    return f"{claim.id}: {runs} runs with adaptive seeds, against {fixed} for a fixed design at the maximum"


def verdict_markdown(rows: list[tuple[Claim, str, list[Verdict]]]) -> str:
    """The claims table: claim | source | expected | measured | verdict."""
    lines = ["| claim | source | expected | measured (mean [95% CI]) | verdict |", "|---|---|---|---|---|"]
    for claim, overall, verdicts in rows:
        for index, verdict in enumerate(verdicts):
            first = index == 0
            lines.append(
                f"| {claim.title if first else ''} | {claim.source if first else ''} | {verdict.expected} | "
                f"{verdict.measured}{' — ' + verdict.details if verdict.details else ''} | "
                f"{verdict.verdict}{' (**claim: ' + overall + '**)' if first else ''} |"
            )
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    """``ablate reproduce``: run the chosen claims (resumable) and write the verdict table."""
    console = make_console()  # the claims table stays whole in a pipe or log
    claims = all_claims()
    if args.list:
        table = Table(title="claims")
        for column in ("id", "source", "claim", "scales"):
            table.add_column(column)
        for claim in claims:
            table.add_row(claim.id, claim.source, claim.statement, ", ".join(["small", *claim.scales]))
        console.print(table)
        return 0
    by_id = {c.id: c for c in claims}
    chosen = claims
    if args.claims:
        unknown = [c for c in args.claims if c not in by_id]
        if unknown:
            raise SuiteError(str(UnknownNameError("claim", unknown[0], list(by_id))))
        chosen = [by_id[c] for c in args.claims]
    results_root = Path(args.results)
    for claim in chosen:
        plan = claim.plan(args.scale)
        console.print(f"[bold]{claim.id}[/]: {claim.title} ({len(plan.runs)} runs)")
        try:
            summary = run_plan(plan, results_root, **execution(args).keywords(), undecided=undecided_runs(claim))
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: finished runs are stored; run again to resume")
            return 130
        frame = load_results(summary.results_dir)
        overall, _ = judge(claim, frame)
        write_report(frame, summary.results_dir / "report", title=f"{claim.title} — {claim.source}",
                     curves=load_curves(summary.results_dir))
        console.print(f"  -> [bold]{overall}[/]")
    # The table covers every claim with stored results at this scale, not only the ones just run.
    rows = []
    spent = []
    for claim in claims:
        directory = results_root / claim.plan(args.scale).name if args.scale in ("small", *claim.scales) else None
        if directory is not None and (directory / "results.sqlite").is_file():
            frame = load_results(directory)
            rows.append((claim, *judge(claim, frame)))
            spent.append(runs_spent(claim, frame, args.scale))
    text = f"# Claim verdicts (scale: {args.scale})\n\n" + verdict_markdown(rows)
    text += "\nTraining runs per claim:\n\n" + "".join(f"- {line}\n" for line in spent)
    suffix = "" if args.scale == "small" else f"-{args.scale}"
    (results_root / f"verdicts{suffix}.md").write_text(text)
    console.print(text)
    return 0


__all__ = ["Claim", "DID_NOT_LEARN", "INCONCLUSIVE", "MEASURED", "NOT_REPRODUCED", "REPRODUCED", "all_claims", "judge", "load_claim", "main"]
