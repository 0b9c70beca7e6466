"""Pooling: padding invariance (left and right), masked max in low precision, concatenation."""

from __future__ import annotations

import pytest
import torch

from ablate.model.pooling import POOLINGS, ConcatPooling, create_pooling, pooling_is_token_level, token_rank
from ablate.core.registry import UnknownNameError

POOLED = [name for name in POOLINGS.names() if not POOLINGS.get(name).token_level]


def _pad(h: torch.Tensor, left: int, right: int) -> tuple[torch.Tensor, torch.Tensor]:
    batch, length, dim = h.shape
    padded = torch.randn(batch, left + length + right, dim) * 100  # garbage in the padding
    padded[:, left : left + length] = h
    mask = torch.zeros(batch, left + length + right, dtype=torch.bool)
    mask[:, left : left + length] = True
    return padded, mask


@pytest.mark.parametrize("name", [n for n in POOLED if n != "cls"])
@pytest.mark.parametrize("left,right", [(0, 3), (3, 0), (2, 2)])
def test_padding_never_changes_the_pooled_vector(name: str, left: int, right: int) -> None:
    pooling = create_pooling(name, d_model=8, num_heads=2)
    h = torch.randn(3, 5, 8)
    expected = pooling(h, None)
    padded, mask = _pad(h, left, right)
    torch.testing.assert_close(pooling(padded, mask), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", POOLED)
def test_a_pooling_is_symmetric_exactly_when_its_class_says_so(name: str) -> None:
    # The trait ablate.analysis.feasibility reasons with: the pooled vector of reordered token states.
    pooling = create_pooling(name, d_model=8, num_heads=2)
    h = torch.randn(3, 6, 8)
    reordered = h[:, torch.tensor([4, 2, 0, 5, 1, 3])]
    same = torch.allclose(pooling(reordered, None), pooling(h, None), rtol=1e-5, atol=1e-6)
    assert same == POOLINGS.get(name).symmetric, f"{name}: symmetric = {POOLINGS.get(name).symmetric}"


def test_token_level_comes_from_the_class() -> None:
    assert pooling_is_token_level("none") and pooling_is_token_level({"name": "none"})
    assert not pooling_is_token_level("mean+max")


def test_reference_values_of_simple_poolings() -> None:
    h = torch.tensor([[[1.0], [2.0], [3.0], [9.0]]])
    mask = torch.tensor([[True, True, True, False]])
    build = lambda n: create_pooling(n, d_model=1, num_heads=1)  # noqa: E731
    assert build("mean")(h, mask).item() == pytest.approx(2.0)
    assert build("max")(h, mask).item() == pytest.approx(3.0)
    assert build("first")(h, mask).item() == pytest.approx(1.0)
    assert build("last")(h, mask).item() == pytest.approx(3.0)
    assert build("mean_sqrt_len")(h, mask).item() == pytest.approx(6.0 / 3**0.5)
    # SGPT position weights 1, 2, 3 over the real tokens.
    assert build("weighted_mean")(h, mask).item() == pytest.approx((1 * 1 + 2 * 2 + 3 * 3) / 6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_masked_max_has_no_inf_or_nan_in_low_precision(dtype: torch.dtype) -> None:
    pooling = create_pooling("max", d_model=4)
    h = torch.randn(2, 6, 4).to(dtype)
    mask = torch.tensor([[True] * 6, [False] * 6])  # second row: nothing real
    out = pooling(h, mask)
    assert torch.isfinite(out).all()
    assert (out[1] == 0).all()


def test_token_rank_counts_real_tokens_only() -> None:
    mask = torch.tensor([[False, False, True, True, True], [True, True, False, False, False]])
    rank = token_rank(mask)
    assert rank[0, 2:].tolist() == [0, 1, 2]
    assert rank[1, :2].tolist() == [0, 1]


def test_concatenation_and_errors() -> None:
    pooling = create_pooling("mean+max", d_model=8)
    assert isinstance(pooling, ConcatPooling) and pooling.out_dim() == 16
    h = torch.randn(2, 4, 8)
    torch.testing.assert_close(pooling(h, None)[:, :8], h.mean(1))
    with pytest.raises(UnknownNameError, match="did you mean 'mean'|Did you mean 'mean'"):
        create_pooling("maen", d_model=8)
    with pytest.raises(ValueError, match="cannot be combined"):
        create_pooling("mean+none", d_model=8)
