"""``ablate``: the command line.

User mistakes (a bad suite file, an unknown name, a missing results folder, a
bad flag value) print one clear message and exit 2, never a traceback. ``ablate
run`` exits 1 when any run failed, 130 when interrupted (finished runs are kept).
A bare ``ablate`` prints the help. Tables printed to a file or pipe are never cut
(:mod:`ablate.core.console`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from rich.markup import escape
from rich.table import Table

from ablate import __version__
from ablate.cli.args import add_execution_arguments, add_out, check_report_options, execution
from ablate import nightly
from ablate.nightly import add_arguments as add_nightly_arguments
from ablate.core.console import make_console
from ablate.core.errors import UserError
from ablate.results.export import FORMATS, require_results
from ablate.suite import SuiteError, load_plan
from ablate.suite.run_config import TrainRun, parse_train_run

DEFAULT_SUITE = "quickstart"
# Made again in main(): whether stdout/stderr are terminals decides their width.
console = make_console()
err = make_console(stderr=True)


# --------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    from ablate.run.runner import run_plan, stale_line

    how = execution(args)
    plan = load_plan(args.suite, args.set)
    kinds = ("train", "measure") if (plan.suite.measure and plan.suite.measure.with_run) else ("train",)
    selected = [r for r in plan.runs if r.kind in kinds]
    workers = f" on {how.workers} workers" if how.executor == "process" else ""
    err.print(f"[bold]{plan.name}[/]: {len(selected)} runs ({how.executor} executor{workers}) "
              f"-> {Path(args.results) / plan.name}")
    stale = stale_line(plan, args.results, kinds=kinds, rerun_stale=args.rerun_stale)
    if stale:
        err.print(stale)
    try:
        summary = run_plan(plan, args.results, rerun_failed=args.rerun_failed, kinds=kinds, **how.keywords(),
                           rerun_stale=args.rerun_stale)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished runs are stored; run the same command again to resume")
        return 130
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())) or "nothing new to run"
    variants = f"; {summary.variants} variant evaluation(s) from checkpoints" if summary.variants else ""
    err.print(f"done in {summary.wall_s:.1f}s: {counts}; {summary.skipped} already stored{variants}")
    if not args.no_report:
        _report(summary.results_dir, summary.results_dir / "report", None, None)
    return 1 if summary.any_failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ablate.cli.tables import bench_table, cost_verdict_table  # the report layer: only bench needs it
    from ablate.run.runner import run_plan
    from ablate.results.store import load_results

    plan = load_plan(args.suite, args.set)
    if plan.suite.measure is None:
        raise UserError(f"{plan.path}: has no [measure] section; add one to use 'ablate bench'")
    try:
        summary = run_plan(plan, args.results, kinds=("measure",), rerun_failed=args.rerun_failed)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished measurements are stored")
        return 130
    frame = load_results(summary.results_dir)
    measured = frame[frame["kind"] == "measure"]
    if measured.empty:
        err.print("no measurements")
    else:
        console.print(bench_table(measured))
        verdicts = cost_verdict_table(measured, summary.results_dir)
        if verdicts is not None:
            console.print(verdicts)
    return 1 if summary.any_failed else 0


# -------------------------------------------------------------- plan / validate
def cmd_plan(args: argparse.Namespace) -> int:
    plan = load_plan(args.suite, args.set)
    table = Table(title=f"{plan.name}: {len(plan.runs)} runs ({len(plan.train_runs())} train, {len(plan.measure_runs())} measure)")
    table.add_column("run id")
    table.add_column("kind")
    for axis in plan.axes:
        table.add_column(axis)
    table.add_column("seed")
    table.add_column("eval lengths")
    shown = plan.runs if args.all else plan.runs[:50]
    for run in shown:
        typed = run.typed()
        lengths = typed.eval.lengths if isinstance(typed, TrainRun) else typed.measure.lengths
        table.add_row(run.run_id, run.kind, *[escape(str(run.axes.get(a, ""))) for a in plan.axes], str(typed.seed),
                      ",".join(map(str, lengths)))
    console.print(table)
    if len(shown) < len(plan.runs):
        console.print(f"... {len(plan.runs) - len(shown)} more (--all shows every run)")
    console.print(f"rough cost: {_estimate_seconds(plan) / 60:.1f} CPU-minutes (2-core laptop-class estimate, training only)")
    return 0


def _estimate_seconds(plan: Any) -> float:
    """A rough compute estimate: ~6 x params x tokens + attention, at ~1.5e10 FLOP/s."""
    total = 0.0
    for run in plan.train_runs():
        config = parse_train_run(run.config, f"run {run.run_id}")
        model, train = config.model, config.train
        d, layers, length = model.d_model, model.num_layers, train.length
        params = 12 * layers * d * d
        tokens = train.steps * train.batch_size * length
        total += tokens * (6 * params + 6 * layers * length * d)
    return total / 1.5e10


def _check_models(plan: Any, source: str) -> None:
    """Build each distinct model of ``plan`` once, so a component's own check (T5's ``max_distance``
    against its exact buckets, say) fails here, before any training, not as a failed run."""
    from ablate.analysis.stats.frame import describe
    from ablate.model.transformer import build_model
    from ablate.tasks import create_task

    seen: set[str] = set()
    for run in plan.runs:
        config = run.typed()
        model = config.model.model_config_for(create_task(config.task)).to_dict()
        key = json.dumps(model, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        try:
            build_model(model)
        except ValueError as error:
            raise UserError(f"{source}: {describe(run.axes) or 'model'}: {error}") from None


def cmd_validate(args: argparse.Namespace) -> int:
    from ablate.claims import is_claim_file, load_claim

    for suite in args.suites:
        if is_claim_file(Path(suite)):
            if args.set:
                raise UserError(f"--set overrides a suite; {suite} is a claim file (its [scales] tables are checked)")
            claim = load_claim(Path(suite))
            plans = {scale: claim.plan(scale) for scale in ("small", *claim.scales)}
            for scale, plan in plans.items():
                _check_models(plan, f"{suite} (scale {scale})")
            sizes = ", ".join(f"{len(plan.runs)} runs at scale {scale}" for scale, plan in plans.items())
            console.print(f"[green]ok[/] {suite}: claim {claim.id}, {len(claim.expect)} predicates, {sizes}")
            continue
        plan = load_plan(suite, args.set)
        _check_models(plan, str(plan.path))
        console.print(f"[green]ok[/] {plan.path}: {len(plan.runs)} runs")
    return 0


# ------------------------------------------------------------- report / compare
def _report(results_dir: Path, out: Path, main_metric: str | None, baseline: dict[str, str] | None) -> None:
    from ablate.results.rounds_table import load_rounds
    from ablate.results.positions.frame import load_positions
    from ablate.analysis.report import write_report
    from ablate.results.store import load_curves, load_results

    frame = load_results(results_dir)
    if frame.empty:
        err.print(f"{results_dir}: no results yet, no report")
        return
    check_report_options(frame, main_metric, baseline)
    paths = write_report(frame, out, main_metric=main_metric, baseline=baseline or None,
                         curves=load_curves(results_dir), positions=load_positions(results_dir),
                         rounds=load_rounds(results_dir))
    for kind, path in paths.items():
        err.print(f"{kind}: {path}")


def cmd_report(args: argparse.Namespace) -> int:
    results = require_results(args.results_dir)
    baseline = dict(_key_value(item, "--baseline") for item in args.baseline)
    _report(results, Path(args.out) if args.out else results / "report", args.main_metric, baseline)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ablate.results.export import export_results

    for kind, path in export_results(args.results_dir, args.format, args.output).items():
        err.print(f"{kind}: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ablate.results.rounds_table import load_rounds
    from ablate.analysis.report import compare_results, write_comparison
    from ablate.analysis.report.compare import regressions
    from ablate.analysis.report.context import choose_main_metric
    from ablate.analysis.report.labels import derive_labels
    from ablate.results.store import load_results

    folders = [require_results(path) for path in (args.a, args.b)]
    frames = [load_results(folder) for folder in folders]
    if args.labels:
        labels = (args.labels[0], args.labels[1])
        if labels[0] == labels[1]:
            raise UserError(f"--labels {labels[0]} {labels[1]}: the two labels must differ")
    else:
        try:
            labels = derive_labels(args.a, args.b, frames[0], frames[1])
        except ValueError as error:
            raise UserError(str(error)) from None
    rounds = (load_rounds(folders[0]), load_rounds(folders[1]))
    table = compare_results(frames[0], frames[1], labels, rounds=rounds)
    paths = write_comparison(frames[0], frames[1], Path(args.out), labels=labels, rounds=rounds, table=table)
    for kind, path in paths.items():
        err.print(f"{kind}: {path}")
    if args.fail_on == "regression":
        found = regressions(table, choose_main_metric(frames[1]))
        for line in found:
            err.print(escape(line), highlight=False)
        if found:
            return 1
        err.print(f"no decided regression of time, memory or the main metric in {labels[1]} against {labels[0]}")
    return 0


def _key_value(text: str, flag: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserError(f"{flag} {text!r}: expected AXIS=VALUE, e.g. {flag} encoding=none")
    key, _, value = text.partition("=")
    return key.strip(), value.strip()


# ------------------------------------------------------------------- reproduce
def cmd_reproduce(args: argparse.Namespace) -> int:
    from ablate import claims

    execution(args)  # a flag that would do nothing stops here, before any claim runs
    return claims.main(args)


def cmd_nightly(args: argparse.Namespace) -> int:
    return nightly.main(args)


def cmd_list(args: argparse.Namespace) -> int:
    from ablate.model.encodings import ENCODINGS
    from ablate.model.pooling import POOLINGS
    from ablate.run.runner import EXECUTORS
    from ablate.suite.load import suite_folders
    from ablate.tasks import TASKS

    for title, names in (("encodings", ENCODINGS.names()), ("poolings", POOLINGS.names()), ("tasks", TASKS.names()),
                         ("executors", EXECUTORS.names() + (["ray"] if "ray" not in EXECUTORS else [])),
                         ("suites", sorted({p.stem for d in suite_folders() for p in d.glob("*.toml")}))):
        console.print(f"[bold]{title}[/]: {', '.join(names)}")
    return 0


# ---------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (what was wrong, then where the help is) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}; see '{self.prog} -h'")


def build_parser() -> argparse.ArgumentParser:
    """The ``ablate`` parser; every argument has a help line (``tests/test_cli.py`` walks it)."""
    parser = _Parser(prog="ablate", description="Ablations of positional encodings and pooling.")
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    results_root = "where results go: PATH/<suite>/ (default: results/)"

    def suite_command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str, *, optional: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if optional:
            p.add_argument("suite", nargs="?", default=DEFAULT_SUITE, help=f"suite file or built-in name (default: {DEFAULT_SUITE})")
        else:
            p.add_argument("suite", help="suite file or built-in name")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a suite value (TOML syntax)")
        p.set_defaults(handler=handler)
        return p

    run = suite_command("run", cmd_run, "train and evaluate every run of a suite (resumable)", optional=True)
    add_execution_arguments(run)
    add_out(run, "results", results_root, dest="results", old="--results")
    run.add_argument("--rerun-failed", action="store_true", help="retry runs stored as failed or oom")
    run.add_argument("--rerun-stale", action="store_true",
                     help="re-run stored runs that other code produced (another code fingerprint)")
    run.add_argument("--no-report", action="store_true", help="skip writing the report afterwards")

    bench = suite_command("bench", cmd_bench, "run only a suite's [measure] section (throughput, memory)")
    add_out(bench, "results", results_root, dest="results", old="--results")
    bench.add_argument("--rerun-failed", action="store_true", help="measure again the points stored as failed or oom")

    plan = suite_command("plan", cmd_plan, "print the expanded runs without running anything")
    plan.add_argument("--all", action="store_true", help="list every run (default: the first 50)")

    validate = sub.add_parser("validate", help="check suite files and claim files",
                              description="check suite files and claim files, before any training")
    validate.add_argument("suites", nargs="+", metavar="SUITE", help="suite files, built-in names or claim files")
    validate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a suite value (TOML syntax) before checking")
    validate.set_defaults(handler=cmd_validate)

    report = sub.add_parser("report", help="statistics, plots and HTML/Markdown report of stored results",
                            description="statistics, plots and HTML/Markdown report of stored results")
    report.add_argument("results_dir", metavar="RESULTS_DIR", help="a suite's results folder (results/<suite>)")
    add_out(report, None, "report folder (default: RESULTS_DIR/report)")
    report.add_argument("--main-metric", default=None, metavar="METRIC",
                        help="headline metric (default: the suite's [report] main_metric, else accuracy-like)")
    report.add_argument("--baseline", action="append", default=[], metavar="AXIS=VALUE",
                        help="compare against this value of an axis (default: each axis' first value); repeatable")
    report.set_defaults(handler=cmd_report)

    compare = sub.add_parser("compare", help="compare two result folders of the same suite",
                             description="compare two result folders of the same suite")
    compare.add_argument("a", metavar="A", help="the first results folder (the reference)")
    compare.add_argument("b", metavar="B", help="the second results folder, compared with A")
    add_out(compare, "results/compare", "comparison folder (default: results/compare)")
    compare.add_argument("--labels", nargs=2, default=None, metavar=("A", "B"),
                         help="names of A and B (default: from the folders, else their commits or machines)")
    compare.add_argument("--fail-on", choices=["regression"], default=None,
                         help="exit 1 when B is decidedly worse than A in time, memory or the main metric "
                              "(one line per regression)")
    compare.set_defaults(handler=cmd_compare)

    export = sub.add_parser("export", help="stored results as CSV, Parquet or JSON (tidy table, plus curves)",
                            description="stored results as CSV, Parquet or JSON (tidy table, plus curves)")
    export.add_argument("results_dir", nargs="+", metavar="RESULTS_DIR",
                        help="results folder(s) (results/<suite>); several make one table, each row tagged with "
                             "its folder")
    export.add_argument("--format", default="csv", choices=list(FORMATS), help="file format (default: csv)")
    add_out(export, None, "file for the results table (default for one folder: RESULTS_DIR/export/results.<ext>; "
            "'-' for stdout)", dest="output", old="--output")
    export.set_defaults(handler=cmd_export)

    reproduce = sub.add_parser("reproduce", help="reproduce published length-extrapolation claims",
                               description="reproduce published length-extrapolation claims")
    reproduce.add_argument("claims", nargs="*", metavar="CLAIM",
                           help="shipped claim ids or paths of claim files (default: every shipped claim)")
    reproduce.add_argument("--list", action="store_true", help="list the claims, their sources and scales; run nothing")
    reproduce.add_argument("--scale", default="small", help="the claim's scale: small (default) or one of its [scales]")
    add_out(reproduce, "results/claims",
            "where results go: PATH/<claim>/ and PATH/verdicts.md (default: results/claims)",
            dest="results", old="--results")
    add_execution_arguments(reproduce)
    reproduce.add_argument("--rerun-stale", action="store_true",
                           help="re-run stored runs that other code produced (another code fingerprint)")
    reproduce.set_defaults(handler=cmd_reproduce)

    nightly = sub.add_parser("nightly", help="the nightly asv job: run, compare, publish (see docs/nightly.md)",
                             description="the nightly asv job: run, compare, publish (see docs/nightly.md)")
    add_nightly_arguments(nightly)
    nightly.set_defaults(handler=cmd_nightly)

    listing = sub.add_parser("list", help="registered encodings, poolings, tasks and built-in suites",
                             description="registered encodings, poolings, tasks and built-in suites")
    listing.set_defaults(handler=cmd_list)

    from ablate.cli.clean import add_parser as add_clean_parser

    add_clean_parser(sub)
    return parser


def _version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch = version("torch")
    except PackageNotFoundError:
        torch = "not installed"
    return f"ablate {__version__} (python {sys.version.split()[0]}, torch {torch})"


def main(argv: list[str] | None = None) -> int:
    global console, err
    console, err = make_console(), make_console(stderr=True)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return args.handler(args)
    except (SuiteError, UserError) as error:
        err.print(f"[bold red]error[/]: {escape(str(error))}", highlight=False)
        return 2

