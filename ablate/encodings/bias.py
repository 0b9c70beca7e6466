"""Relative-bias encodings: ``t5``, ``alibi``, ``kerple``, ``fire``, ``nezha``.

Each family lives in its own small module; importing this one registers them all.
What they share:

* ``bias(q_positions, k_positions, q)`` returns an additive logit bias, added after the
  ``1/sqrt(head_dim)`` scaling: ``(H, Lq, Lk)`` for batch-shared positions ``(L,)``,
  ``(B, H, Lq, Lk)`` for per-sequence positions ``(B, L)`` (and always for NEZHA, whose
  bias depends on the queries).
* ``score_mod`` adds the identical value inside FlexAttention without materialising the
  ``(L, L)`` bias; it only captures per-head parameters or small lookup tables.
* Static biases (all but NEZHA) are computed once per forward pass and shared by every
  layer, as T5 does, so their parameters are shared across layers too.
* In training, attention asks for the bias of one block of query rows at a time
  (:mod:`ablate.blockwise`) and recomputes it in backward, so the gradient of each
  family's small table is summed block by block.
"""

from __future__ import annotations

from ablate.encodings import t5  # noqa: F401  (registration order = listing order)
from ablate.encodings import alibi  # noqa: F401
from ablate.encodings import kerple  # noqa: F401
from ablate.encodings import fire  # noqa: F401
from ablate.encodings import nezha  # noqa: F401
