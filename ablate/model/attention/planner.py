"""The planner: one pure function from an encoding's traits and a forward pass's case to a named path.

Paths, in the order they are considered (the first that applies runs):

========================  ==================================================================
``reference``             asked for (``attention_backend = "reference"`` or ``ABLATE_ATTENTION``):
                          the dense bias, an explicit softmax, plain autograd
registered ``blocks``     attention must go over blocks of query rows (:func:`over_blocks`) and
kernels, by order         the kernel's condition holds (``ablate.model.attention.kernels``)
``blocks``                over blocks otherwise: each block a checkpoint (the general form)
``flex``                  FlexAttention asked for, in inference or on CUDA
``fused``                 no bias: SDPA's fused kernel (``is_causal``, or a boolean padding mask)
``query-bias``            a bias that reads the queries, in inference: computed per layer, SDPA
``shared-mask``           a static bias: one mask per forward pass shared by every layer, SDPA
                          (row blocks when causal or learned; a learned one, in training, runs
                          the ``biased-attention`` kernel)
========================  ==================================================================
"""

from __future__ import annotations

from ablate.model.attention.kernels.registry import kernels
from ablate.model.attention.plan import Path
from ablate.model.attention.traits import TUNING, Case, Traits, Tuning, over_blocks

#: Paths without a kernel of their own (registered kernels of kind ``blocks`` are the others).
BUILT_IN_PATHS = ("reference", "blocks", "flex", "fused", "query-bias", "shared-mask")


def choose_path(traits: Traits, case: Case, tuning: Tuning = TUNING) -> Path:
    """The path a forward pass takes (see the module docstring for the order)."""
    if case.backend == "reference":
        return Path("reference")
    if over_blocks(traits, case, tuning):
        for kernel in kernels("blocks"):
            if kernel.applies(traits, case, tuning):
                return Path(kernel.name, kernel.rows(traits, case, tuning))
        return Path("blocks", tuning.block_rows)
    if case.backend == "flex" and (not case.grad or case.device == "cuda"):
        return Path("flex")
    if not traits.has_bias:
        return Path("fused")
    if traits.bias_needs_query:
        return Path("query-bias")
    trained = case.grad and traits.learned_bias
    return Path("shared-mask", tuning.causal_row_block if case.causal or trained else None)


def path_named(name: str, traits: Traits, case: Case, tuning: Tuning = TUNING) -> Path:
    """The path ``name`` with the rows the planner would give it (to run one path on purpose: tests, re-checks)."""
    registered = {kernel.name: kernel for kernel in kernels("blocks")}
    if name in registered:
        return Path(name, registered[name].rows(traits, case, tuning))
    if name not in BUILT_IN_PATHS:
        known = ", ".join([*BUILT_IN_PATHS, *registered])
        raise ValueError(f"unknown attention path {name!r}; paths: {known}")
    if name == "blocks":
        return Path(name, tuning.block_rows)
    if name == "shared-mask":
        return Path(name, tuning.causal_row_block if case.causal or (case.grad and traits.learned_bias) else None)
    return Path(name)
