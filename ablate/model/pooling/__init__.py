"""Pooling: a variable-length sequence of vectors -> one vector, correct under padding.

Every pooling takes hidden states ``h`` of shape ``(B, L, D)`` and a padding mask
``(B, L)`` (``True`` at real tokens, ``None`` when nothing is padded) and must
give the same vector for a sequence whatever padding surrounds it, left or right.
A new pooling is one module of this package holding its class and its
``@POOLINGS.register`` line; the registry finds it.
"""

from ablate.model.pooling.base import Pooling, token_rank
from ablate.model.pooling.registry import (
    POOLINGS,
    ConcatPooling,
    create_pooling,
    pooling_classes,
    pooling_is_token_level,
    pooling_names,
)

__all__ = ["POOLINGS", "ConcatPooling", "Pooling", "create_pooling", "pooling_classes", "pooling_is_token_level",
           "pooling_names", "token_rank"]
