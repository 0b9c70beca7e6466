"""The command line as a user meets it: help, version, and one-line errors (exit 2, no traceback) for mistakes."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_suite import tiny_suite

from ablate import __version__
from ablate.cli import build_parser, main
from ablate.cli.args import RenamedFlag, execution
from ablate.results.export import read_export
from ablate.results.store import load_results

@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/det of the tiny suite (4 runs, trained once for the module)."""
    root = tmp_path_factory.mktemp("cli")
    suite = root / "det.toml"
    suite.write_text(tiny_suite("det", header='description = "tiny <b>suite</b> & co"\n'))
    assert main(["run", str(suite), "--out", str(root / "results"), "--no-report"]) == 0
    return root / "results" / "det"


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``argv``; assert exit 2 and a single ``error:`` line on stderr (no traceback); return it."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and "Traceback" not in captured.err
    return lines[0]


def test_bare_ablate_prints_help_and_starts_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: ablate" in out and "run" in out and "export" in out
    assert not (tmp_path / "results").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"ablate {__version__} (python 3.")


@pytest.mark.parametrize("module", ["ablate", "ablate.cli"])
def test_python_dash_m_runs_the_command_line(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and done.stdout.startswith(f"ablate {__version__} (python 3."), done.stderr[-1000:]


@pytest.mark.parametrize("argv, expected", [
    (["run", "quickstart", "--workers", "0"], "--workers: expected a whole number >= 1, got 0"),
    (["run", "quickstart", "--threads", "-2"], "--threads: expected a whole number >= 1, got -2"),
    (["reproduce", "alibi-lm", "--workers", "0"], "--workers: expected a whole number >= 1, got 0"),
    (["run", "quickstart", "--executor", "slurm"], "invalid choice: 'slurm'"),
    (["run", "quickstart", "--num-gpus", "1"], "--num-gpus is a Ray option: add --executor ray"),
    (["run", "quickstart", "--address", "auto", "--executor", "process"], "--address is a Ray option"),
    (["reproduce", "alibi-lm", "--num-cpus", "2"], "--num-cpus is a Ray option"),
    (["run", "quickstart", "--executor", "local", "--workers", "4"], "--workers 4 needs a process pool"),
    (["run", "quickstart", "--executor", "ray", "--workers", "2"], "--workers does not apply to --executor ray"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["nightly", "--accuracy-drop", "5"], "--accuracy-drop: expected a fraction between 0 and 1"),
    (["plan", "quickstart", "--set", "train.stepz=3"], "unknown key 'train.stepz'. Did you mean 'train.steps'"),
    (["plan", "quickstart", "--set", "train.steps=abc"], "train.steps: Input should be a valid integer"),
    (["plan", "quickstart", "--set", "train.steps"], "expected KEY=VALUE"),
    (["bench", "cost", "--set", "measure.lengths=[-5]"], "measure.lengths.0: Input should be greater than 0 (from --set"),
    (["plan", "quickstartt"], "Did you mean 'quickstart'"),
    (["reproduce", "alibi-lmm"], "unknown claim 'alibi-lmm'. Did you mean 'alibi-lm'"),
    (["report", "no/such/folder"], "no results.sqlite here; run 'ablate run SUITE' first"),
    (["export", "no/such/folder"], "no results.sqlite here"),
    (["compare", "no/such/a", "no/such/b"], "no results.sqlite here"),
])
def test_command_line_mistakes_are_one_line(capsys, argv, expected):
    assert expected in one_line_error(capsys, argv)


def test_an_empty_suite_file_is_an_error(capsys, tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n")
    line = one_line_error(capsys, ["validate", str(empty)])
    assert "the suite is empty" in line and "task = { name" in line
    named = tmp_path / "named.toml"
    named.write_text('name = "x"\ndescription = "only words"\n')
    assert "the suite is empty" in one_line_error(capsys, ["plan", str(named)])


def test_a_claim_file_given_as_a_suite_says_how_to_run_it(capsys):
    claim = Path(__file__).resolve().parents[1] / "suites" / "claims" / "alibi_lm.toml"
    line = one_line_error(capsys, ["plan", str(claim)])
    assert "is a claim file" in line and f"ablate reproduce {claim}" in line


def test_report_option_mistakes_name_what_exists(capsys, stored, tmp_path):
    out = ["--out", str(tmp_path / "report")]
    line = one_line_error(capsys, ["report", str(stored), "--main-metric", "acuracy", *out])
    assert "Did you mean 'accuracy'?" in line and "Metrics: accuracy" in line
    line = one_line_error(capsys, ["report", str(stored), "--baseline", "encodng=none", *out])
    assert "not a grid axis" in line and "Did you mean 'encoding'?" in line
    line = one_line_error(capsys, ["report", str(stored), "--baseline", "encoding=nope", *out])
    assert "Did you mean 'none'?" in line and "Values: none, learned" in line
    line = one_line_error(capsys, ["report", str(stored), "--baseline", "encoding", *out])
    assert "expected AXIS=VALUE" in line
    assert not (tmp_path / "report").exists()
    line = one_line_error(capsys, ["report", str(stored), "--baseline", "encoding=learned", *out])
    assert "Did you mean 'learned[max_positions=12]'?" in line
    assert main(["report", str(stored), "--baseline", "encoding=learned[max_positions=12]", *out]) == 0
    assert (tmp_path / "report" / "summary.csv").is_file() and (tmp_path / "report" / "comparisons.csv").is_file()


def test_results_root_suggests_its_suites(capsys, stored):
    line = one_line_error(capsys, ["report", str(stored.parent)])
    assert f"results folders here: {stored}" in line


def test_compare_derives_distinct_labels_for_the_same_suite(capsys, stored, tmp_path):
    a, b = tmp_path / "A" / "det", tmp_path / "B" / "det"
    shutil.copytree(stored, a)
    shutil.copytree(stored, b)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    capsys.readouterr()
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "A/det" in markdown and "B/det" in markdown
    line = one_line_error(capsys, ["compare", str(a), str(a)])
    assert "are the same folder" in line
    assert "must differ" in one_line_error(capsys, ["compare", str(a), str(b), "--labels", "x", "x"])


def test_export_round_trips_through_the_command_line(capsys, stored, tmp_path):
    target = tmp_path / "out.csv"
    assert main(["export", str(stored), "--format", "csv", "-o", str(target)]) == 0
    back, original = read_export(target), load_results(stored)
    assert list(back.columns) == list(original.columns) and len(back) == len(original) > 0
    assert back["value"].tolist() == pytest.approx(original["value"].tolist(), nan_ok=True)


def test_tables_printed_to_a_pipe_are_whole(capsys):
    assert main(["plan", "quickstart", "--all"]) == 0  # capsys: stdout is not a terminal
    out = capsys.readouterr().out
    assert "…" not in out and "eval lengths" in out and "32,64,128" in out and "measure" in out
    assert max(len(line) for line in out.splitlines()) > 80  # wider than the 80 columns rich assumed before


def _arguments(parser: argparse.ArgumentParser, prog: str = "ablate"):
    """``(command, action)`` of every argument of ``parser`` and its subcommands, and each subcommand's entry."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{prog} {choice.dest}", choice
            for name, child in action.choices.items():
                yield from _arguments(child, f"{prog} {name}")
        else:
            yield prog, action


def test_every_argument_has_a_help_line():
    arguments = list(_arguments(build_parser()))
    assert len(arguments) > 60 and any(command == "ablate clean" for command, _ in arguments)  # really walked
    missing = [f"{command} {'/'.join(a.option_strings) or a.dest}" for command, a in arguments
               if not (a.help and a.help.strip()) and not isinstance(a, RenamedFlag)]
    assert missing == [], "arguments without a help line"
    hidden = [a for _, a in arguments if a.help == argparse.SUPPRESS]
    assert all(isinstance(a, RenamedFlag) for a in hidden)  # only an old name of a flag is hidden


@pytest.mark.parametrize("command", ["run", "reproduce"])
@pytest.mark.parametrize("flags, executor, workers", [
    ([], "local", 1),
    (["--workers", "1"], "local", 1),
    (["--workers", "3"], "process", 3),  # more than one worker is a process pool, with or without --executor
    (["--executor", "process"], "process", 1),
    (["--executor", "process", "--workers", "2"], "process", 2),
])
def test_workers_choose_the_executor_the_same_way_for_run_and_reproduce(command, flags, executor, workers):
    how = execution(build_parser().parse_args([command, *flags]))
    assert (how.executor, how.workers) == (executor, workers)
    assert how.executor_options == {}


def test_ray_flags_reach_the_ray_executor():
    args = build_parser().parse_args(["run", "--executor", "ray", "--address", "auto", "--num-gpus", "0.5",
                                      "--threads", "2"])
    assert execution(args).executor_options == {"address": "auto", "num_gpus": 0.5, "threads": 2}


def test_one_name_for_the_output_folder_and_old_names_still_act(capsys):
    parser = build_parser()
    for command in (["run"], ["bench", "cost"], ["report", "r"], ["compare", "a", "b"], ["export", "r"],
                    ["reproduce"], ["clean", "r"]):
        subparser = parser._subparsers._group_actions[0].choices[command[0]]
        options = {o for a in subparser._actions for o in a.option_strings}
        assert {"-o", "--out"} <= options, command
    args = parser.parse_args(["run", "--results", "elsewhere"])
    assert args.results == "elsewhere" and "--results is now --out" in capsys.readouterr().err
    assert parser.parse_args(["export", "r", "--output", "x.csv"]).output == "x.csv"


def test_labels_with_brackets_are_printed_whole() -> None:
    """A variant label such as nezha[values=false] is text, not console markup: two variants must not print alike."""
    import pandas as pd
    from rich.console import Console

    from ablate.cli.tables import bench_table

    rows = [{"encoding": name, "pooling": "mean", "measure.mode": "train_step", "measure.batch_size": 8,
             "measure.dtype": "float32", "eval_length": 512, "metric": "time_median_s", "value": 0.1, "status": "ok"}
            for name in ("nezha", "nezha[values=false]")]
    console = Console(record=True, width=200)
    console.print(bench_table(pd.DataFrame(rows)))
    assert "nezha[values=false]" in console.export_text()
