"""Claim predicates on frames with known answers, a claim's error control, strict claim files, the shipped claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablate.claims import Claim, claims_dir, judge, load_claim
from ablate.claims.predicates import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    better_predicate,
    order_predicate,
    ratio_predicate,
    decisions_of,
    value_predicate,
)
from ablate.suite import SuiteError, load_plan

ALPHA = 0.05


def frame(values: dict[tuple[str, int], list[float]], metric: str = "perplexity", train_length: int | None = None
          ) -> pd.DataFrame:
    rows = []
    for (encoding, length), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            rows.append({"encoding": encoding, "eval_length": length, "seed": seed, "metric": metric,
                         "value": value, "status": "ok", "run_id": f"{encoding}-{seed}", "kind": "train",
                         "train_length": train_length, "task": "order"})
    return pd.DataFrame(rows)


def test_ratio_is_about_the_median_seed() -> None:
    flat = frame({("alibi", 32): [10.0 + 0.01 * s for s in range(9)], ("alibi", 128): [10.1] * 9})
    kwargs = dict(where={"encoding": "alibi"}, metric="perplexity", length=128, reference_length=32, op="<=")
    assert ratio_predicate(flat, alpha=ALPHA, threshold=1.05, **kwargs).verdict == REPRODUCED
    assert ratio_predicate(flat, alpha=ALPHA, threshold=0.9, **kwargs).verdict == NOT_REPRODUCED
    few = frame({("alibi", 32): [10.0] * 3, ("alibi", 128): [10.1] * 3})
    assert ratio_predicate(few, alpha=ALPHA, threshold=1.05, **kwargs).verdict == INCONCLUSIVE  # 3 seeds decide nothing
    # one seed in twelve blowing up does not move the median seed
    tail = frame({("alibi", 32): [10.0] * 12, ("alibi", 128): [10.1] * 11 + [90.0]})
    assert ratio_predicate(tail, alpha=ALPHA, threshold=1.05, **kwargs).verdict == REPRODUCED


def test_a_ratio_to_another_cell_pairs_the_seeds_both_ran_and_counts_only_failures_as_missing() -> None:
    """Cells of a shared folder may have different seed counts (claims adding seeds to some): a seed run for
    one side only is no pair, while a failed run of a paired seed is reported as missing."""
    values = frame({("none", 64): [11.0] * 8, ("sinusoidal", 64): [9.0] * 10})
    kwargs = dict(where={"encoding": "none"}, other={"encoding": "sinusoidal"}, metric="perplexity", length=64,
                  reference_length=64, op="<=", threshold=1.05)
    verdict = ratio_predicate(values, alpha=ALPHA, **kwargs)
    assert verdict.verdict == NOT_REPRODUCED and "0 of 8 seeds" in verdict.measured and not verdict.details
    values.loc[values["encoding"].eq("none") & values["seed"].eq(0), "status"] = "failed"
    assert ratio_predicate(values, alpha=ALPHA, **kwargs).details == "1 seed(s) without a value (unsupported/failed)"


def test_value_median_counts_seeds_on_the_claimed_side() -> None:
    # learn-or-fail: 9 of 12 seeds reach 0.9, three sit at chance
    data = frame({("rope", 16): [0.98] * 9 + [0.5] * 3}, metric="accuracy")
    kwargs = dict(where={"encoding": "rope"}, metric="accuracy", length=16)
    verdict = value_predicate(data, alpha=ALPHA, op=">=", threshold=0.9, **kwargs)
    assert verdict.verdict == INCONCLUSIVE and "9 of 12 seeds" in verdict.measured  # 9/12 does not exclude 1/2
    data = frame({("rope", 16): [0.98] * 12}, metric="accuracy")
    assert value_predicate(data, alpha=ALPHA, op=">=", threshold=0.9, **kwargs).verdict == REPRODUCED
    assert value_predicate(data, alpha=ALPHA, op="<=", threshold=0.9, **kwargs).verdict == NOT_REPRODUCED


def test_value_mean_uses_the_metrics_range_and_needs_one() -> None:
    data = frame({("rope", 16): [0.98] * 30}, metric="accuracy")
    kwargs = dict(where={"encoding": "rope"}, metric="accuracy", length=16, op=">=")
    assert value_predicate(data, alpha=ALPHA, threshold=0.85, statistic="mean", **kwargs).verdict == REPRODUCED
    # twelve identical seeds cannot rule out a rare seed at 0: the mean stays open where the median is decided
    twelve = frame({("rope", 16): [0.98] * 12}, metric="accuracy")
    assert value_predicate(twelve, alpha=ALPHA, threshold=0.85, statistic="mean", **kwargs).verdict == INCONCLUSIVE
    with pytest.raises(ValueError, match="needs a metric with a range"):
        value_predicate(frame({("a", 16): [5.0] * 3}), alpha=ALPHA, where={"encoding": "a"}, metric="perplexity",
                        length=16, op="<=", threshold=6.0, statistic="mean")


def test_better_is_the_reports_verdict_and_order_chains_pairs() -> None:
    rng = np.random.default_rng(0)
    data = frame({("a", 64): list(5 + 0.05 * rng.random(12)), ("b", 64): list(6 + 0.05 * rng.random(12)),
                  ("c", 64): list(9 + 0.05 * rng.random(12))})
    kwargs = dict(metric="perplexity", length=64)
    assert better_predicate(data, alpha=ALPHA, a={"encoding": "a"}, b={"encoding": "b"}, **kwargs).verdict == REPRODUCED
    assert better_predicate(data, alpha=ALPHA, a={"encoding": "b"}, b={"encoding": "a"},
                            **kwargs).verdict == NOT_REPRODUCED
    items = [{"encoding": e} for e in ("a", "b", "c")]
    assert order_predicate(data, alpha=ALPHA, items=items, **kwargs).verdict == REPRODUCED
    assert order_predicate(data, alpha=ALPHA, items=items[::-1], **kwargs).verdict == NOT_REPRODUCED
    assert decisions_of({"predicate": "order", "items": items}) == 2 and decisions_of({"predicate": "measure"}) == 0


def test_past_the_train_length_only_seeds_that_learned_count() -> None:
    rows = {("rope", 16): [0.99] * 9 + [0.55] * 3, ("rope", 64): [0.95] * 9 + [0.5] * 3,
            ("t5", 16): [0.55] * 12, ("t5", 64): [0.5] * 12}
    data = frame(rows, metric="accuracy", train_length=16)
    data.attrs["suite_config"] = {"report": {"learned_threshold": 0.9}}
    learned = value_predicate(data, alpha=ALPHA, where={"encoding": "rope"}, metric="accuracy", length=64, op=">=",
                              threshold=0.9)
    assert learned.verdict == REPRODUCED and "9 of 9 seeds" in learned.measured  # the three failures are left out
    never = value_predicate(data, alpha=ALPHA, where={"encoding": "t5"}, metric="accuracy", length=64, op="<=",
                            threshold=0.6)
    assert never.verdict == INCONCLUSIVE and "did not learn" in never.details
    at_train = value_predicate(data, alpha=ALPHA, where={"encoding": "t5"}, metric="accuracy", length=16, op="<=",
                               threshold=0.6)
    assert at_train.verdict == REPRODUCED  # at the train length it is a plain measurement


def _claim(expect: list[dict], alpha: float | None = None) -> Claim:
    suite = {"report": {"alpha": alpha}} if alpha else {}
    return Claim(id="c", path=Path("c.toml"), title="t", paper="p", year=2024, where="w", statement="s", suite=suite,
                 expect=expect)


def test_a_claim_divides_alpha_over_its_decisions_and_any_failure_decides_it(monkeypatch) -> None:
    from ablate.claims.predicates import PREDICATES, Verdict

    seen: list[float] = []
    outcomes = iter([NOT_REPRODUCED, INCONCLUSIVE, REPRODUCED])

    def fixed(frame, *, alpha, **_):  # type: ignore[no-untyped-def]
        seen.append(alpha)
        return Verdict(next(outcomes), "x", "y")

    monkeypatch.setattr(PREDICATES, "get", lambda name: fixed)
    expect = [{"predicate": "value"}, {"predicate": "order", "items": [1, 2, 3]}, {"predicate": "ratio"}]
    overall, _ = judge(_claim(expect, alpha=0.1), None)
    assert overall == NOT_REPRODUCED  # one decided failure is enough: every decision is at alpha / k
    assert seen == [pytest.approx(0.1 / 4)] * 3  # 1 + 2 (the order's two pairs) + 1 decisions


def test_predicates_see_the_report_section_and_axes_but_not_the_whole_suite_config(monkeypatch) -> None:
    """judge() hands predicates a view with small attrs (pandas deep-copies attrs on every operation)."""
    import pandas as pd

    from ablate.claims.predicates import PREDICATES, Verdict

    seen: list[dict] = []

    def record(frame, *, alpha, **_):  # type: ignore[no-untyped-def]
        seen.append(dict(frame.attrs))
        return Verdict(REPRODUCED, "x", "y")

    monkeypatch.setattr(PREDICATES, "get", lambda name: record)
    frame = pd.DataFrame({"value": [1.0]})
    frame.attrs = {"axes": ["model.encoding"], "results_path": "r",
                   "suite_config": {"report": {"learned_threshold": 0.5}, "train": {"steps": 10}},
                   "claim_digests": {"c": "abc"}}
    judge(_claim([{"predicate": "value"}]), frame)
    assert seen == [{"axes": ["model.encoding"], "results_path": "r",
                     "suite_config": {"report": {"learned_threshold": 0.5}}}]
    assert frame.attrs["suite_config"]["train"] == {"steps": 10} and "claim_digests" in frame.attrs  # untouched


def _write_claim(tmp_path: Path, expect: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text('[claim]\nid = "mine"\ntitle = "t"\npaper = "p"\nyear = 2022\nwhere = "w"\nstatement = "s"\n'
                    '[suite]\nseeds = [0, 1, 2]\ntask = { name = "even_pairs" }\n[suite.model]\nd_model = 16\n'
                    'num_heads = 2\nnum_layers = 1\n[suite.train]\nsteps = 2\nlength = 16\n[suite.eval]\n'
                    'lengths = [16, 32]\n[suite.grid]\nencoding = ["none", "sinusoidal"]\npooling = ["mean", "first"]\n'
                    + expect)
    return path


GOOD = ('[[expect]]\npredicate = "value"\nwhere = { encoding = "sinusoidal", pooling = "mean" }\n'
        'metric = "accuracy"\nlength = 16\nop = ">="\nthreshold = 0.9\n')


@pytest.mark.parametrize("entry,message", [
    (GOOD.replace("threshold =", "treshold ="), "unknown key 'treshold'.*Did you mean 'threshold'"),
    (GOOD.replace('"value"', '"valeu"'), "predicate.*Did you mean 'value'"),
    (GOOD.replace('"accuracy"', '"accuracyy"'), "metric 'accuracyy' is not produced.*Did you mean 'accuracy'"),
    (GOOD.replace('"accuracy"', '"perplexity"'), "metric 'perplexity' is not produced"),
    (GOOD.replace("length = 16", "length = 64"), "length 64 is not evaluated"),
    (GOOD.replace('encoding = "sinusoidal"', 'encoding = "sinusodal"'), "not run by this suite.*Did you mean"),
    (GOOD.replace("encoding =", "encodng ="), "not a grid axis.*Did you mean 'encoding'"),
    (GOOD.replace("0.9", "1.2"), "outside accuracy's range"),
    (GOOD.replace('">="', '"=>"'), "op must be one of"),
    (GOOD.replace("threshold = 0.9\n", "threshold = 0.9\nstatistic = \"mode\"\n"), "statistic must be one of"),
    (GOOD.replace("threshold = 0.9\n", ""), "needs 'threshold'"),
    # NoPE + mean pooling is permutation-invariant: <= 0.6 cannot fail (the bound is about 0.53)
    (GOOD.replace('"sinusoidal", pooling = "mean"', '"none", pooling = "mean"').replace('">="', '"<="')
     .replace("0.9", "0.6"), "holds by construction: a model invariant to permutation reaches at most 0.5"),
    # NoPE + first pooling sees the first symbol and the counts: its bound is about 0.605
    (GOOD.replace('"sinusoidal", pooling = "mean"', '"none", pooling = "first"'), "fails by construction"),
])
def test_malformed_expectations_are_refused_before_training(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        load_claim(_write_claim(tmp_path, entry))


def test_a_good_claim_file_loads_with_its_digest(tmp_path: Path) -> None:
    claim = load_claim(_write_claim(tmp_path, GOOD))
    assert len(claim.digest) == 64 and claim.expect[0]["threshold"] == 0.9
    below = GOOD.replace('"sinusoidal", pooling = "mean"', '"none", pooling = "first"').replace('">="', '"<="') \
        .replace("0.9", "0.5")
    assert load_claim(_write_claim(tmp_path, below)).expect  # below the bound: a real prediction


@pytest.mark.parametrize("path", sorted(claims_dir().glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_claims_load_and_expand(path: Path) -> None:
    claim = load_claim(path)  # as strict as `ablate validate`: no malformed or vacuous predicate
    plan = claim.plan("small")
    assert plan.runs
    for scale in claim.scales:
        assert claim.plan(scale).runs
    overall, verdicts = judge(claim, pd.DataFrame(columns=["metric", "value", "status", "seed", "eval_length",
                                                           "encoding", "pooling", "task", "run_id", "kind"]))
    assert len(verdicts) == len(claim.expect)  # evaluable on an empty frame (inconclusive, not a crash)


def _cost_store(tmp_path: Path, ratios: dict[str, float], rounds: int) -> pd.DataFrame:
    """A results folder with one measurement run per encoding and ``rounds`` interleaved rounds of step time."""
    from ablate.results.rounds_table import RoundValue
    from ablate.results.store import MetricRow, Record, Store, load_results

    rng = np.random.default_rng(0)
    drift = 0.1 + 0.02 * rng.random(rounds)  # what a round shares: cancels in the paired ratio
    with Store(tmp_path) as store:
        for encoding, ratio in {"sinusoidal": 1.0, **ratios}.items():
            values = drift * ratio * (1 + 0.01 * rng.standard_normal(rounds))
            store.write(Record(
                run_id=f"m-{encoding}", suite="cost", kind="measure", status="ok",
                config={"model": {"encoding": encoding}, "seed": 0}, axes={"model.encoding": encoding},
                metrics=[MetricRow("time_median_s", 512, float(np.median(values)))],
                rounds=[RoundValue("time_median_s", 512, i, float(v), 0, "s0") for i, v in enumerate(values)]))
    return load_results(tmp_path)


def test_a_cost_predicate_reads_the_rounds_ratio_and_its_interval(tmp_path: Path) -> None:
    from ablate.claims.predicates import cost_predicate

    frame = _cost_store(tmp_path, {"alibi": 1.01, "t5": 1.6}, rounds=40)
    base = {"encoding": "sinusoidal"}
    t5 = cost_predicate(frame, alpha=ALPHA, where={"encoding": "t5"}, other=base, metric="time_median_s",
                        length=512, op=">=", threshold=1.2)
    assert t5.verdict == REPRODUCED and "40 paired rounds" in t5.measured
    alibi = cost_predicate(frame, alpha=ALPHA, where={"encoding": "alibi"}, other=base, metric="time_median_s",
                           length=512, op="<=", threshold=1.05)
    assert alibi.verdict == REPRODUCED
    slower = cost_predicate(frame, alpha=ALPHA, where={"encoding": "alibi"}, other=base, metric="time_median_s",
                            length=512, op=">=", threshold=1.2)
    assert slower.verdict == NOT_REPRODUCED
    few = _cost_store(tmp_path / "few", {"t5": 1.6}, rounds=4)
    assert cost_predicate(few, alpha=ALPHA, where={"encoding": "t5"}, other=base, metric="time_median_s",
                          length=512, op=">=", threshold=1.2).verdict == INCONCLUSIVE  # 4 rounds bound nothing


def test_shipped_claims_sharing_a_suite_name_share_their_runs() -> None:
    """Claims (and built-in suites) whose [suite] has one name store into one folder, and a predicate reads a cell
    there by its label: the same cell and seed must be the same run, or it would average two different models."""
    suites = Path(__file__).resolve().parents[1] / "suites"  # this checkout's, whatever is installed
    plans = [load_claim(p).plan() for p in sorted((suites / "claims").glob("*.toml"))]
    plans += [load_plan(p) for p in sorted(suites.glob("*.toml"))]
    runs: dict[tuple[str, str, int], str] = {}
    for plan in plans:
        for run in plan.train_runs():
            key = (plan.name, repr(sorted(run.axes.items())), run.config["seed"])
            assert runs.setdefault(key, run.run_id) == run.run_id, f"{plan.path}: {key} differs from another plan's run"
    shared = {name for name, _, _ in runs}
    assert {"char-lm", "rope-extension"} <= shared
