"""The attention engine: a planner, a reference path and registered kernels.

Layout (each module one concept):

* :mod:`~ablate.model.attention.traits` — the planner's inputs: an encoding's :class:`Traits`,
  a forward pass's :class:`Case`, the :class:`Tuning` numbers.
* :mod:`~ablate.model.attention.planner` — :func:`choose_path`, a pure function of those to a named path.
* :mod:`~ablate.model.attention.engine` — :func:`plan_attention` (once per forward pass),
  :func:`attend` (every layer), the backend switch (``attention_backend``, ``ABLATE_ATTENTION``).
* :mod:`~ablate.model.attention.reference` — the plain reference path every other is checked against.
* built-in paths: :mod:`~ablate.model.attention.shared_mask`, :mod:`~ablate.model.attention.blocks`,
  :mod:`~ablate.model.attention.flex` (and SDPA itself in the engine).
* :mod:`ablate.model.attention.kernels` — one autograd Function per module, each registered
  with the condition under which it runs.
* shared parts: :mod:`~ablate.model.attention.softmax_backward` (the one explicit softmax
  backward), :mod:`~ablate.model.attention.private_ops` (the private torch operators),
  :mod:`~ablate.model.attention.masks`, :mod:`~ablate.model.attention.clipped`,
  :mod:`~ablate.model.attention.mask_cache`.

docs/attention.md draws it.
"""

from ablate.model.attention.engine import (
    BACKENDS,
    SWITCH,
    attend,
    attention,
    choose_backend,
    plan_attention,
    requested_backend,
)
from ablate.model.attention.flex import flex_available
from ablate.model.attention.kernels import KERNELS, Kernel, kernels
from ablate.model.attention.mask_cache import MaskCache
from ablate.model.attention.plan import AttentionPlan, Path
from ablate.model.attention.planner import choose_path
from ablate.model.attention.traits import TUNING, Case, Traits, Tuning, case_of, traits_of

__all__ = [
    "BACKENDS", "KERNELS", "SWITCH", "TUNING", "AttentionPlan", "Case", "Kernel", "MaskCache", "Path", "Traits",
    "Tuning", "attend", "attention", "case_of", "choose_backend", "choose_path", "flex_available", "kernels",
    "plan_attention", "requested_backend", "traits_of",
]
