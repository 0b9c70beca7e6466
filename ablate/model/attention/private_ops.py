"""The private torch operators attention relies on, in one place.

The fused CPU flash-attention kernel behind SDPA returns each query row's log-sum-exp,
and its backward takes it; public SDPA returns neither. The kernels over blocks of
query rows need both: the log-sum-exp to recompute a block's probabilities with one
``exp`` in backward, and the fused backward for a mask without gradient (ALiBi) and
for the far keys of a clipped relative term. ``tests/test_private_ops.py`` checks that
both operators exist with the arguments used here and agree with public SDPA, and
fails naming the operator after a torch upgrade that removes or changes one.
"""

from __future__ import annotations

import torch

#: The operators (``aten::<name>``) and the arguments this module passes them, in order.
OPERATORS: dict[str, tuple[str, ...]] = {
    "_scaled_dot_product_flash_attention_for_cpu": (
        "query", "key", "value", "dropout_p", "is_causal", "attn_mask", "scale"),
    "_scaled_dot_product_flash_attention_for_cpu_backward": (
        "grad_out", "query", "key", "value", "out", "logsumexp", "dropout_p", "is_causal", "attn_mask", "scale"),
}
_FORWARD, _BACKWARD = OPERATORS


def operator(name: str) -> torch._ops.OpOverloadPacket:
    """``torch.ops.aten.<name>``, or a ``RuntimeError`` naming the operator this torch lacks."""
    try:
        return getattr(torch.ops.aten, name)
    except (AttributeError, RuntimeError):
        raise RuntimeError(f"torch {torch.__version__} has no operator aten::{name}, which ablate's fused CPU "
                           "attention kernels use (ablate/model/attention/private_ops.py)") from None


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, mask: torch.Tensor | None = None,
                    causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(Dh) + mask) v`` on the CPU and each row's log-sum-exp of the logits.

    ``q``: ``(B, H, Lq, Dh)``; ``k, v``: ``(B, H, Lk, Dh)``; ``mask``: ``(1|B, H, Lq, Lk)`` or ``None``.
    Returns ``(B, H, Lq, Dh)`` and ``(B, H, Lq)`` (float32 for half-precision inputs).
    """
    out, logsumexp = operator(_FORWARD)(q, k, v, 0.0, causal, attn_mask=mask)
    return out, logsumexp


def flash_attention_backward(
    grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
    logsumexp: torch.Tensor, *, mask: torch.Tensor | None = None, causal: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The backward of :func:`flash_attention` for a mask without gradient: ``grad_q, grad_k, grad_v``.

    Its row term is ``grad_out . out`` and the probabilities are ``exp(logits - logsumexp)``,
    so a caller may pass a shifted ``out`` and ``logsumexp`` to differentiate part of a
    larger softmax (:mod:`ablate.model.attention.kernels.clipped_regions`).
    """
    grad_q, grad_k, grad_v = operator(_BACKWARD)(grad_out, q, k, v, out, logsumexp, 0.0, causal, attn_mask=mask)
    return grad_q, grad_k, grad_v
