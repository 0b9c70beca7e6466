"""The attention planner as a table: traits and case in, a named path out, no tensors."""

from __future__ import annotations

import pytest
import torch

from ablate.model.attention import KERNELS, TUNING, Case, Traits, Tuning, case_of, choose_path, traits_of
from ablate.model.attention.kernels import Kernel, register_kernel
from ablate.model.attention.kernels.biased_attention import BiasedAttention
from ablate.model.attention.planner import path_named
from ablate.model.encodings import create_encoding

NONE = Traits(heads=4)
ALIBI = Traits(has_bias=True, heads=4)
T5 = Traits(has_bias=True, learned_bias=True, clipped_distance=128, heads=4)
FIRE = Traits(has_bias=True, learned_bias=True, heads=4)
NEZHA = Traits(has_bias=True, bias_needs_query=True, mixes_values=True, clipped_distance=64, clipped_vectors_only=True,
               heads=4)
NEZHA_KEYS = Traits(has_bias=True, bias_needs_query=True, clipped_distance=64, clipped_vectors_only=True, heads=4)


def train(length: int, **case) -> Case:
    """A training step of the cost suite's shape: batch 8 (a shared mask is batch 1 unless padded)."""
    return Case(length=length, grad=True, contiguous=not case.get("padded", False), **case)


def infer(length: int, **case) -> Case:
    return Case(length=length, grad=False, contiguous=not case.get("padded", False), **case)


#: (traits, case, expected path, expected rows); the default tuning unless the row says otherwise.
TABLE = [
    (T5, infer(64, backend="reference"), "reference", None),
    (NEZHA, train(4096, backend="reference"), "reference", None),
    (NONE, train(2048, causal=True), "fused", None),
    (NONE, infer(64, backend="flex"), "flex", None),
    (ALIBI, infer(512), "shared-mask", None),
    (ALIBI, infer(512, causal=True), "shared-mask", 128),
    (ALIBI, train(2048), "shared-mask", None),  # 4 * 2048^2 = 2^24 elements: still shared
    (ALIBI, train(2048, batch=8, padded=True), "static-bias-blocks", 256),  # per-sequence: 8 x that
    (ALIBI, train(2048, batch=8, padded=True, device="cuda"), "static-bias-blocks", 64),
    (ALIBI, train(8192), "static-bias-blocks", 256),
    (T5, infer(2048), "shared-mask", None),
    (T5, train(512), "shared-mask", 128),  # a learned shared mask: checkpointed row blocks
    (T5, train(1024), "shared-mask", 128),  # 4 * 1024^2 = 2^22 elements: the learned limit, not exceeded
    (T5, train(1025), "clipped-regions", 64),  # past 8 clipping distances (8 * 128)
    (T5, train(2048, batch=8, padded=True), "static-bias-blocks", 64),  # padded: no contiguous range
    (T5, train(2048, device="cuda"), "static-bias-blocks", 64),  # the far keys run on the CPU's fused kernel
    (T5, train(512, backend="flex"), "shared-mask", 128),  # no FlexAttention backward on the CPU
    (T5, train(512, backend="flex", device="cuda"), "flex", None),
    (T5, infer(512, backend="flex"), "flex", None),
    (FIRE, train(2048), "static-bias-blocks", 64),
    (NEZHA, infer(512), "clipped-vector-blocks", 64),  # the value term needs the probabilities
    (NEZHA, infer(513), "clipped-regions", 64),
    (NEZHA, infer(513, device="cuda"), "clipped-vector-blocks", 64),
    (NEZHA, train(64, batch=2, padded=True), "blocks", 64),  # per-sequence positions: the general form
    (NEZHA, infer(64, backend="flex"), "clipped-vector-blocks", 64),  # the value term first
    (NEZHA_KEYS, infer(2048), "query-bias", None),
    (NEZHA_KEYS, train(256), "clipped-vector-blocks", 64),
    (NEZHA_KEYS, train(2048), "clipped-regions", 64),
    (NEZHA_KEYS, train(256, device="cuda", backend="flex"), "flex", None),
    (ALIBI, train(40), "shared-mask", None),
    (ALIBI, train(40, causal=True), "shared-mask", 128),
]


@pytest.mark.parametrize("traits, case, name, rows", TABLE,
                         ids=[f"{i}-{name}" for i, (_, _, name, _) in enumerate(TABLE)])
def test_the_planner_table(traits: Traits, case: Case, name: str, rows: int | None) -> None:
    path = choose_path(traits, case)
    assert (path.name, path.rows) == (name, rows)


@pytest.mark.parametrize("traits, limit", [(ALIBI, "shared_mask_max_elements"),
                                           (T5, "shared_learned_mask_max_elements")], ids=["alibi", "t5"])
def test_a_static_bias_trains_over_blocks_once_its_shared_mask_is_too_large(traits: Traits, limit: str) -> None:
    case = train(40, causal=True, batch=2, padded=True)
    elements = 2 * traits.heads * 40 * 40
    assert choose_path(traits, case, Tuning(**{limit: elements})).name == "shared-mask"
    assert choose_path(traits, case, Tuning(**{limit: elements - 1})).name == "static-bias-blocks"


def test_tuning_refuses_a_block_of_no_rows() -> None:
    with pytest.raises(ValueError, match="block_rows must be an integer >= 1"):
        Tuning(block_rows=0)
    assert Tuning(shared_mask_max_elements=0).shared_mask_max_elements == 0


def test_traits_and_case_are_read_off_an_encoding_and_a_pass() -> None:
    nezha = create_encoding({"name": "nezha", "max_relative_position": 5}, d_model=16, num_heads=2, causal=False)
    assert traits_of(nezha) == Traits(has_bias=True, bias_needs_query=True, mixes_values=True, clipped_distance=5,
                                      clipped_vectors_only=True, heads=2)
    t5 = create_encoding("t5", d_model=16, num_heads=2, causal=True)
    assert traits_of(t5) == Traits(has_bias=True, learned_bias=True, clipped_distance=128, heads=2)
    padding = torch.ones(3, 7, dtype=torch.bool)
    with torch.no_grad():
        assert case_of(torch.arange(7) + 4, None, causal=True, backend="sdpa", check_contiguity=True) == Case(
            length=7, contiguous=True, causal=True)
        assert case_of(torch.zeros(3, 7, dtype=torch.long), padding, causal=False, backend="flex",
                       check_contiguity=True) == Case(length=7, batch=3, padded=True, backend="flex")
        assert not case_of(torch.tensor([0, 2, 3]), None, causal=False, backend="sdpa", check_contiguity=True).contiguous


def test_a_registered_kernel_is_planned_without_editing_the_planner() -> None:
    kernel = Kernel(name="throwaway-first", function=BiasedAttention, kind="blocks", order=-1,
                    when="every pass over blocks", applies=lambda traits, case, tuning: True,
                    attend=lambda q, k, v, plan: q, rows=lambda traits, case, tuning: 7)
    register_kernel(kernel)
    try:
        assert choose_path(NEZHA, infer(64)).name == "throwaway-first"
        assert choose_path(NEZHA, infer(64)).rows == 7
        assert path_named("throwaway-first", NEZHA, infer(64)).rows == 7
        assert choose_path(NEZHA_KEYS, infer(64)).name == "query-bias"  # not over blocks: not asked
    finally:
        KERNELS.unregister("throwaway-first")
    assert choose_path(NEZHA, infer(64)).name == "clipped-vector-blocks"


def test_unknown_paths_and_kernel_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown attention path 'blocky'; paths: reference, blocks"):
        path_named("blocky", ALIBI, infer(8))
    with pytest.raises(ValueError, match="kind must be one of"):
        register_kernel(Kernel(name="x", function=BiasedAttention, kind="rows", when="", applies=lambda *a: False,
                               attend=lambda *a: None))  # type: ignore[arg-type]
    assert TUNING == Tuning()
