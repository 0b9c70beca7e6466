"""Figures from a synthetic frame: they render, carry the right labels and series, and save reproducibly."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest_report import ENCODINGS, make_frame
from matplotlib.figure import Figure

from ablate.analysis import plots
from ablate.model.encodings import ENCODINGS as ENCODINGS_REGISTRY


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_styles_are_keyed_by_value_and_distinct(frame):
    styles = plots.value_styles(frame)
    assert list(styles) == ENCODINGS
    assert len({s.color for s in styles.values()}) == len(ENCODINGS)
    # a value's style is its own: not its order, not which other values the figure shows
    assert plots.value_styles(list(reversed(ENCODINGS))) == styles
    assert plots.value_styles(["rope"])["rope"] == styles["rope"]
    assert plots.value_styles(["rope"], "pooling") != plots.value_styles(["rope"])  # per axis
    registered = plots.value_styles(ENCODINGS_REGISTRY.names())
    assert len({(s.color, s.marker) for s in registered.values()}) == len(registered) >= 11
    assert len({s.color for s in registered.values()}) == len(registered)  # every encoding its own colour
    many = plots.value_styles([f"e{i}" for i in range(40)])
    assert len({(s.color, s.marker) for s in many.values()}) == 40


def test_a_variant_of_an_encoding_keeps_its_colour_with_another_marker(frame):
    styles = plots.value_styles(["rope", "rope + pi", "rope + yarn", "rope[scaling=pi,factor=4]", "alibi"], "curve")
    kinds = [styles[v] for v in ("rope + pi", "rope + yarn", "rope[scaling=pi,factor=4]")]
    assert {s.color for s in kinds} == {styles["rope"].color} and {s.linestyle for s in kinds} == {"--"}
    assert len({s.marker for s in kinds} | {styles["rope"].marker}) == 4
    assert plots.value_styles(["rope + pi"], "curve")["rope + pi"].color == styles["rope"].color


def test_metric_labels_have_units():
    assert plots.metric_label("peak_memory_bytes") == "peak memory (MiB)"
    assert plots.metric_label("tokens_per_s") == "throughput (tokens/s)"
    assert plots.metric_scale("peak_memory_bytes") == 1 / 2**20
    assert plots.metric_label("my_metric") == "my metric"


def test_heatmap_annotates_means_and_marks(frame):
    fig = plots.heatmap(frame, "accuracy")
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("pooling", "encoding")
    assert [t.get_text() for t in ax.get_yticklabels()] == ENCODINGS
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == len(ENCODINGS) * 2
    assert sum("▲" in t for t in texts) == 2  # rope beats sinusoidal under both poolings
    assert fig.axes[1].get_ylabel() == "accuracy"  # colour bar


def test_extrapolation_curves_series_and_train_length(frame):
    fig = plots.extrapolation_curves(frame, "accuracy")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "evaluation length (tokens)" and ax.get_ylabel() == "accuracy"
    labels = _legend_texts(ax)
    assert [label for label in labels if label in ENCODINGS] == ENCODINGS
    assert "train length" in labels and any("unsupported" in label for label in labels)
    assert ax.get_xscale() == "log"
    assert "pooling=mean" in ax.get_title()


def test_cost_curves_show_exponents_and_oom(frame):
    fig = plots.cost_curves(frame)
    throughput, memory = fig.axes
    assert throughput.get_ylabel() == "throughput (tokens/s)" and memory.get_ylabel() == "peak memory (MiB)"
    assert memory.get_xscale() == "log" and memory.get_yscale() == "log"
    labels = _legend_texts(memory)
    assert "alibi (∝ L^2.00)" in labels and "rope (∝ L^1.00)" in labels
    assert "out of memory" in labels and "learned (no ok result)" in labels
    with pytest.raises(ValueError, match="no cost metrics"):
        plots.cost_curves(frame[frame["kind"] == "train"])


def test_critical_difference_diagram(frame):
    fig = plots.critical_difference_diagram(frame, "accuracy")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("CD = ") for t in texts)
    assert sum(any(t.startswith(f"{e} (") for t in texts) for e in ENCODINGS) == len(ENCODINGS)


def test_seed_strip_has_one_column_per_encoding(frame):
    fig = plots.seed_strip(frame, "accuracy")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ENCODINGS
    assert ax.get_ylabel() == "accuracy" and ax.get_xlabel() == "encoding"
    assert len(ax.collections) >= len(ENCODINGS)


def test_unknown_metric_raises(frame):
    with pytest.raises(ValueError, match="no 'bleu' rows"):
        plots.extrapolation_curves(frame, "bleu")


def test_save_figure_is_reproducible(frame, tmp_path):
    first = plots.save_figure(plots.critical_difference_diagram(frame, "accuracy"), tmp_path / "a" / "cd")
    second = plots.save_figure(plots.critical_difference_diagram(frame, "accuracy"), tmp_path / "b" / "cd.png")
    assert [p.suffix for p in first] == [".png", ".svg"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_pareto_front_keeps_what_nothing_beats_on_both_axes():
    cost = [1.0, 2.0, 3.0, 2.0, 4.0]
    quality = [0.5, 0.7, 0.6, 0.8, 0.9]
    assert plots.pareto_front(cost, quality) == [0, 3, 4]  # 1 and 2 cost as much or more for less
    assert plots.pareto_front(cost, [-q for q in quality], higher_is_better=False) == [0, 3, 4]
    assert plots.pareto_front([1.0, 1.0], [0.5, 0.5]) == [0]  # a tie keeps the first
    assert plots.pareto_front([1.0, float("nan")], [0.5, 0.9]) == [0]


def test_quality_cost_draws_a_point_per_value_with_its_intervals():
    points = pd.DataFrame({"encoding": ["rope", "alibi"], "quality": [0.9, 0.8], "quality_low": [0.85, 0.7],
                           "quality_high": [0.95, 0.9], "time_median_s": [2.0, 1.0], "time_median_s_low": [1.8, 0.9],
                           "time_median_s_high": [2.2, 1.1]})
    fig = plots.quality_cost(points, axis="encoding", quality="quality", costs=["time_median_s"], higher_is_better=True)
    ax = fig.axes[0]
    styles = plots.value_styles(["rope", "alibi"])
    drawn = {line.get_marker(): line.get_color() for line in ax.lines if line.get_linestyle() == "None"}
    assert drawn[styles["rope"].marker] == styles["rope"].color
    assert ax.get_xlabel() == "median step time (s)"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["rope", "alibi", "Pareto front"]


def test_styles_do_not_depend_on_the_order_encodings_were_imported():
    import subprocess
    import sys

    # registered before discovery, as in a worker
    script = ("import ablate.model.encodings.rotary, ablate.model.encodings.alibi\n"
              "from ablate.analysis.plots import value_styles\n"
              "print(value_styles(['rope', 'alibi', 'sinusoidal'])['rope'])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(plots.value_styles(["rope"])["rope"])


def _perplexity_frame(blow_up: float) -> pd.DataFrame:
    """Seven encodings (more than fit beside the axes), one of them ``blow_up`` times worse past its train length."""
    names = ["none", "sinusoidal", "rope", "alibi", "t5", "kerple", "randomized[base=rope,eval_positions=random]"]
    rows = [{"run_id": f"{name}-{seed}", "kind": "train", "encoding": name, "seed": seed, "metric": "perplexity",
             "eval_length": length, "value": 8.0 * (blow_up if name == "sinusoidal" and length > 64 else 1) + 0.1 * seed,
             "status": "ok", "train_length": 64, "eval.score_last": 64, "task": "text_lm"}
            for name in names for seed in range(3) for length in (64, 128, 256)]
    return pd.DataFrame(rows)


def test_extrapolation_curves_of_a_blown_up_perplexity_are_on_a_log_axis():
    flat = plots.extrapolation_curves(_perplexity_frame(blow_up=1.0), "perplexity").axes[0]
    assert flat.get_yscale() == "linear" and flat.get_ylabel() == "perplexity"
    steep = plots.extrapolation_curves(_perplexity_frame(blow_up=40.0), "perplexity").axes[0]
    assert steep.get_yscale() == "log" and steep.get_ylabel() == "perplexity (log scale)"
    assert steep.get_title() == "Length extrapolation: perplexity of the final 64 tokens"  # the same tokens at every length
    labels = _legend_texts(steep)
    anchor = steep.get_legend().get_bbox_to_anchor().transformed(steep.transAxes.inverted())
    assert anchor.y1 < 0  # below the axes: seven values would squeeze them from beside
    assert "randomized[base=rope,\neval_positions=random]" in labels  # long labels wrap at their commas
    accuracy = plots.extrapolation_curves(make_frame(), "accuracy").axes[0]
    assert accuracy.get_yscale() == "linear"  # a difference-scale metric never gets a log axis


def test_forest_plot_of_a_ratio_whose_interval_reaches_zero(recwarn):
    """A log-ratio bound of -inf is a ratio bound of 0: the log axis starts at the other values, the bar at its edge."""
    from ablate.analysis.plots.forest import forest_plot

    table = pd.DataFrame([{"verdict": verdict, "axis": "encoding", "encoding": name, "baseline": "rope",
                           "eval_length": 256, "wins": 3, "losses": 0, "win_low": 0.2, "win_high": 1.0,
                           "scale": "ratio", "margin": 0.05, "low": low, "high": 0.9, "estimate": 0.5,
                           "estimand": "median"}
                          for verdict, name, low in (("undecided", "alibi", 0.0), ("better", "kerple", 0.3))])
    ax = forest_plot(table, "perplexity").axes[1]
    assert ax.get_xscale() == "log" and 0 < ax.get_xlim()[0] < 0.3
    assert not [w for w in recwarn if "non-positive" in str(w.message)]
