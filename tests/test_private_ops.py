"""The private torch operators of ablate/model/attention/private_ops.py: present, with the arguments used, and right.

After a torch upgrade that removes or changes one, these fail naming the operator.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from ablate.model.attention.private_ops import OPERATORS, flash_attention, flash_attention_backward, operator


@pytest.mark.parametrize("name", list(OPERATORS))
def test_each_private_operator_exists_with_the_arguments_it_is_called_with(name: str) -> None:
    try:
        packet = operator(name)
    except RuntimeError as error:
        pytest.fail(f"aten::{name} is gone from torch {torch.__version__}: {error}")
    arguments = tuple(argument.name for argument in packet.default._schema.arguments)
    assert arguments == OPERATORS[name], (
        f"aten::{name} changed its arguments in torch {torch.__version__}: {arguments}, "
        f"ablate/model/attention/private_ops.py passes {OPERATORS[name]}")


def test_a_missing_operator_is_an_error_that_names_it() -> None:
    with pytest.raises(RuntimeError, match="has no operator aten::_no_such_attention"):
        operator("_no_such_attention")


@pytest.mark.parametrize("causal", [False, True], ids=["mask", "causal"])
def test_the_flash_operators_agree_with_public_sdpa_and_autograd(causal: bool) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = None if causal else torch.randn(1, 3, 6, 6, dtype=torch.float64)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    upstream = torch.randn_like(expected)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), (q, k, v))
    with torch.no_grad():
        out, logsumexp = flash_attention(q, k, v, mask=mask, causal=causal)
        logits = q @ k.transpose(-1, -2) / math.sqrt(4) + (0 if mask is None else mask)
        if causal:
            logits = logits.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), float("-inf"))
        grads = flash_attention_backward(upstream, q, k, v, out, logsumexp, mask=mask, causal=causal)
    name = next(iter(OPERATORS))
    torch.testing.assert_close(out, expected, msg=lambda m: f"aten::{name} output: {m}")
    torch.testing.assert_close(logsumexp, torch.logsumexp(logits, -1), msg=lambda m: f"aten::{name} logsumexp: {m}")
    for label, got, want in zip("qkv", grads, expected_grads):
        torch.testing.assert_close(got, want, msg=lambda m, label=label: f"aten::{name}_backward grad_{label}: {m}")
