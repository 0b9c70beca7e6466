"""'Unable by construction' facts, each pinned by an invariance test on a real model."""

from __future__ import annotations

import itertools

import pytest
import torch

from ablate.claims.bounds import bayes_bound, invariance
from ablate.model.encodings import ENCODINGS
from ablate.analysis.feasibility import RULES, has_learned, learned_threshold, unable
from ablate.model.transformer import ModelConfig, TransformerModel
from ablate.model.pooling import POOLINGS
from ablate.tasks import TASKS, create_task



def _model(encoding: str, pooling: str, causal: bool = False) -> TransformerModel:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=12, num_classes=2, d_model=32, num_heads=4, num_layers=2, causal=causal,
                         encoding=encoding, pooling=pooling)
    model = TransformerModel(config).eval()
    with torch.no_grad():  # large weights: sharp attention, so any positional signal shows in the output
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.5)
    return model


ENCODING_NAMES = [name for name in ENCODINGS.names() if name != "randomized"] + ["randomized"]
POOLED = [name for name in POOLINGS.names() if not POOLINGS.get(name).token_level]


def _matches(rule, encoding: str, pooling: str) -> bool:
    return rule.matches({"encoding": {"name": encoding}, "pooling": {"name": pooling}, "causal": False})


def _cases() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """From the registries and the components' traits: for each rule, every (encoding, pooling) it matches,
    and its near misses: a matching encoding with every pooling that fails it, and every other encoding with
    a pooling that passes (each must see the transformation)."""
    invariant, near = [], []
    for rule in RULES:
        pairs = [(e, p) for e in ENCODING_NAMES for p in POOLED]
        matched = [(e, p) for e, p in pairs if _matches(rule, e, p)]
        assert matched, f"no registered component matches {rule.name!r}"
        invariant += [(rule.name, e, p) for e, p in matched]
        encodings = sorted({e for e, _ in matched})
        poolings = sorted({p for _, p in matched})
        near += [(rule.name, encodings[0], p) for p in POOLED if p not in poolings]
        near += [(rule.name, e, poolings[0]) for e in ENCODING_NAMES if e not in encodings]
    return invariant, near


INVARIANT, NEAR_MISSES = _cases()
RULE = {rule.name: rule for rule in RULES}


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{RULE[name].symmetry}-{encoding}-{pooling}" for name, encoding, pooling in cases]


def _moved(rule, encoding: str, pooling: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(12, (4, 17), generator=generator)
    model = _model(encoding, pooling)
    with torch.no_grad():
        return model(inputs), model(rule.transform(inputs, generator))


@pytest.mark.parametrize("rule_name, encoding, pooling", INVARIANT, ids=_ids(INVARIANT))
def test_every_rule_is_an_invariance_of_real_models(rule_name: str, encoding: str, pooling: str) -> None:
    out, moved = _moved(RULE[rule_name], encoding, pooling)
    torch.testing.assert_close(moved, out, rtol=1e-4, atol=1e-4, msg=f"{encoding}+{pooling}")


@pytest.mark.parametrize("rule_name, encoding, pooling", NEAR_MISSES, ids=_ids(NEAR_MISSES))
def test_a_near_miss_of_a_rule_sees_its_transformation(rule_name: str, encoding: str, pooling: str) -> None:
    out, moved = _moved(RULE[rule_name], encoding, pooling)
    assert (moved - out).abs().max() > 1e-2, f"{encoding}+{pooling} should see the {RULE[rule_name].symmetry}"


def test_the_rules_read_the_traits_of_the_components() -> None:
    assert {(e, p) for name, e, p in INVARIANT if RULE[name].symmetry == "permutation"} >= {
        ("none", "mean"), ("none", "cls"), ("none", "attention"), ("none", "max")}
    assert {(e, p) for name, e, p in INVARIANT if RULE[name].symmetry == "reversal"} >= {
        ("alibi", "mean"), ("kerple", "mean"), ("alibi", "max")}
    assert not {("none", "first"), ("sinusoidal", "mean"), ("none", "weighted_mean"), ("alibi", "cls"), ("t5", "mean"),
                ("rope", "mean")} & {(e, p) for _, e, p in INVARIANT}


def test_unable_names_the_rule_only_for_tasks_whose_label_the_symmetry_changes() -> None:
    def config(task: str, encoding: str, pooling: str, causal: bool = False) -> dict:
        return {"task": {"name": task}, "model": {"encoding": {"name": encoding}, "pooling": {"name": pooling},
                                                 "causal": causal}}

    assert unable(config("order", "none", "mean")).symmetry == "permutation"
    assert unable(config("order", "alibi", "mean")).symmetry == "reversal"
    assert unable(config("even_pairs", "alibi", "mean")) is None  # first == last survives reversal
    assert unable(config("even_pairs", "none", "cls")).symmetry == "permutation"
    assert unable(config("order", "none", "mean", causal=True)) is None  # the causal mask sees order
    assert unable(config("parity", "none", "mean")) is None  # parity is permutation-invariant itself
    assert unable(config("order", "alibi", "cls")) is None
    assert unable(config("order", "alibi", "mean+max")).symmetry == "reversal"
    assert unable(config("order", "alibi", "mean+first")) is None
    assert unable(config("order", "no_longer_registered", "mean")) is None


@pytest.mark.parametrize("pooling", [p for p in POOLED if POOLINGS.get(p).symmetric])
def test_every_symmetric_pooling_makes_a_nope_or_direction_blind_encoder_unable_on_order(pooling: str) -> None:
    def config(encoding: str) -> dict:
        return {"task": {"name": "order"}, "model": {"encoding": {"name": encoding}, "pooling": {"name": pooling},
                                                    "causal": False}}

    assert unable(config("none")).name == "NoPE encoder + symmetric pooling"
    for encoding in ENCODING_NAMES:
        if ENCODINGS.get(encoding).direction_blind and ENCODINGS.get(encoding).family != "none":
            assert unable(config(encoding)).name == "symmetric bias encoder + symmetric pooling", encoding


@pytest.mark.parametrize("task", TASKS.names())
def test_every_task_names_only_known_label_changing_transformations(task: str) -> None:
    assert TASKS.get(task).label_changes_under <= {rule.symmetry for rule in RULES}
    assert (task in ("order", "even_pairs")) == bool(TASKS.get(task).label_changes_under)


def test_learned_threshold_defaults_and_direction() -> None:
    assert learned_threshold("accuracy") == 0.9 and learned_threshold("loss") is None
    assert learned_threshold("loss", 1.5) == 1.5
    assert has_learned(0.95, "accuracy", 0.9) and not has_learned(0.6, "accuracy", 0.9)
    assert has_learned(1.2, "loss", 1.5) and not has_learned(2.0, "loss", 1.5) and has_learned(9.0, "loss", None)


def test_nope_first_pooling_on_even_pairs_is_bounded_by_what_one_end_and_the_counts_tell() -> None:
    # A bidirectional NoPE encoder is permutation-equivariant, so the state that `first`
    # pooling reads is a function of the first symbol and the multiset of symbols. The best
    # any such readout can do is the Bayes accuracy of (first symbol, number of ones), which
    # ablate.claims.bounds estimates by sampling orbits; here it is computed exactly.
    length = 16
    strings = torch.tensor(list(itertools.product([0, 1], repeat=length)))  # (2^L, L)
    task = create_task({"name": "even_pairs"})
    sampled = task.sample(torch.Generator().manual_seed(0), 512, length)
    assert torch.equal(sampled.targets, task.label(sampled.inputs))
    labels = task.label(strings)
    group = strings[:, 0] * (length + 1) + strings.sum(1)  # (first symbol, count of ones)
    counts = torch.zeros(2 * (length + 1), 2).index_put_((group, labels), torch.ones(len(labels)), accumulate=True)
    bayes = counts.max(1).values.sum().item() / len(labels)
    assert bayes == pytest.approx(0.604736328125)  # = E[max(m, 15 - m)] / 15 for m ~ Binomial(15, 1/2)
    bound = bayes_bound({"name": "even_pairs"}, "permutation fixing the first position", length)
    # estimated on the test split (what accuracy is measured on): within sampling error of the full space
    assert abs(bound.value - bayes) < 0.01 and bound.error < 0.003
    assert invariance({"task": {"name": "even_pairs"}, "model": {"encoding": "none", "pooling": "first",
                                                                "causal": False}}) == bound.group
