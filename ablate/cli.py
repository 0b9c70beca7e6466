"""``ablate``: the command line.

User mistakes (a bad suite file, an unknown name, a missing results folder, a
bad flag value) print one clear message and exit 2, never a traceback. ``ablate
run`` exits 1 when any run failed, 130 when interrupted (finished runs are kept).
A bare ``ablate`` prints the help. Tables printed to a file or pipe are never cut
(:mod:`ablate.console`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from rich.markup import escape
from rich.table import Table

from ablate import __version__
from ablate.cli_args import check_report_options, positive_int
from ablate.console import make_console
from ablate.errors import UserError
from ablate.export import FORMATS, require_results
from ablate.suite import SuiteError, load_plan
from ablate.suite.run_config import TrainRun, parse_train_run

DEFAULT_SUITE = "quickstart"
# Made again in main(): whether stdout/stderr are terminals decides their width.
console = make_console()
err = make_console(stderr=True)


# --------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    from ablate.runner import run_plan

    plan = load_plan(args.suite, args.set)
    kinds = ("train", "measure") if (plan.suite.measure and plan.suite.measure.with_run) else ("train",)
    selected = [r for r in plan.runs if r.kind in kinds]
    err.print(f"[bold]{plan.name}[/]: {len(selected)} runs -> {Path(args.results) / plan.name}")
    options: dict[str, Any] = {}
    if args.executor == "ray":
        options = {"address": args.address, "num_cpus": args.num_cpus, "num_gpus": args.num_gpus}
    if args.threads is not None:
        options["threads"] = args.threads
    try:
        summary = run_plan(plan, args.results, executor=args.executor, workers=args.workers,
                           rerun_failed=args.rerun_failed, kinds=kinds, executor_options=options)
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
    from ablate.runner import run_plan
    from ablate.store import load_results

    plan = load_plan(args.suite, args.set)
    if plan.suite.measure is None:
        raise UserError(f"{plan.path}: has no [measure] section; add one to use 'ablate bench'")
    try:
        summary = run_plan(plan, args.results, kinds=("measure",), rerun_failed=args.rerun_failed)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished measurements are stored")
        return 130
    frame = load_results(summary.results_dir)
    _print_bench_table(frame[frame["kind"] == "measure"])
    _print_cost_verdicts(frame[frame["kind"] == "measure"], summary.results_dir)
    return 1 if summary.any_failed else 0


def _print_cost_verdicts(frame: Any, results_dir: Path) -> None:
    """Each cost as a ratio to its baseline, with its interval and verdict (the report's cost section)."""
    from ablate.measure.rounds_table import load_rounds
    from ablate.report.context import report_settings
    from ablate.report.cost import cost_verdicts, ratio_text, suite_margins
    from ablate.stats import baseline_of, grid_axes

    axes = grid_axes(frame)
    if frame.empty or not axes:
        return
    baseline = baseline_of(frame, axes)
    verdicts = cost_verdicts(frame, load_rounds(results_dir), axis=axes[0], baseline=baseline,
                             alpha=report_settings(frame)["alpha"], margins=suite_margins(frame))
    if verdicts.empty:
        return
    shown = [a for a in axes if a in verdicts.columns] + [c for c in ("measure.mode",) if c in verdicts.columns]
    table = Table(title=escape(f"cost relative to {axes[0]} = {baseline[axes[0]]}: median paired ratio [interval] "
                               "and verdict (the report's cost section)"))
    for column in (*shown, "length", "metric", "ratio", "pairs"):
        table.add_column(column)
    for row in verdicts.to_dict("records"):
        table.add_row(*[str(row[c]) for c in shown], str(row["eval_length"]), row["metric"], ratio_text(row),
                      f"{row['n']} {row['paired_by']}")
    console.print(table)


def _print_bench_table(frame: Any) -> None:
    if frame.empty:
        err.print("no measurements")
        return
    import pandas as pd

    wide = frame.pivot_table(index=["encoding", "pooling", "measure.mode", "measure.batch_size", "measure.dtype", "eval_length"],
                             columns="metric", values="value", aggfunc="median", dropna=False)  # median over repeats
    status = frame.groupby(["encoding", "pooling", "measure.mode", "measure.batch_size", "measure.dtype", "eval_length"])["status"].first()
    table = Table(title="ablate bench")
    for column in ("encoding", "pooling", "mode", "batch", "dtype", "length", "tokens/s", "median ms", "IQR ms", "peak MiB", "status"):
        table.add_column(column)
    for key, row in wide.iterrows():
        fmt = lambda v, s=1.0, p=1: "" if pd.isna(v) else f"{v * s:,.{p}f}"  # noqa: E731
        table.add_row(*[str(k) for k in key], fmt(row.get("tokens_per_s"), 1, 0), fmt(row.get("time_median_s"), 1e3, 2),
                      fmt(row.get("time_iqr_s"), 1e3, 2), fmt(row.get("peak_memory_bytes"), 2**-20, 1), str(status[key]))
    console.print(table)


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
        table.add_row(run.run_id, run.kind, *[str(run.axes.get(a, "")) for a in plan.axes], str(typed.seed),
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


def cmd_validate(args: argparse.Namespace) -> int:
    for suite in args.suites:
        plan = load_plan(suite, args.set)
        console.print(f"[green]ok[/] {plan.path}: {len(plan.runs)} runs")
    return 0


# ------------------------------------------------------------- report / compare
def _report(results_dir: Path, out: Path, main_metric: str | None, baseline: dict[str, str] | None) -> None:
    from ablate.measure.rounds_table import load_rounds
    from ablate.report import write_report
    from ablate.store import load_curves, load_results

    frame = load_results(results_dir)
    if frame.empty:
        err.print(f"{results_dir}: no results yet, no report")
        return
    check_report_options(frame, main_metric, baseline)
    paths = write_report(frame, out, main_metric=main_metric, baseline=baseline or None,
                         curves=load_curves(results_dir), rounds=load_rounds(results_dir))
    for kind, path in paths.items():
        err.print(f"{kind}: {path}")


def cmd_report(args: argparse.Namespace) -> int:
    results = require_results(args.results_dir)
    baseline = dict(_key_value(item, "--baseline") for item in args.baseline)
    _report(results, Path(args.out) if args.out else results / "report", args.main_metric, baseline)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ablate.export import export_results

    for kind, path in export_results(args.results_dir, args.format, args.output).items():
        err.print(f"{kind}: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ablate.measure.rounds_table import load_rounds
    from ablate.report import compare_results, write_comparison
    from ablate.report.compare import regressions
    from ablate.report.context import choose_main_metric
    from ablate.report.labels import derive_labels
    from ablate.store import load_results

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

    return claims.main(args)


def cmd_nightly(args: argparse.Namespace) -> int:
    from ablate import nightly

    return nightly.main(args)


def cmd_list(args: argparse.Namespace) -> int:
    from ablate.encodings import ENCODINGS
    from ablate.pooling import POOLINGS
    from ablate.runner import EXECUTORS
    from ablate.suite import suites_dir
    from ablate.tasks import TASKS

    for title, names in (("encodings", ENCODINGS.names()), ("poolings", POOLINGS.names()), ("tasks", TASKS.names()),
                         ("executors", EXECUTORS.names() + (["ray"] if "ray" not in EXECUTORS else [])),
                         ("suites", sorted(p.stem for p in suites_dir().glob("*.toml")))):
        console.print(f"[bold]{title}[/]: {', '.join(names)}")
    return 0


# ---------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (what was wrong, then where the help is) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}; see '{self.prog} -h'")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ablate", description="Ablations of positional encodings and pooling.")
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command")

    def suite_command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str, *, optional: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        if optional:
            p.add_argument("suite", nargs="?", default=DEFAULT_SUITE, help=f"suite file or built-in name (default: {DEFAULT_SUITE})")
        else:
            p.add_argument("suite", help="suite file or built-in name")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a suite value (TOML syntax)")
        p.set_defaults(handler=handler)
        return p

    run = suite_command("run", cmd_run, "train and evaluate every run of a suite (resumable)", optional=True)
    run.add_argument("--executor", default="local", choices=["local", "process", "ray"])
    run.add_argument("--workers", type=positive_int, default=1, help="processes for --executor process")
    run.add_argument("--threads", type=positive_int, default=None,
                     help="torch threads per worker (default: the cores divided among the workers)")
    run.add_argument("--address", default=None, help="Ray cluster address (auto, ray://host:port)")
    run.add_argument("--num-cpus", type=float, default=1.0, help="Ray: CPUs per run")
    run.add_argument("--num-gpus", type=float, default=0.0, help="Ray: GPUs per run")
    run.add_argument("--results", default="results", help="results root (default: results/)")
    run.add_argument("--rerun-failed", action="store_true", help="retry runs stored as failed or oom")
    run.add_argument("--no-report", action="store_true", help="skip writing the report afterwards")

    bench = suite_command("bench", cmd_bench, "run only a suite's [measure] section (throughput, memory)")
    bench.add_argument("--results", default="results")
    bench.add_argument("--rerun-failed", action="store_true")

    plan = suite_command("plan", cmd_plan, "print the expanded runs without running anything")
    plan.add_argument("--all", action="store_true", help="list every run")

    validate = sub.add_parser("validate", help="check suite files")
    validate.add_argument("suites", nargs="+")
    validate.add_argument("--set", action="append", default=[])
    validate.set_defaults(handler=cmd_validate)

    report = sub.add_parser("report", help="statistics, plots and HTML/Markdown report of stored results")
    report.add_argument("results_dir")
    report.add_argument("--out", default=None, help="output folder (default: RESULTS_DIR/report)")
    report.add_argument("--main-metric", default=None)
    report.add_argument("--baseline", action="append", default=[], metavar="AXIS=VALUE")
    report.set_defaults(handler=cmd_report)

    compare = sub.add_parser("compare", help="compare two result folders of the same suite")
    compare.add_argument("a")
    compare.add_argument("b")
    compare.add_argument("--out", default="results/compare")
    compare.add_argument("--labels", nargs=2, default=None,
                         help="names of A and B (default: from the folders, else their commits or machines)")
    compare.add_argument("--fail-on", choices=["regression"], default=None,
                         help="exit 1 when B is decidedly worse than A in time, memory or the main metric "
                              "(one line per regression)")
    compare.set_defaults(handler=cmd_compare)

    export = sub.add_parser("export", help="stored results as CSV, Parquet or JSON (tidy table, plus curves)")
    export.add_argument("results_dir")
    export.add_argument("--format", default="csv", choices=list(FORMATS))
    export.add_argument("-o", "--output", default=None,
                        help="file for the results table (default: RESULTS_DIR/export/results.<ext>; '-' for stdout)")
    export.set_defaults(handler=cmd_export)

    reproduce = sub.add_parser("reproduce", help="reproduce published length-extrapolation claims")
    reproduce.add_argument("claims", nargs="*")
    reproduce.add_argument("--list", action="store_true")
    reproduce.add_argument("--scale", default="small")
    reproduce.add_argument("--results", default="results/claims")
    reproduce.add_argument("--workers", type=positive_int, default=1)
    reproduce.set_defaults(handler=cmd_reproduce)

    from ablate.nightly import add_arguments as add_nightly_arguments

    nightly = sub.add_parser("nightly", help="the nightly asv job: run, compare, publish (see docs/nightly.md)")
    add_nightly_arguments(nightly)
    nightly.set_defaults(handler=cmd_nightly)

    listing = sub.add_parser("list", help="registered encodings, poolings, tasks and built-in suites")
    listing.set_defaults(handler=cmd_list)

    from ablate.clean import add_parser as add_clean_parser

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


if __name__ == "__main__":
    # Run as `python -m ablate.cli`: delegate to the imported module, so error classes
    # that other modules import from ablate.cli are the ones main() catches.
    from ablate.cli import main as _main

    sys.exit(_main())
