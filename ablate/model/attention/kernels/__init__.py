"""Attention kernels: one module per hand-written autograd Function, each registered with its condition.

* :mod:`~ablate.model.attention.kernels.clipped_regions` — a term of the clipped distance, far keys fused
* :mod:`~ablate.model.attention.kernels.clipped_vector_blocks` — clipped relative vectors over blocks
* :mod:`~ablate.model.attention.kernels.static_bias_blocks` — a bias from positions alone over blocks
* :mod:`~ablate.model.attention.kernels.biased_attention` — SDPA under a mask that carries gradients

The registry (:data:`KERNELS`) imports every module of this package on first use.
"""

from ablate.model.attention.kernels.registry import KERNELS, Kernel, kernels, register_kernel

__all__ = ["KERNELS", "Kernel", "kernels", "register_kernel"]
