"""A throwaway symmetric pooling, registered when pytest loads this file as a plugin (``-p throwaway_pooling``).

Used by tests/test_discovery.py to prove that a new pooling joins the registry-parametrized
tests, and the "unable by construction" reasoning of ablate/analysis/feasibility.py through its
``symmetric`` trait, with no test and no name list edited. It is a real pooling (the sum
over real tokens), so the tests it joins must pass for it too.
"""

from __future__ import annotations

import torch

from ablate.model.pooling.base import Pooling, masked_sum
from ablate.model.pooling.registry import POOLINGS

NAME = "throwaway_sum"


class ThrowawaySum(Pooling):
    """The sum of the real tokens' states: a symmetric function of them."""

    symmetric = True

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return masked_sum(h, mask)


POOLINGS.register(NAME)(ThrowawaySum)
