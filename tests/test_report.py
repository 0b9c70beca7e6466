"""The report rendered from a synthetic frame: content of its tables, self-containment, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest_report import FAILED_REASON, make_frame

from ablate.analysis.report import compare_results, context, write_comparison, write_report
from ablate.analysis.stats import decisions


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
    assert titles == ["Findings", "What was run", "Main results", "Significance", "Length extrapolation", "By position",
                      "Cost", "Quality against cost", "Learning curves", "Failures, unsupported and OOM runs"]
    # the undecided comparisons, the full tables and the curves follow the findings, folded
    assert markdown.count("<details>") == 5
    for image in re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", markdown):
        assert (report["markdown"].parent / image).is_file()
    overview = _section(markdown, "What was run")
    assert "Grid axis encoding: sinusoidal (baseline), rope, alibi, learned" in overview
    assert "Seeds: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 (16)" in overview
    assert "| git_commit | abc1234 |" in overview


def test_findings_lead_with_the_verdicts_and_the_convention(report, tmp_path):
    findings = _section(report["markdown"].read_text(encoding="utf-8"), "Findings")
    assert "Token-embedding convention (the same for every encoding)" in findings
    assert "figures/verdicts.png" in findings  # the forest plot of every judged comparison
    decided = findings.split("*Decided:")[1].split("<details>")[0]
    assert "| rope vs sinusoidal · pooling=cls · L=32 | better | 16 / 0 / 0 |" in decided
    assert "alibi vs sinusoidal · pooling=cls · L=32" not in decided  # equal up to noise: undecided
    assert "Bonferroni" in findings and "family-wise" in findings
    undecided = findings.split("<summary>Undecided:")[1].split("</details>")[0]
    assert "| alibi vs sinusoidal · pooling=cls · L=32 | undecided |" in undecided
    # alibi with mean pooling cannot see direction on `order`: named once, not compared
    assert "| encoding=alibi, pooling=mean | symmetric bias encoder + symmetric pooling" in findings
    # at a threshold of 0.99 no synthetic seed learned: no comparison of two failed cells is judged
    frame = make_frame()
    frame.attrs["suite_config"] = {**frame.attrs["suite_config"],
                                   "report": {"main_metric": "accuracy", "learned_threshold": 0.99}}
    markdown = write_report(frame, tmp_path)["markdown"].read_text(encoding="utf-8")
    findings = _section(markdown, "Findings")
    assert "| encoding=sinusoidal, pooling=mean | 0 of 16 |" in findings and "did not learn |" in findings
    assert "*Decided: 0 of 0" in findings and "neither cell learns the task" in findings
    assert "No seed learned the task at the train length" in _section(markdown, "Length extrapolation")


def test_main_table_shows_the_findings_verdict(report):
    main = _section(report["markdown"].read_text(encoding="utf-8"), "Main results")
    assert "▲ better" in _row(main, "rope", "mean", "32")
    assert "baseline | baseline |" in _row(main, "sinusoidal", "mean", "32")
    assert "undecided" in _row(main, "alibi", "cls", "32")
    assert "not judged" in _row(main, "alibi", "mean", "32")  # unable by construction
    learned = _row(main, "learned", "mean", "128")
    assert "unsupported" in learned and "0/16" in learned
    assert "| 15/16 |" in _row(main, "alibi", "cls", "32")  # one seed failed


def test_significance_table_has_the_verdict_and_descriptions(report):
    section = _section(report["markdown"].read_text(encoding="utf-8"), "Significance")
    row = _row(section, "encoding", "rope vs sinusoidal", "pooling=mean", "32")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5] == "better" and cells[4] == "16"
    assert float(cells[8]) > 1  # d_z
    assert float(cells[9]) > 0.9  # Cliff's delta: nearly every rope run beats every sinusoidal run
    assert "description" in section and "Holm" not in section and "Nemenyi critical difference" in section
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
    assert "undecided" in _row(_section(markdown, "Main results"), "rope", "mean", "32")
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
    few = compare_results(make_frame(seeds=5, measure=False), make_frame(seeds=5, measure=False, shift=0.03))
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


def test_a_report_computes_its_verdicts_once(monkeypatch, tmp_path):
    calls: list[str] = []
    original = decisions.comparisons

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(decisions, "comparisons", counted)
    monkeypatch.setattr(context, "comparisons", counted)
    markdown = write_report(make_frame(), tmp_path)["markdown"].read_text(encoding="utf-8")
    assert "*Decided:" in markdown and "Length extrapolation" in markdown
    assert len(calls) == 1  # every section reads the one table


def test_parameters_never_reached_lists_encodings_notes_not_stop_reasons(tmp_path):
    frame = make_frame(measure=False)
    runs = frame[frame["kind"].eq("train") & frame["metric"].eq("accuracy") & frame["eval_length"].eq(32)]
    stops = runs.assign(metric="criterion_met", value=1.0, note="stopped: target", higher_is_better=True)
    frame = pd.concat([frame, stops], ignore_index=True)
    section = _section(write_report(frame, tmp_path)["markdown"].read_text(encoding="utf-8"), "Length extrapolation")
    listed = section.split("Parameters that training never reached")[1]
    assert "stopped" not in listed
    assert "- learned at length 64: rows 32..63 of the learned table were never trained" in listed
    assert "sinusoidal" not in listed and "rope" not in listed  # nothing of theirs is untrained


def test_critical_difference_diagram_only_with_enough_blocks(tmp_path):
    markdown = write_report(make_frame(seeds=5, measure=False), tmp_path / "five")["markdown"].read_text(encoding="utf-8")
    significance = _section(markdown, "Significance")
    assert "critical-difference.png" not in significance  # 5 seeds x 2 poolings, one alibi run failed: 9 blocks
    assert "No critical-difference diagram: it would rest on N = 9 blocks, and is drawn only from N = 10" in significance
    markdown = write_report(make_frame(seeds=6, measure=False), tmp_path)["markdown"].read_text(encoding="utf-8")
    significance = _section(markdown, "Significance")
    assert "figures/critical-difference.png" in significance and "over N = 11 blocks" in significance


def test_quality_against_cost_holds_the_other_axes_where_most_values_have_both(report):
    section = _section(report["markdown"].read_text(encoding="utf-8"), "Quality against cost")
    # only pooling=mean was measured; there alibi cannot learn by construction and learned is unsupported at 128
    assert "accuracy at the longest evaluation length (128;" in section and "pooling=mean" in section
    assert "forward cost at L=512" in section  # alibi ran out of memory at 2048
    assert (report["figures"] / "quality-cost.png").is_file()
    markdown = write_report(make_frame(measure=False), report["figures"].parent / "bare")["markdown"]
    assert "No quality-against-cost figure" in _section(markdown.read_text(encoding="utf-8"), "Quality against cost")


def test_a_report_without_verdicts_judges_nothing(tmp_path):
    # a claim's report: its predicates are the verdicts, so no comparison carries a second one
    from ablate.analysis.report.document import Paragraph, Section

    preface = Section("Claim: reproduced", [Paragraph("The claim's predicates.")])
    paths = write_report(make_frame(), tmp_path, preface=preface, verdicts=False)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert markdown.index("## Claim: reproduced") < markdown.index("## Findings")
    assert "▲" not in markdown and "▼" not in markdown and "better" not in _section(markdown, "Main results")
    assert "comparisons table" not in paths and "verdicts.png" not in markdown
