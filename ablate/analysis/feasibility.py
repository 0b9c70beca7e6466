"""Which results mean something: cells unable to solve a task by construction, and runs that did not learn.

Two different reasons a cell sits at chance must not be confused with a length
extrapolation failure:

* **Unable by construction** - the model is invariant under a transformation of
  its input that changes the task's label, so no training can solve the task.
  Each rule here names the transformation, and ``tests/test_feasibility.py``
  checks the invariance on a real model for every rule.
* **Did not learn** - the run could have solved the task but did not reach the
  suite's threshold at the train length (``report.learned_threshold``); its
  numbers at longer lengths say nothing about extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ablate.model.encodings import ENCODINGS
from ablate.core.metrics import higher_is_better
from ablate.model.pooling import pooling_classes
from ablate.core.registry import UnknownNameError, split_spec
from ablate.tasks import TASKS

#: Default ``report.learned_threshold`` for accuracy-like metrics (fraction correct at the train length).
DEFAULT_LEARNED_THRESHOLD = 0.9


def _trait(registry: Any, spec: Any, trait: str, default: Any) -> Any:
    """A class attribute of the component ``spec`` names (``default`` for a name no longer registered)."""
    try:
        return getattr(registry.get(split_spec(spec)[0]), trait, default)
    except UnknownNameError:
        return default


def _poolings_all(model: dict[str, Any], holds: Callable[[type], bool]) -> bool:
    """Whether every pooling the model's spec names (``mean+max``: both) satisfies ``holds``."""
    try:
        return all(holds(cls) for cls in pooling_classes(model["pooling"]))
    except UnknownNameError:
        return False


def end_read(model: dict[str, Any]) -> str | None:
    """The end of the sequence a model's pooling reads (``"first"``/``"last"``), else ``None``."""
    try:
        ends = {cls.reads_end for cls in pooling_classes(model["pooling"])}
    except UnknownNameError:
        return None
    return ends.pop() if len(ends) == 1 else None


def position_free_encoder(model: dict[str, Any]) -> bool:
    """A bidirectional encoder without positions: permutation-equivariant, whatever its weights."""
    return _trait(ENCODINGS, model["encoding"], "family", None) == "none" and not model["causal"]


def _direction_blind_encoder(model: dict[str, Any]) -> bool:
    return bool(_trait(ENCODINGS, model["encoding"], "direction_blind", False)) and not model["causal"]


@dataclass(frozen=True)
class Impossibility:
    """A combination that cannot solve tasks sensitive to ``symmetry``, and why."""

    name: str
    symmetry: str
    reason: str
    matches: Callable[[dict[str, Any]], bool]

    def transform(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The input transformation the model is invariant to: ``(B, L)`` ids -> ``(B, L)``."""
        if self.symmetry == "reversal":
            return inputs.flip(-1)
        order = torch.randperm(inputs.shape[-1], generator=generator)
        return inputs[..., order]


#: Each rule reads the components' traits through their registries: an encoding's ``family``
#: and ``direction_blind``, a pooling's ``symmetric`` and ``prepends_cls``.
RULES: list[Impossibility] = [
    Impossibility(
        "NoPE encoder + symmetric pooling", "permutation",
        "a bidirectional encoder without positions is permutation-equivariant and the pooling (or [CLS], "
        "which attends to every token alike) is symmetric, so the pooled vector is permutation-invariant",
        lambda m: position_free_encoder(m) and _poolings_all(m, lambda cls: cls.symmetric or cls.prepends_cls),
    ),
    Impossibility(
        "symmetric bias encoder + symmetric pooling", "reversal",
        "a bidirectional bias depending on |i - j| only is the same for the reversed sequence, so token "
        "states are reversed with it and a symmetric pooling cannot see direction",
        lambda m: _direction_blind_encoder(m) and _poolings_all(m, lambda cls: cls.symmetric),
    ),
]


def unable(config: dict[str, Any]) -> Impossibility | None:
    """The rule that makes this resolved run config unable to solve its task by construction, if any.

    The task's class says which transformations change its label (``label_changes_under``).
    """
    sensitive = _trait(TASKS, config["task"], "label_changes_under", frozenset())
    for rule in RULES:
        if rule.symmetry in sensitive and rule.matches(config["model"]):
            return rule
    return None


def learned_threshold(metric: str, configured: float | None = None) -> float | None:
    """The train-length value a run must reach to count as having learned (``None``: no threshold).

    Accuracy-like metrics default to :data:`DEFAULT_LEARNED_THRESHOLD`; others (losses,
    perplexity) have no natural scale and count as learned unless the suite sets one.
    """
    if configured is not None:
        return configured
    return DEFAULT_LEARNED_THRESHOLD if metric in ("accuracy", "token_accuracy", "exact_match") else None


def has_learned(value: float, metric: str, threshold: float | None) -> bool:
    """Whether a train-length ``value`` of ``metric`` reaches ``threshold`` (direction from the metric)."""
    if threshold is None:
        return True
    return value >= threshold if higher_is_better(metric) else value <= threshold
