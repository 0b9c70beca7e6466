"""The attention engine: a planner, a reference path and registered kernels.

Layout (each module one concept):

* :mod:`~ablate.attention.traits` — the planner's inputs: an encoding's :class:`Traits`,
  a forward pass's :class:`Case`, the :class:`Tuning` numbers.
* :mod:`~ablate.attention.planner` — :func:`choose_path`, a pure function of those to a named path.
* :mod:`~ablate.attention.engine` — :func:`plan_attention` (once per forward pass),
  :func:`attend` (every layer), the backend switch (``attention_backend``, ``ABLATE_ATTENTION``).
* :mod:`~ablate.attention.reference` — the plain reference path every other is checked against.
* built-in paths: :mod:`~ablate.attention.shared_mask`, :mod:`~ablate.attention.blocks`,
  :mod:`~ablate.attention.flex` (and SDPA itself in the engine).
* :mod:`ablate.attention.kernels` — one autograd Function per module, each registered
  with the condition under which it runs.
* shared parts: :mod:`~ablate.attention.softmax_backward` (the one explicit softmax
  backward), :mod:`~ablate.attention.private_ops` (the private torch operators),
  :mod:`~ablate.attention.masks`, :mod:`~ablate.attention.clipped`,
  :mod:`~ablate.attention.mask_cache`.

docs/attention.md draws it.
"""

from ablate.attention.engine import (
    BACKENDS,
    SWITCH,
    attend,
    attention,
    choose_backend,
    plan_attention,
    requested_backend,
)
from ablate.attention.flex import flex_available
from ablate.attention.kernels import KERNELS, Kernel, kernels
from ablate.attention.mask_cache import MaskCache
from ablate.attention.plan import AttentionPlan, Path
from ablate.attention.planner import choose_path
from ablate.attention.traits import TUNING, Case, Traits, Tuning, case_of, traits_of

__all__ = [
    "BACKENDS", "KERNELS", "SWITCH", "TUNING", "AttentionPlan", "Case", "Kernel", "MaskCache", "Path", "Traits",
    "Tuning", "attend", "attention", "case_of", "choose_backend", "choose_path", "flex_available", "kernels",
    "plan_attention", "requested_backend", "traits_of",
]
