"""The report rendered from a synthetic frame: content of its tables, self-containment, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest_report import FAILED_REASON, make_frame

from ablate.report import compare_results, context, write_comparison, write_report
from ablate.stats import decisions


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    return write_report(make_frame(), tmp_path_factory.mktemp("report"))


def _section(markdown: str, title: str) -> str:
    """The Markdown of one ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r}"
    return match.group(1)


def _row(section: str, *cells: str) -> str:
    """The table line whose leading cells are ``cells``."""
    prefix = "| " + " | ".join(cells) + " |"
    lines = [line for line in section.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one row starting {prefix!r}, got {lines}"
    return lines[0]


def test_report_files_and_sections(report):
    assert report["html"].is_file() and report["markdown"].is_file()
    markdown = report["markdown"].read_text(encoding="utf-8")
    titles = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert titles == ["Findings", "What was run", "Main results", "Significance", "Length extrapolation", "Cost",
                      "Learning curves", "Failures, unsupported and OOM runs"]
    assert markdown.count("<details>") == 4  # the full tables (and the curves) follow the findings, folded
    for image in re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", markdown):
        assert (report["markdown"].parent / image).is_file()
    overview = _section(markdown, "What was run")
    assert "Grid axis encoding: sinusoidal (baseline), rope, alibi, learned" in overview
    assert "Seeds: 0, 1, 2, 3, 4 (5)" in overview and "| git_commit | abc1234 |" in overview


def test_findings_lead_with_decided_differences_and_the_convention(report, tmp_path):
    findings = _section(report["markdown"].read_text(encoding="utf-8"), "Findings")
    assert "Token-embedding convention (the same for every encoding)" in findings
    better = findings.split("Decided: better than the baseline")[1].split("Decided: worse")[0]
    assert "encoding=rope vs sinusoidal (pooling=cls) at L=32" in better
    assert "encoding=learned" not in better
    assert "Undecided (" in findings and "Bonferroni over" in findings
    # at the default threshold (0.9 for accuracies) no synthetic cell learned: nothing is compared
    frame = make_frame()
    frame.attrs["suite_config"] = {**frame.attrs["suite_config"], "report": {"main_metric": "accuracy"}}
    markdown = write_report(frame, tmp_path)["markdown"].read_text(encoding="utf-8")
    findings = _section(markdown, "Findings")
    assert "Did not learn the task at the train length (accuracy below 0.9)" in findings
    assert "Decided: better than the baseline (0)" in findings and "Not judged (" in findings
    assert "No cell learned the task at the train length" in _section(markdown, "Length extrapolation")


def test_main_table_marks_the_known_best_encoding(report):
    main = _section(report["markdown"].read_text(encoding="utf-8"), "Main results")
    assert "▲" in _row(main, "rope", "mean", "32")
    assert "baseline | baseline |" in _row(main, "sinusoidal", "mean", "32")
    assert "n.s." in _row(main, "alibi", "mean", "32")
    learned = _row(main, "learned", "mean", "128")
    assert "unsupported" in learned and "0/5" in learned
    assert "| 4/5 |" in _row(main, "alibi", "cls", "32")  # one seed failed


def test_significance_table_has_p_values_and_effect_sizes(report):
    section = _section(report["markdown"].read_text(encoding="utf-8"), "Significance")
    row = _row(section, "encoding", "rope vs sinusoidal", "pooling=mean", "32")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-1] == "better" and cells[4] == "5"
    assert float(cells[10]) > 1  # d_z
    assert cells[11] == "1.0"  # Cliff's delta: every rope run beats every sinusoidal run
    assert "p Holm (t)" in section and "Nemenyi critical difference" in section
    assert "| rope | 1.00 |" in section


def test_extrapolation_cost_and_failures(report):
    markdown = report["markdown"].read_text(encoding="utf-8")
    assert "rows 32..63 of the learned table were never trained" in _section(markdown, "Length extrapolation")
    cost = _section(markdown, "Cost")
    # one repeat and no rounds: a ratio without an interval is undecided, never a verdict
    assert "| alibi | 1.43× [not yet bounded] ? undecided | 1.43× [not yet bounded] ? undecided | oom |" in cost
    assert _row(cost, "alibi", "-0.200").endswith("| 2.00 |")  # quadratic memory, two points: no CI
    failures = _section(markdown, "Failures, unsupported and OOM runs")
    assert FAILED_REASON in _row(failures, "train", "encoding=alibi, pooling=cls", "failed")
    assert "CUDA out of memory (synthetic)" in failures


def test_html_is_self_contained(report):
    html = report["html"].read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(list(report["figures"].glob("*.png")))
    assert 'src="figures/' not in html and "http" not in html.split("<body>")[1]
    assert "<table>" in html and "&lt;" not in html.split("<body>")[0]


def test_report_is_deterministic(report, tmp_path):
    again = write_report(make_frame(), tmp_path)
    for kind in ("markdown", "html"):
        assert again[kind].read_bytes() == report[kind].read_bytes()


def test_not_enough_seeds_and_no_attrs(tmp_path):
    frame = make_frame(seeds=2, measure=False, attrs=False)
    markdown = write_report(frame, tmp_path)["markdown"].read_text(encoding="utf-8")
    assert "not enough seeds (n=2)" in _row(_section(markdown, "Main results"), "rope", "mean", "32")
    assert "No cost measurements" in _section(markdown, "Cost")
    assert "# Ablation report: synthetic" in markdown


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="main metric 'bleu'"):
        write_report(make_frame(measure=False), tmp_path, main_metric="bleu")
    with pytest.raises(ValueError, match="baseline encoding='nope'"):
        write_report(make_frame(measure=False), tmp_path, baseline={"encoding": "nope"})
    with pytest.raises(ValueError, match="empty"):
        write_report(pd.DataFrame(), tmp_path)


def test_compare_results_pairs_by_seed_and_matches_by_config():
    a, b = make_frame(seeds=16, measure=False), make_frame(seeds=16, measure=False, shift=0.03)
    b["run_id"] = "other-" + b["run_id"]  # another machine: different ids, same configurations
    b["env.hostname"] = "other-box"
    table = compare_results(a, b, labels=("main", "pr"))
    cell = table.query("encoding == 'rope' and pooling == 'mean' and metric == 'accuracy' and eval_length == 32")
    assert cell["ratio"].item() == pytest.approx((cell["mean_main"] + 0.03).item() / cell["mean_main"].item())
    assert (cell["paired_by"].item(), cell["pairs"].item()) == ("seeds", 16)
    assert cell["estimate"].item() == pytest.approx(0.03) and cell["verdict"].item() == "better"  # 16 of 16 pairs
    loss = table.query("encoding == 'rope' and pooling == 'mean' and metric == 'loss' and eval_length == 32")
    assert loss["verdict"].item() == "better"  # loss fell: better, since lower is better
    few = compare_results(make_frame(measure=False), make_frame(measure=False, shift=0.03))
    assert set(few.loc[few["metric"].eq("accuracy"), "verdict"]) == {"undecided"}  # 5 of 5 wins decide nothing
    with pytest.raises(ValueError, match="labels must differ"):
        compare_results(a, b, labels=("x", "x"))


def test_compare_results_without_common_seeds_and_unmatched_cells():
    a = make_frame(seeds=4, measure=False)
    b = make_frame(seeds=4, measure=False)
    b["seed"] = b["seed"] + 10  # no common seeds: nothing pairs
    b = b[b["encoding"] != "learned"]
    table = compare_results(a, b)
    rope = table.query("encoding == 'rope' and pooling == 'mean' and metric == 'accuracy' and eval_length == 32")
    assert rope["verdict"].item() == "no common seeds"
    learned = table[table["encoding"] == "learned"]
    assert set(learned["verdict"]) == {"only in A"}


def test_write_comparison(tmp_path):
    a, b = make_frame(), make_frame(shift=0.03)
    b["env.git_commit"] = "def5678"
    paths = write_comparison(a, b, tmp_path, labels=("main", "pr"))
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "Environment differences: git_commit" in markdown
    assert "| git_commit | abc1234 | def5678 |" in markdown
    assert "## accuracy" in markdown and "## throughput (tokens/s)" in markdown
    assert "see time_median_s" in markdown  # tokens/s is the time's reciprocal: no verdict of its own
    assert "| 1.000× [n/a] | 1 seeds | undecided |" in markdown  # one timing per configuration, no rounds
    assert paths["html"].is_file()


def test_learning_curves_are_drawn_when_given(tmp_path):
    frame = make_frame()
    runs = frame.drop_duplicates("run_id")[["run_id", "encoding", "pooling", "seed"]]
    curves = pd.concat([runs.assign(step=step, train_loss=1.0 / step, metric="accuracy", value=0.5 + step / 400)
                        for step in (50, 100, 150)], ignore_index=True)
    markdown = write_report(frame, tmp_path, curves=curves)["markdown"].read_text(encoding="utf-8")
    section = _section(markdown, "Learning curves")
    assert f"{runs['run_id'].nunique()} runs; each checked its validation accuracy" in section
    images = re.findall(r"!\[[^\]]*\]\((figures/learning-curves[^)]*)\)", section)
    assert images and all((tmp_path / image).is_file() for image in images)
    without = write_report(frame, tmp_path / "bare")["markdown"].read_text(encoding="utf-8")
    assert "No learning curves stored" in _section(without, "Learning curves")


def test_a_report_computes_the_cells_learned_status_once(monkeypatch, tmp_path):
    calls: list[str] = []
    original = decisions.cell_status

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(decisions, "cell_status", counted)
    monkeypatch.setattr(context, "cell_status", counted)
    markdown = write_report(make_frame(), tmp_path)["markdown"].read_text(encoding="utf-8")
    assert "Decided: better than the baseline" in markdown and "Length extrapolation" in markdown
    assert len(calls) == 1
