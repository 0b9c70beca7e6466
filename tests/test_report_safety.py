"""The HTML report escapes whatever text the results carry (suite description, failure reasons)."""

from __future__ import annotations

from conftest_report import make_frame

from ablate.analysis.report import write_report
from ablate.analysis.report.document import autoescape

HOSTILE = "<script>alert('x')</script> & <b>bold</b>"


def test_description_and_failure_reason_are_escaped(tmp_path):
    frame = make_frame(seeds=3)
    frame.attrs["suite_config"] = {**frame.attrs.get("suite_config", {}), "description": f"suite {HOSTILE}"}
    failed = frame["status"].eq("failed")
    assert failed.any()
    frame.loc[failed, "reason"] = f"RuntimeError: {HOSTILE}"
    html = (write_report(frame, tmp_path)["html"]).read_text()
    assert "<script>" not in html and "<b>bold</b>" not in html and "& <b>" not in html
    assert "suite &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "RuntimeError: &lt;script&gt;" in html


def test_every_html_template_is_autoescaped():
    assert autoescape("report.html.j2") and autoescape("comparison.html") and autoescape(None)
    assert not autoescape("report.md.j2")


def test_report_tables_are_saved_as_data(tmp_path):
    import pandas as pd

    from ablate.analysis import stats

    frame = make_frame(seeds=3)
    paths = write_report(frame, tmp_path)
    summary = pd.read_csv(paths["summary table"])
    expected = stats.summarize(frame)
    assert len(summary) == len(expected) and {"mean", "std", "n", "ci_low", "ci_high"} <= set(summary.columns)
    pd.testing.assert_series_equal(summary["mean"], expected["mean"].astype(float).reset_index(drop=True))
    comparisons = pd.read_csv(paths["comparisons table"])
    assert {"axis", "baseline", "verdict", "win_low", "estimate", "low", "high", "margin", "cliffs_delta"} <= set(
        comparisons.columns) and len(comparisons)
