"""Relative-bias encodings (``family = "bias"`` or ``"query-bias"``): ``t5``, ``alibi``, ``kerple``, ``fire``, ``nezha``.

Each lives in its own small module, found by the encoding registry; this
module only says what they share:

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
