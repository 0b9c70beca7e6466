"""What a model invariant to a transformation of its input can reach: bounds that make a predicate vacuous.

A bidirectional encoder without positions is permutation-equivariant, so with a
symmetric pooling its output is a function of the multiset of tokens, and with
``first``/``last`` pooling a function of that end's token and the multiset of the
others. A bidirectional bias depending on ``|i - j|`` with a symmetric pooling
cannot tell a sequence from its reversal. For such a cell, the best accuracy any
model can reach is the Bayes accuracy of the label given the input's orbit under
the transformations:

    bound = E_x [ max_y P(label(g x) = y) ],  g uniform over the group

(the tasks' input distributions are invariant under these groups, so every
element of an orbit is equally likely). A claim predicate ``accuracy <= t`` with
``t`` at or above the bound cannot fail, and ``accuracy >= t`` above it cannot
hold: either is no evidence, and :func:`by_construction` says so with the bound.
The bound is estimated by Monte Carlo (orbits sampled, the label read with
:meth:`ablate.tasks.base.Task.label`). Taking the best class of each sampled orbit
overestimates the bound (it fits the orbit's sample), which is the safe side for
both refusals; a predicate is refused only when its threshold clears the estimate by
three standard errors of the inputs' sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ablate.analysis.feasibility import end_read, position_free_encoder, unable
from ablate.results.store import axis_column
from ablate.suite import Plan
from ablate.tasks import create_task

#: Inputs whose orbits are sampled, and group elements per orbit.
INPUTS, ELEMENTS = 2048, 512
#: Seed of the bound's Monte Carlo (the same claim file always gets the same bound).
SEED = 20261206


@dataclass(frozen=True)
class Bound:
    """The best accuracy a model invariant to ``group`` can reach at ``length``, with its Monte-Carlo error."""

    group: str
    length: int
    value: float
    error: float


def _permute(fixed: str | None) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Random permutations of the positions of ``(N, L)`` inputs, keeping the first or last one in place."""

    def move(inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, length = inputs.shape
        keys = torch.rand(n, length, generator=generator)
        if fixed == "first":
            keys[:, 0] = -1.0
        elif fixed == "last":
            keys[:, -1] = 2.0
        return inputs.gather(1, keys.argsort(dim=1))

    return move


def _reverse(inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(inputs.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None], inputs.flip(1), inputs)


#: Groups a cell's output can be invariant to, by name: a random element applied to ``(N, L)`` inputs.
GROUPS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "permutation": _permute(None),
    "permutation fixing the first position": _permute("first"),
    "permutation fixing the last position": _permute("last"),
    "reversal": _reverse,
}


def invariance(config: Mapping[str, Any]) -> str | None:
    """The group a run config's output is invariant to, whatever its weights (``None``: none known).

    The full invariances are :mod:`ablate.analysis.feasibility`'s rules; a permutation-equivariant encoder
    (no positions, bidirectional) read at one end is invariant to permutations of the other positions.
    """
    rule = unable(dict(config))
    if rule is not None:
        return rule.symmetry
    end = end_read(config["model"])
    if end is not None and position_free_encoder(config["model"]):
        return f"permutation fixing the {end} position"
    return None


def bayes_bound(task: Mapping[str, Any] | str, group: str, length: int) -> Bound:
    """The Bayes accuracy of ``task``'s label given the orbit of the input under ``group`` at ``length``."""
    instance = create_task(task)
    generator = torch.Generator().manual_seed(SEED)
    batch = instance.sample(generator, INPUTS, length, split="test")
    inputs = batch.inputs.repeat_interleave(ELEMENTS, dim=0)  # (INPUTS * ELEMENTS, L)
    labels = instance.label(GROUPS[group](inputs, generator)).view(INPUTS, ELEMENTS)
    shares = torch.stack([(labels == c).float().mean(1) for c in range(instance.num_classes)], dim=1)
    best = shares.max(1).values  # (INPUTS,) the best any invariant model does on each orbit (overestimated)
    return Bound(group, length, float(best.mean()), float(best.std() / INPUTS**0.5))


def by_construction(plan: Plan, expectation: Mapping[str, Any]) -> str | None:
    """Why a ``value`` predicate on an accuracy cannot fail (or cannot hold) whatever is run, else ``None``."""
    if expectation.get("predicate") != "value" or expectation.get("metric") not in ("accuracy",):
        return None
    where, length = expectation.get("where", {}), int(expectation["length"])
    threshold, op = float(expectation["threshold"]), expectation.get("op")
    for run in plan.train_runs():
        if not _matches(run, where):
            continue
        group = invariance(run.config)
        if group is None:
            continue
        try:
            bound = bayes_bound(run.config["task"], group, length)
        except NotImplementedError:
            return None
        ceiling = bound.value + 3 * bound.error
        if op == "<=" and threshold >= ceiling:
            return (f"threshold {threshold:g} holds by construction: a model invariant to {group} reaches at most "
                    f"{bound.value:.3f} (±{bound.error:.3f}) accuracy at L={length}, so 'accuracy <= {threshold:g}' "
                    f"cannot fail; state the claim below {bound.value:.3f} or drop it")
        if op == ">=" and threshold > ceiling:
            return (f"threshold {threshold:g} fails by construction: a model invariant to {group} reaches at most "
                    f"{bound.value:.3f} (±{bound.error:.3f}) accuracy at L={length}")
        return None
    return None


def _matches(run: Any, where: Mapping[str, Any]) -> bool:
    axes = {axis_column(k): str(v) for k, v in run.axes.items()}
    return all(axes.get(k) == str(v) for k, v in where.items())
