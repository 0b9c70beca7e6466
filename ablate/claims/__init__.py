"""Published length-extrapolation claims as executable files: ``ablate reproduce``.

A claim file (``suites/claims/*.toml``, or a user's own anywhere) has a ``[claim]``
table (paper, where, the claim in one sentence), a ``[suite]`` that tests it at a
scale that fits a 2-core CPU (``[scales.<name>]`` bring it closer to the paper),
and ``[[expect]]`` predicates with thresholds fixed in the file
(:mod:`ablate.claims.load` checks all of it before any training).

**Error control.** A claim makes ``k`` decisions (one per predicate, one per
adjacent pair of an ``order``); each is taken at ``alpha / k`` (Bonferroni), with
anytime-valid intervals. The claim is *reproduced* when every predicate is (if the
claim is false, some predicate is false, and that one is reproduced with
probability at most ``alpha / k``), *not reproduced* when any predicate is decided
against it (if the claim is true, that happens with probability at most ``alpha``),
and *inconclusive* otherwise. The claim file's SHA-256 is stored with its results
when it runs: a verdict whose file changed since is reported as stale.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from rich.markup import escape
from rich.table import Table as RichTable

from ablate.claims.load import Claim, all_claims, claims_dir, digest_of, find_claim, is_claim_file, load_claim
from ablate.claims.predicates import (
    INCONCLUSIVE,
    MEASURED,
    NOT_REPRODUCED,
    PREDICATES,
    REPRODUCED,
    Verdict,
    cells_of,
    decisions_of,
    is_open,
)
from ablate.cli.args import execution
from ablate.core import fingerprint
from ablate.core.console import make_console
from ablate.results.positions.frame import load_positions
from ablate.analysis.report import write_report
from ablate.analysis.report.document import Paragraph, Section, Table
from ablate.run.runner import run_plan, stale_line
from ablate.results.store import Store, load_curves, load_results

#: Family-wise error rate of a claim's verdict when its suite sets none.
ALPHA = 0.05


def alpha_of(claim: Claim) -> float:
    """The claim's family-wise α: its suite's ``[report] alpha``, else :data:`ALPHA`."""
    return float((claim.suite.get("report") or {}).get("alpha", ALPHA))


def decisions(claim: Claim) -> int:
    """How many decisions share the claim's α: one per predicate, one per adjacent pair of an order."""
    return sum(decisions_of(e) for e in claim.expect)


def _lean(frame: Any) -> Any:
    """A shallow copy of ``frame`` whose attrs keep what predicates read: the suite config cut to its
    ``[report]``, no claim digests (pandas deep-copies attrs on every operation on a frame, so a
    whole suite config there slows every predicate)."""
    if not isinstance(frame, pd.DataFrame):
        return frame
    lean = frame.copy(deep=False)
    report = (frame.attrs.get("suite_config") or {}).get("report") or {}
    lean.attrs = {**{k: v for k, v in frame.attrs.items() if k != "claim_digests"}, "suite_config": {"report": report}}
    return lean


def judge(claim: Claim, frame: Any) -> tuple[str, list[Verdict]]:
    """Every predicate of ``claim`` on its results frame at ``alpha / k``, and the claim's verdict."""
    each = alpha_of(claim) / max(1, decisions(claim))
    frame = _lean(frame)
    verdicts = []
    for expectation in claim.expect:
        params = {k: v for k, v in expectation.items() if k != "predicate"}
        try:
            verdicts.append(PREDICATES.get(expectation["predicate"])(frame, alpha=each, **params))
        except (KeyError, ValueError, TypeError) as error:
            verdicts.append(Verdict(INCONCLUSIVE, str(params), "n/a", f"could not evaluate: {error}"))
    judged = {v.verdict for v in verdicts if v.verdict != MEASURED}
    if NOT_REPRODUCED in judged:
        overall = NOT_REPRODUCED
    elif judged == {REPRODUCED}:
        overall = REPRODUCED
    else:
        overall = INCONCLUSIVE if judged else MEASURED
    return overall, verdicts


def stale_digest(claim: Claim, frame: Any) -> bool:
    """Whether the claim file changed since the runs in ``frame`` were made for it."""
    stored = (frame.attrs.get("claim_digests") or {}).get(claim.id)
    return stored is not None and stored != claim.digest


def undecided_runs(claim: Claim) -> Callable[[Any], set[str]]:
    """For adaptive seeds: the run ids of the cells that an inconclusive predicate reads (and, past the
    train length, whose learn rate is still open), so only they get more seeds."""

    def undecided(frame: Any) -> set[str]:
        _, verdicts = judge(claim, frame)
        runs: set[str] = set()
        for expectation, verdict in zip(claim.expect, verdicts):
            if not is_open(verdict.verdict):
                continue
            for where in cells_of(expectation):
                rows = frame
                for column, value in where.items():
                    rows = rows[rows[column].astype(str) == str(value)] if column in rows.columns else rows.iloc[:0]
                runs |= set(rows["run_id"])
        return runs

    return undecided


def runs_spent(claim: Claim, frame: Any, scale: str = "small") -> str:
    """One line: the training runs a claim's results hold, and what a fixed design at the maximum would take."""
    planned = claim.plan(scale).train_runs()
    # A folder may be shared with other claims and suites of the same [suite] name: count this claim's runs only.
    ids = {run.run_id for run in planned}
    stored = frame.loc[frame["kind"].eq("train"), "run_id"] if "kind" in frame.columns else pd.Series(dtype=str)
    runs = stored[stored.isin(ids)].nunique()
    return f"{claim.id}: {runs} training runs, against {len(planned)} for a fixed design at the maximum"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass
class Judged:
    """A claim judged on its stored results, and what those results rest on."""

    claim: Claim
    overall: str
    verdicts: list[Verdict]
    #: The claim file changed since its runs were made.
    stale_file: bool
    #: Code fingerprints of its runs, most runs first; and how many runs are from other code than now.
    fingerprints: list[str]
    stale_runs: int


def judged(claim: Claim, frame: Any) -> Judged:
    """:func:`judge` plus the freshness of what the verdict rests on."""
    overall, verdicts = judge(claim, frame)
    return Judged(claim, overall, verdicts, stale_digest(claim, frame), fingerprint.fingerprints(frame),
                  len(fingerprint.stale_runs(frame)))


def verdict_markdown(rows: list[Judged]) -> str:
    """The claims: one table of claim verdicts, then each claim's predicates with their own verdicts."""
    lines = ["| claim | source | verdict | predicates (reproduced / not / inconclusive) | claim file (sha256) | "
             "code fingerprint of its runs |", "|---|---|---|---|---|---|"]
    for row in rows:
        counts = [sum(v.verdict == s for v in row.verdicts) for s in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)]
        notes = (["stale: the claim file changed since its runs"] if row.stale_file else []) + (
            [f"stale: {row.stale_runs} run(s) from other code than now"] if row.stale_runs else [])
        shown = f"**{row.overall}**" + (f" ({'; '.join(notes)})" if notes else "")
        lines.append(f"| {_cell(row.claim.title)} | {_cell(row.claim.source)} | {shown} | {counts[0]} / {counts[1]} "
                     f"/ {counts[2]} | `{row.claim.digest[:12]}` | {', '.join(row.fingerprints)} |")
    for claim, overall, verdicts in ((r.claim, r.overall, r.verdicts) for r in rows):
        tests = decisions(claim)
        lines += ["", f"### {claim.id}: {overall}", "",
                  f"{tests} decision(s) at α = {alpha_of(claim):g} / {max(1, tests)} each.", "",
                  "| expected | measured | predicate verdict |", "|---|---|---|"]
        for verdict in verdicts:
            measured = verdict.measured + (f" — {verdict.details}" if verdict.details else "")
            lines.append(f"| {_cell(verdict.expected)} | {_cell(measured)} | {verdict.verdict} |")
    return "\n".join(lines) + "\n"


ERROR_CONTROL = (
    "Error control: each claim's α (0.05 unless its suite sets one) is divided over its decisions (one per "
    "predicate, one per adjacent pair of an order), Bonferroni; every decision uses an anytime-valid interval, so "
    "seeds added where a predicate was inconclusive cost no error rate. A reproduced claim is false with "
    "probability at most α; a true claim is called not reproduced with probability at most α. Value and ratio "
    "predicates are about the median seed (the share of seeds on the claimed side, shown above or below 1/2); "
    "better and order predicates use the report's verdict (a treatment that wins more paired seeds than it loses); "
    "cost predicates read the median paired ratio over interleaved measurement rounds, decided when its whole "
    "interval lies on one side of the threshold."
)


def _claims_for(args: argparse.Namespace) -> list[Claim]:
    if not args.claims:
        return all_claims()
    return [find_claim(name) for name in args.claims]


def _print_list(console: Any) -> None:
    table = RichTable(title="claims")
    for column in ("id", "source", "claim", "scales"):
        table.add_column(column)
    for claim in all_claims():
        cells = (claim.id, claim.source, claim.statement, ", ".join(["small", *claim.scales]))
        table.add_row(*(escape(cell) for cell in cells))
    console.print(table)


def main(args: argparse.Namespace) -> int:
    """``ablate reproduce``: run the chosen claims (resumable) and write the verdict table."""
    console = make_console()  # the claims table stays whole in a pipe or log
    if args.list:
        _print_list(console)
        return 0
    chosen = _claims_for(args)
    results_root = Path(args.results)
    for claim in chosen:
        plan = claim.plan(args.scale)
        console.print(f"[bold]{claim.id}[/]: {claim.title} ({len(plan.runs)} runs)")
        stale = stale_line(plan, results_root, rerun_stale=args.rerun_stale)
        if stale:
            console.print(f"  {stale}")
        try:
            summary = run_plan(plan, results_root, **execution(args).keywords(), undecided=undecided_runs(claim),
                               rerun_stale=args.rerun_stale)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: finished runs are stored; run again to resume")
            return 130
        with Store(summary.results_dir) as store:
            digests = dict(store.meta().get("claim_digests", {}))
            store.set_meta("claim_digests", {**digests, claim.id: claim.digest})
        frame = load_results(summary.results_dir)
        overall, verdicts = judge(claim, frame)
        write_report(frame, summary.results_dir / "report", title=f"{claim.title} — {claim.source}",
                     curves=load_curves(summary.results_dir), positions=load_positions(summary.results_dir),
                     preface=claim_section(claim, overall, verdicts), verdicts=False)
        console.print(f"  -> [bold]{overall}[/]")
    # The table covers every claim with stored results at this scale, not only the ones just run.
    rows, spent = [], []
    frames: dict[Path, pd.DataFrame] = {}  # claims that share a suite share its folder: load it once
    listed = {c.id: c for c in [*all_claims(), *chosen]}  # a claim file given by path wins over a shipped id
    for claim in listed.values():
        directory = results_root / claim.plan(args.scale).name if args.scale in ("small", *claim.scales) else None
        if directory is not None and (directory / "results.sqlite").is_file():
            frame = frames.get(directory)
            if frame is None:
                frame = frames[directory] = load_results(directory)
            rows.append(judged(claim, frame))
            spent.append(runs_spent(claim, frame, args.scale))
    text = f"# Claim verdicts (scale: {args.scale})\n\n{ERROR_CONTROL}\n\n" + verdict_markdown(rows)
    text += "\nTraining runs per claim:\n\n" + "".join(f"- {line}\n" for line in spent)
    suffix = "" if args.scale == "small" else f"-{args.scale}"
    results_root.mkdir(parents=True, exist_ok=True)
    (results_root / f"verdicts{suffix}.md").write_text(text)
    console.print(text, markup=False, highlight=False)  # cell labels hold [brackets], not markup
    return 0


def claim_section(claim: Claim, overall: str, verdicts: list[Verdict]) -> Section:
    """The claim report's opening section: the claim, its verdict and its predicates."""
    tests = decisions(claim)
    rows = [[v.expected, v.measured + (f" — {v.details}" if v.details else ""), v.verdict] for v in verdicts]
    return Section(f"Claim: {overall}", [
        Paragraph(f"{claim.statement} ({claim.source}.)"),
        Paragraph(f"Verdict: {overall}. {tests} decision(s) at α = {alpha_of(claim):g} / {max(1, tests)} each "
                  f"(Bonferroni over the claim's decisions; anytime-valid intervals). Claim file sha256 "
                  f"{claim.digest[:12]}."),
        Table(["expected", "measured", "verdict"], rows, caption="The claim's predicates."),
    ])


__all__ = ["Claim", "INCONCLUSIVE", "MEASURED", "NOT_REPRODUCED", "REPRODUCED", "all_claims", "claim_section",
           "claims_dir", "digest_of", "find_claim", "is_claim_file", "judge", "load_claim", "main", "stale_digest",
           "undecided_runs"]
