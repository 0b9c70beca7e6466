"""Statistics against known values: hand-worked examples, textbook data and scipy itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest_report import make_frame
from scipy import stats as scipy_stats

from ablate.analysis import stats

# Student's sleep data (Cushny & Peebles 1905): extra hours of sleep under two drugs, same 10 patients.
# R: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9, p-value = 0.002833
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(seeds=5)


# ------------------------------------------------------------------ Holm
def test_holm_matches_hand_worked_example():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.02, 0.03, 0.06, 0.06
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_skips_nan_and_caps_at_one():
    np.testing.assert_allclose(stats.holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])
    assert stats.holm([]).size == 0


# ------------------------------------------------------------------ paired tests and effect sizes
def test_paired_t_matches_textbook_sleep_data():
    result = stats.paired_test(SLEEP_2, SLEEP_1)
    assert result["t"] == pytest.approx(4.0621, abs=1e-4)
    assert result["p_t"] == pytest.approx(0.002833, abs=1e-6)
    assert result["mean_diff"] == pytest.approx(1.58)
    assert result["d_z"] == pytest.approx(1.58 / np.std(np.subtract(SLEEP_2, SLEEP_1), ddof=1))


def test_paired_tests_match_scipy():
    rng = np.random.default_rng(7)
    x, y = rng.normal(0.5, 1, 12), rng.normal(0, 1, 12)
    result = stats.paired_test(x, y)
    assert result["p_t"] == pytest.approx(scipy_stats.ttest_rel(x, y).pvalue)
    assert result["p_wilcoxon"] == pytest.approx(scipy_stats.wilcoxon(x - y).pvalue)


def test_paired_test_identical_and_constant_shift():
    same = stats.paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["p_t"] == 1.0 and same["p_wilcoxon"] == 1.0 and same["d_z"] == 0.0
    shifted = stats.paired_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert shifted["p_t"] == 0.0 and shifted["d_z"] == np.inf
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_test([1.0, 2.0], [1.0])


def test_cliffs_delta_hand_example():
    # x=1: -,-,- ; x=2: 0,0,- ; x=3: +,+,-  ->  (-3 - 1 + 1) / 9
    assert stats.cliffs_delta([1, 2, 3], [2, 2, 4]) == pytest.approx(-1 / 3)
    assert stats.cliffs_delta([5, 6], [1, 2]) == 1.0
    assert np.isnan(stats.cliffs_delta([], [1]))


# ------------------------------------------------------------------ confidence intervals
def test_t_interval_below_bootstrap_threshold():
    values = [0.71, 0.74, 0.69, 0.73, 0.70]
    low, high, method = stats.confidence_interval(values)
    expected = scipy_stats.t.interval(0.95, 4, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert method == "t"
    assert (low, high) == pytest.approx(expected)


def test_bca_interval_matches_scipy_with_fixed_seed():
    values = np.random.default_rng(3).normal(1.0, 0.2, stats.BOOTSTRAP_MIN_N + 2)
    low, high, method = stats.confidence_interval(values, seed=11, n_resamples=2000)
    expected = scipy_stats.bootstrap((values,), np.mean, method="BCa", n_resamples=2000,
                                     rng=np.random.default_rng(11)).confidence_interval
    assert method == "BCa"
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert stats.confidence_interval(values, seed=11, n_resamples=2000) == (low, high, method)


def test_degenerate_intervals():
    assert stats.confidence_interval([0.5] * 12) == (0.5, 0.5, "constant")
    low, high, method = stats.confidence_interval([0.5, np.nan])
    assert method == "none" and np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match="confidence"):
        stats.confidence_interval([1, 2, 3], confidence=95)


def test_summarize_counts_and_statuses(frame):
    cells = stats.summarize(frame)
    rope = cells.query("encoding == 'rope' and pooling == 'mean' and metric == 'accuracy' and eval_length == 32")
    assert len(rope) == 1 and rope["n"].item() == 5 and rope["ci_method"].item() == "t"
    assert rope["ci_low"].item() < rope["mean"].item() < rope["ci_high"].item()
    learned = cells.query("encoding == 'learned' and metric == 'accuracy' and eval_length == 128")
    assert set(learned["status"]) == {"unsupported"} and set(learned["n"]) == {0}
    failed_cell = cells.query("encoding == 'alibi' and pooling == 'cls' and metric == 'accuracy' and eval_length == 32")
    assert failed_cell["n"].item() == 4


# ------------------------------------------------------------------ frame conventions
def test_axes_and_baseline_inferred_without_attrs(frame):
    bare = frame.copy()
    bare.attrs = {}
    assert stats.grid_axes(bare) == ["encoding", "pooling"]
    assert stats.baseline_of(bare) == {"encoding": "sinusoidal", "pooling": "mean"}
    assert stats.baseline_of(bare, override={"encoding": "rope"})["encoding"] == "rope"
    with pytest.raises(ValueError, match="takes the values"):
        stats.baseline_of(bare, override={"encoding": "nope"})
    assert "measure.mode" not in stats.cell_keys(bare)  # fixed by kind, so no separate key


def test_a_slice_without_the_stored_baseline_falls_back_to_its_first_value(frame):
    # A report section that leaves out cells that did not learn may leave out the suite's
    # baseline with them (pooling-even-pairs: every NoPE cell is unable by construction).
    sliced = frame[frame["encoding"].ne("sinusoidal")].copy()
    sliced.attrs = {"baseline": {"encoding": "sinusoidal"}}
    first = list(sliced["encoding"].unique())[0]
    assert stats.baseline_of(sliced)["encoding"] == first
    with pytest.raises(ValueError, match="takes the values"):
        stats.baseline_of(sliced, override={"encoding": "sinusoidal"})


def test_in_distribution_length(frame):
    assert stats.in_distribution_length(frame, "accuracy") == 32
    assert stats.in_distribution_length(frame, "tokens_per_s") == 128
    with pytest.raises(ValueError, match="metrics present"):
        stats.in_distribution_length(frame, "bleu")


# ------------------------------------------------------------------ comparisons against the baseline
def test_comparisons_find_the_known_better_encoding_and_use_seed_pairs(frame):
    table = stats.comparisons(frame, "accuracy", threshold=None)
    rope = table.query("axis == 'encoding' and encoding == 'rope' and pooling == 'mean' and eval_length == 32")
    assert rope["n"].item() == 5 and rope["wins"].item() == 5  # five paired seeds, all won
    assert rope["verdict"].item() == "undecided"  # five of five cannot exclude a fair coin
    assert set(table["baseline"][table["axis"] == "pooling"]) == {"mean"}
    assert table.attrs["family_size"] == int(table["verdict"].isin(["better", "worse", "equivalent",
                                                                      "undecided"]).sum())


def test_comparisons_orient_lower_is_better(frame):
    table = stats.comparisons(frame, "loss", threshold=None)
    rope = table.query("axis == 'encoding' and encoding == 'rope' and pooling == 'mean' and eval_length == 64")
    assert rope["estimate"].item() < 0 and rope["wins"].item() == rope["n"].item()  # lower loss wins
    assert rope["estimand"].item() == "median"  # a loss has no range: its median difference


def test_comparisons_need_seeds(frame):
    with pytest.raises(ValueError, match="seed"):
        stats.comparisons(frame.drop(columns="seed"), "accuracy")


# ------------------------------------------------------------------ Friedman / Nemenyi
def test_nemenyi_q_values_match_demsar_table():
    # Demsar (2006) table 5(a), alpha = 0.05: q for k = 2, 4, 10
    for k, q in [(2, 1.960), (4, 2.569), (10, 3.164)]:
        cd = stats.critical_difference(k, 14)
        assert cd / np.sqrt(k * (k + 1) / (6 * 14)) == pytest.approx(q, abs=1e-3)
    assert stats.critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)  # Demsar's worked example
    with pytest.raises(ValueError):
        stats.critical_difference(1, 14)


def _ranked_frame(table: np.ndarray) -> pd.DataFrame:
    rows = [{"task": f"d{i}", "encoding": f"e{j}", "seed": 0, "metric": "accuracy", "eval_length": 8,
             "status": "ok", "value": v} for i, block in enumerate(table) for j, v in enumerate(block)]
    return pd.DataFrame(rows)


def test_friedman_matches_scipy_and_hand_ranks():
    table = np.array([[0.90, 0.80, 0.70], [0.85, 0.86, 0.60], [0.70, 0.65, 0.64], [0.91, 0.81, 0.82],
                      [0.60, 0.50, 0.55]])
    result = stats.friedman_nemenyi(_ranked_frame(table), "accuracy", axis="encoding")
    expected = scipy_stats.friedmanchisquare(*table.T)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.pvalue == pytest.approx(expected.pvalue)
    # ranks by block (1 = highest accuracy): e0: 1,2,1,1,1; e1: 2,1,2,3,3; e2: 3,3,3,2,2
    assert result.ranks.to_dict() == pytest.approx({"e0": 1.2, "e1": 2.2, "e2": 2.6})
    assert result.n_blocks == 5 and result.blocks == ["task"]
    assert result.cd == pytest.approx(stats.critical_difference(3, 5))
    assert list(result.ranks.index) == ["e0", "e1", "e2"]


def test_friedman_on_frame_ranks_known_best_first(frame):
    result = stats.friedman_nemenyi(frame, "accuracy", eval_length=32)
    assert result.ranks.index[0] == "rope"
    assert result.n_blocks == 9 and "dropped" in result.note  # the failed alibi/cls seed
    assert result.pvalue < 0.05
    assert set(map(tuple, result.cliques())) <= {("rope", "alibi"), ("alibi", "sinusoidal"), ("sinusoidal", "learned")}
    pair = result.pairwise.query("a == 'rope' and b == 'learned'")
    assert pair["significant"].item() and pair["p_nemenyi"].item() < 0.05


def test_friedman_with_two_treatments_gives_note():
    result = stats.friedman_nemenyi(_ranked_frame(np.array([[1.0, 2.0], [2.0, 3.0]])), "accuracy")
    assert np.isnan(result.statistic) and "k >= 3" in result.note


# ------------------------------------------------------------------ scaling
def test_power_law_exponent_and_interval():
    lengths = np.array([128, 256, 512, 1024, 2048])
    exact = stats.fit_power_law(lengths, 3.0 * lengths**1.5)
    assert exact.exponent == pytest.approx(1.5) and exact.r_squared == pytest.approx(1.0)
    noisy = 3.0 * lengths**1.5 * np.exp(np.random.default_rng(0).normal(0, 0.05, lengths.size))
    fit = stats.fit_power_law(lengths, noisy)
    reference = scipy_stats.linregress(np.log(lengths), np.log(noisy))
    half = scipy_stats.t.ppf(0.975, lengths.size - 2) * reference.stderr
    assert (fit.ci_low, fit.ci_high) == pytest.approx((reference.slope - half, reference.slope + half))
    assert np.isnan(stats.fit_power_law([128, 256], [1.0, 2.0]).ci_low)


def test_scaling_exponents_and_cost_ratios_on_frame(frame):
    fits = stats.scaling_exponents(frame, "peak_memory_bytes").set_index("encoding")
    assert fits.loc["alibi", "exponent"] == pytest.approx(2.0)
    assert fits.loc["rope", "exponent"] == pytest.approx(1.0)
    assert "learned" not in fits.index  # never measured ok
    ratios = stats.cost_ratios(frame, "tokens_per_s").set_index(["encoding", "eval_length"])
    assert ratios.loc[("rope", 512), "ratio"] == pytest.approx(0.8)
    assert ratios.loc[("sinusoidal", 128), "ratio"] == pytest.approx(1.0)


def test_summary_intervals_stay_in_the_metrics_range():
    rows = [{"run_id": f"r{s}", "kind": "train", "encoding": "rope", "metric": "accuracy", "eval_length": 16,
             "seed": s, "status": "ok", "value": v} for s, v in enumerate([1.0, 1.0, 0.6])]
    cell = stats.summarize(pd.DataFrame(rows)).iloc[0]
    assert cell["ci_method"] == "t" and cell["ci_high"] == 1.0 and 0.0 <= cell["ci_low"] < cell["mean"]
