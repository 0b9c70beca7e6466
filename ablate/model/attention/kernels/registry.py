"""The kernel registry: every module of :mod:`ablate.model.attention.kernels` registers its one autograd Function.

A kernel is a hand-written autograd Function with the condition under which it runs.
Kernels of kind ``blocks`` compute a whole layer's attention over blocks of query rows;
the planner runs the first (by ``order``) whose condition holds whenever attention must
go over blocks. A kernel of kind ``mask`` computes attention under one given additive
mask that carries gradients, wherever a path would otherwise hand that mask to SDPA.
``tests/test_kernels.py`` checks every registered kernel against the reference path
wherever its condition holds, so a new kernel is tested the moment it is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch

from ablate.model.attention.plan import AttentionPlan
from ablate.model.attention.traits import Case, Traits, Tuning
from ablate.core.registry import Registry

Condition = Callable[[Traits, Case, Tuning], bool]


@dataclass(frozen=True)
class Kernel:
    """One registered kernel.

    Attributes:
        name: the path name the planner gives it.
        function: its autograd Function.
        kind: ``blocks`` (a layer's attention over blocks of query rows) or ``mask``
            (attention under one additive mask that carries gradients).
        when: the condition in words (for docs and reports).
        applies: the condition, on the planner's inputs.
        attend: ``(q, k, v, plan) -> out``, ``(B, H, L, Dh)`` each: the kernel run as the
            model runs it, with ``plan.path.rows`` query rows per block.
        rows: query rows per block for a case (default ``tuning.block_rows``).
        order: among ``blocks`` kernels whose condition holds, the lowest runs.
    """

    name: str
    function: type[torch.autograd.Function]
    kind: Literal["blocks", "mask"]
    when: str
    applies: Condition
    attend: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, AttentionPlan], torch.Tensor]
    rows: Callable[[Traits, Case, Tuning], int] = lambda traits, case, tuning: tuning.block_rows
    order: int = 0


KERNELS: Registry[Kernel] = Registry("attention kernel", package="ablate.model.attention.kernels")

KINDS = ("blocks", "mask")


def register_kernel(kernel: Kernel) -> Kernel:
    """Register ``kernel`` under its name (a module's one registration line)."""
    if kernel.kind not in KINDS:
        raise ValueError(f"kernel {kernel.name!r}: kind must be one of {KINDS}, got {kernel.kind!r}")
    if not (isinstance(kernel.function, type) and issubclass(kernel.function, torch.autograd.Function)):
        raise TypeError(f"kernel {kernel.name!r}: function must be a torch.autograd.Function subclass")
    KERNELS.register(kernel.name)(kernel)  # type: ignore[arg-type]
    return kernel


def kernels(kind: str | None = None) -> list[Kernel]:
    """Registered kernels (of ``kind``, when given), by ``order`` then name."""
    found = [entry for _, entry in KERNELS.items()]
    return sorted((k for k in found if kind is None or k.kind == kind), key=lambda k: (k.order, k.name))  # type: ignore[union-attr]
