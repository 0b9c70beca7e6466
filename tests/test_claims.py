"""Claim predicates on synthetic frames with known answers, and the shipped claim files."""

from __future__ import annotations

import pandas as pd
import pytest

from ablate.claims import all_claims, judge, load_claim
from ablate.claims.predicates import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    better_predicate,
    order_predicate,
    ratio_predicate,
    t_interval,
    value_predicate,
)


def frame(values: dict[tuple[str, int], list[float]], metric: str = "perplexity") -> pd.DataFrame:
    rows = []
    for (encoding, length), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            rows.append({"encoding": encoding, "eval_length": length, "seed": seed, "metric": metric,
                         "value": value, "status": "ok"})
    return pd.DataFrame(rows)


def test_t_interval_matches_the_textbook() -> None:
    interval = t_interval([1.0, 2.0, 3.0])
    # mean 2, s = 1, t_{0.975, 2} = 4.3027 -> half width 4.3027 / sqrt(3) = 2.4841
    assert interval.mean == pytest.approx(2.0)
    assert interval.high - interval.mean == pytest.approx(2.4841, abs=1e-4)


def test_ratio_verdicts_follow_the_interval() -> None:
    flat = frame({("alibi", 32): [10.0, 10.2, 9.9], ("alibi", 128): [10.1, 10.3, 9.8]})
    verdict = ratio_predicate(flat, where={"encoding": "alibi"}, metric="perplexity", length=128,
                              reference_length=32, op="<=", threshold=1.05)
    assert verdict.verdict == REPRODUCED
    blown = frame({("alibi", 32): [10.0, 10.2, 9.9], ("alibi", 128): [30.0, 40.0, 35.0]})
    assert ratio_predicate(blown, where={"encoding": "alibi"}, metric="perplexity", length=128,
                           reference_length=32, op="<=", threshold=1.05).verdict == NOT_REPRODUCED
    noisy = frame({("alibi", 32): [10.0, 10.0, 10.0], ("alibi", 128): [9.0, 10.5, 12.0]})
    assert ratio_predicate(noisy, where={"encoding": "alibi"}, metric="perplexity", length=128,
                           reference_length=32, op="<=", threshold=1.05).verdict == INCONCLUSIVE


def test_better_uses_the_metric_direction_and_order_chains_pairs() -> None:
    data = frame({("a", 64): [5.0, 5.1, 5.2], ("b", 64): [6.0, 6.2, 6.1], ("c", 64): [9.0, 9.5, 9.1]})
    # Perplexity: lower is better, so a beats b.
    assert better_predicate(data, a={"encoding": "a"}, b={"encoding": "b"}, metric="perplexity", length=64).verdict == REPRODUCED
    assert better_predicate(data, a={"encoding": "b"}, b={"encoding": "a"}, metric="perplexity", length=64).verdict == NOT_REPRODUCED
    items = [{"encoding": e} for e in ("a", "b", "c")]
    assert order_predicate(data, items=items, metric="perplexity", length=64).verdict == REPRODUCED
    assert order_predicate(data, items=items[::-1], metric="perplexity", length=64).verdict == NOT_REPRODUCED


def test_value_with_too_few_seeds_is_inconclusive() -> None:
    data = frame({("none", 16): [0.5]}, metric="accuracy")
    assert value_predicate(data, where={"encoding": "none"}, metric="accuracy", length=16, op="<=",
                           threshold=0.6).verdict == INCONCLUSIVE


@pytest.mark.parametrize("claim", all_claims(), ids=lambda c: c.id)
def test_shipped_claims_load_and_expand(claim) -> None:
    plan = claim.plan("small")
    from ablate.suite.schema import SeedRange

    seeds = plan.suite.seeds
    assert plan.runs and (seeds.min if isinstance(seeds, SeedRange) else len(seeds)) >= 3
    for scale in claim.scales:
        assert claim.plan(scale).runs
    overall, verdicts = judge(claim, pd.DataFrame(columns=["metric", "value", "status", "seed", "eval_length",
                                                           "encoding", "pooling", "task"]))
    assert len(verdicts) == len(claim.expect)  # evaluable on an empty frame (inconclusive, not a crash)


def test_claim_file_errors_name_the_key(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[claim]\nid = "x"\ntitle = "t"\npaper = "p"\nyear = 2022\nwhere = "w"\nstatement = "s"\n'
                    '[suite]\ntask = "parity"\n[[expect]]\npredicate = "ratoi"\n')
    from ablate.suite import SuiteError

    with pytest.raises(SuiteError, match="expect\\[0\\].predicate.*Did you mean 'ratio'"):
        load_claim(path)


def test_a_predicate_past_the_train_length_on_a_cell_that_did_not_learn_is_not_an_extrapolation_verdict() -> None:
    import pandas as pd

    from ablate.claims.predicates import DID_NOT_LEARN, REPRODUCED, value_predicate

    rows = []
    for seed in range(3):
        for encoding, at_train in (("rope", 0.99), ("t5", 0.55)):
            for length, value in ((16, at_train), (64, 0.5)):
                rows.append({"metric": "accuracy", "encoding": encoding, "seed": seed, "eval_length": length,
                             "train_length": 16, "value": value + 0.001 * seed, "status": "ok"})
    frame = pd.DataFrame(rows)
    late = value_predicate(frame, where={"encoding": "t5"}, metric="accuracy", length=64, op="<=", threshold=0.6)
    assert late.verdict == DID_NOT_LEARN and "did not learn" in late.details
    learned = value_predicate(frame, where={"encoding": "rope"}, metric="accuracy", length=64, op="<=", threshold=0.6)
    assert learned.verdict == REPRODUCED
    at_train = value_predicate(frame, where={"encoding": "t5"}, metric="accuracy", length=16, op="<=", threshold=0.6)
    assert at_train.verdict == REPRODUCED  # at the train length it is a plain measurement


def test_one_failed_predicate_among_undecided_ones_does_not_decide_the_claim(monkeypatch) -> None:
    from ablate.claims import INCONCLUSIVE, NOT_REPRODUCED, judge
    from ablate.claims.predicates import PREDICATES, Verdict

    outcomes = iter([NOT_REPRODUCED, INCONCLUSIVE])
    monkeypatch.setattr(PREDICATES, "get", lambda name: lambda frame, **_: Verdict(next(outcomes), "x", "y"))
    claim = type("C", (), {"expect": [{"predicate": "_fixed_for_test"}, {"predicate": "_fixed_for_test"}]})()
    overall, _ = judge(claim, None)
    assert overall == INCONCLUSIVE
