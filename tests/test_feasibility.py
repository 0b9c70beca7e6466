"""'Unable by construction' facts, each pinned by an invariance test on a real model."""

from __future__ import annotations

import itertools

import pytest
import torch

from ablate.claims.bounds import bayes_bound, invariance
from ablate.feasibility import RULES, has_learned, learned_threshold, unable
from ablate.model import ModelConfig, TransformerModel
from ablate.tasks import create_task



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


#: A matching (encoding, pooling) per rule and a near miss that must NOT be invariant.
EXAMPLES = {
    "NoPE encoder + symmetric pooling": [("none", "mean"), ("none", "cls"), ("none", "attention"), ("none", "max")],
    "symmetric bias encoder + symmetric pooling": [("alibi", "mean"), ("kerple", "mean"), ("alibi", "max")],
}
NEAR_MISSES = {
    "NoPE encoder + symmetric pooling": [("none", "first"), ("sinusoidal", "mean"), ("none", "weighted_mean")],
    "symmetric bias encoder + symmetric pooling": [("alibi", "cls"), ("t5", "mean"), ("rope", "mean")],
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_is_an_invariance_of_real_models(rule) -> None:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(12, (4, 17), generator=generator)
    for encoding, pooling in EXAMPLES[rule.name]:
        model = _model(encoding, pooling)
        assert rule.matches(model.config.to_dict()), (encoding, pooling)
        with torch.no_grad():
            out, moved = model(inputs), model(rule.transform(inputs, generator))
        torch.testing.assert_close(moved, out, rtol=1e-4, atol=1e-4, msg=f"{encoding}+{pooling}")
    for encoding, pooling in NEAR_MISSES[rule.name]:
        model = _model(encoding, pooling)
        with torch.no_grad():
            out, moved = model(inputs), model(rule.transform(inputs, generator))
        assert not rule.matches(model.config.to_dict())
        assert (moved - out).abs().max() > 1e-2, f"{encoding}+{pooling} should see the {rule.symmetry}"


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
