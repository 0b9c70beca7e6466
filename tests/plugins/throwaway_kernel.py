"""A throwaway attention kernel, registered when pytest loads this file as a plugin (``-p throwaway_kernel``).

Used by tests/test_discovery.py to prove that a new kernel is checked against the
reference path by tests/test_kernels.py with no test edited. It is a real kernel
(softmax attention under a static bias's mask, the whole sequence at once, with its
backward through the shared SoftmaxBackward), so the parity test must pass for it.
Its order puts it after every built-in kernel, so the planner never prefers it.
"""

from __future__ import annotations

from typing import Any

import torch

from ablate.model.attention.kernels.registry import Kernel, register_kernel
from ablate.model.attention.masks import static_block_mask
from ablate.model.attention.plan import AttentionPlan
from ablate.model.attention.softmax_backward import SoftmaxBackward
from ablate.model.attention.traits import Case, Traits, Tuning, over_blocks

NAME = "throwaway-dense"


class DenseStaticBias(torch.autograd.Function):
    """``apply(q, k, v, mask)``: ``(B, H, L, Dh)`` x3 and a constant additive mask ``(1|B, H, L, L)``."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # noqa: D102
        logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + mask
        out = torch.softmax(logits, dim=-1) @ v
        ctx.save_for_backward(q, k, v, mask, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        q, k, v, mask, out = ctx.saved_tensors
        gradients = SoftmaxBackward(q, k, v, out, grad_out)
        length = q.shape[-2]
        gradients.add(0, length, 0, length, gradients.masked_probs(0, length, length, mask, None))
        return gradients.grad_q, gradients.grad_k, gradients.grad_v, None


def _applies(traits: Traits, case: Case, tuning: Tuning) -> bool:
    return over_blocks(traits, case, tuning) and traits.static_bias and not traits.learned_bias


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    length = q.shape[-2]
    mask = static_block_mask(plan.encoding, plan.positions, plan.padding_mask, plan.causal, q.dtype, 0, length, length)
    return DenseStaticBias.apply(q, k, v, mask)


register_kernel(Kernel(name=NAME, function=DenseStaticBias, kind="blocks", order=1000,
                       when="a static bias without parameters, over blocks (a test plugin)",
                       applies=_applies, attend=_attend))
