"""What the attention planner decides from: an encoding's traits, one forward pass's case, and the tuning.

Plain values, no tensors, so :func:`ablate.model.attention.planner.choose_path` is a pure
function of them and is tested as a table. :func:`traits_of` and :func:`case_of` read
them off an encoding and a forward pass's tensors; the conditions shared by several
paths (:func:`over_blocks`) are stated here once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ablate.model.encodings.base import PositionalEncoding, is_contiguous_range


@dataclass(frozen=True)
class Traits:
    """What attention needs to know of an encoding (its contract: :mod:`ablate.model.encodings.base`).

    Attributes:
        has_bias: it adds a bias to the logits.
        bias_needs_query: its bias reads the queries, so it is computed in every layer.
        mixes_values: it adds a value term to the output (which needs the probabilities).
        learned_bias: its bias has parameters that require gradients.
        clipped_distance: ``k`` when its relative term depends on the clipped distance
            ``clip(j - i, -k, k)`` alone (``clipped_relative``), else ``None``.
        clipped_vectors_only: that term is Shaw-style vectors, without a per-head table.
        heads: attention heads (a shared mask holds one ``(L, L)`` plane per head).
    """

    has_bias: bool = False
    bias_needs_query: bool = False
    mixes_values: bool = False
    learned_bias: bool = False
    clipped_distance: int | None = None
    clipped_vectors_only: bool = False
    heads: int = 1

    @property
    def static_bias(self) -> bool:
        """A bias from positions alone: computed once per forward pass and shared by every layer."""
        return self.has_bias and not self.bias_needs_query


@dataclass(frozen=True)
class Case:
    """One forward pass as attention sees it.

    Attributes:
        length: the sequence length ``L`` (queries and keys).
        device: the device type (``cpu``, ``cuda``, ...).
        grad: autograd records this pass (training).
        batch: rows of a per-sequence (padding) mask; 1 when the batch shares one mask.
        padded: some sequence has padding.
        contiguous: the positions are one consecutive integer range shared by the batch
            (checked only where a clipped kernel could use it: it reads every position).
        causal: a causal decoder (later keys masked).
        backend: the resolved request: ``sdpa``, ``flex`` or ``reference``.
    """

    length: int
    device: str = "cpu"
    grad: bool = False
    batch: int = 1
    padded: bool = False
    contiguous: bool = False
    causal: bool = False
    backend: str = "sdpa"


@dataclass(frozen=True)
class Tuning:
    """The planner's numbers: where one path becomes faster or leaner than another (measured on the CPU).

    Tests reach every path by passing other values (e.g. ``shared_mask_max_elements=0``
    sends training over blocks at any length).

    Attributes:
        shared_mask_max_elements: a static bias without parameters (ALiBi) is built once per forward
            pass and shared by every layer, in training too, while ``batch * H * L * L`` stays
            below this (256 MiB in float32); past it training goes over blocks of query rows.
        shared_learned_mask_max_elements: the same for a bias with parameters (T5, KERPLE, FIRE),
            lower because autograd keeps the mask, its gradient and each layer's share of it
            (4 heads at L = 1024).
        causal_row_block: query rows per row block of a shared mask, which reads keys up to its
            last row in a causal model (about half of a causal mask is never read).
        trained_mask_rows: query rows per checkpointed region of a learned shared mask: backward
            recomputes one region at a time, so what the bias computes on the way (FIRE's MLP,
            ``width`` values per pair) is kept for that region only.
        block_rows: query rows per block over blocks: the per-block transients are
            ``(B, H, rows, L)``, at batch 8 and 4 heads about one ``(B, L, d_ff)`` activation of a
            ``d_model=128`` feed-forward at every length.
        fused_block_rows: query rows per block where the fused kernel runs forward and backward (a
            bias without parameters): fewer, larger kernel calls run faster.
        far_keys_length_per_distance: a term of the clipped distance puts its far keys on the fused
            kernel once the sequence is longer than this many clipping distances (NEZHA's 64 from
            L = 1024 on); below, the band is most of each row and all-explicit blocks ran faster.
        backward_rows: query rows per step of the explicit backward of attention under a mask
            that carries gradients (a shared mask has all ``L`` rows).
    """

    shared_mask_max_elements: int = 2**26
    shared_learned_mask_max_elements: int = 2**22
    causal_row_block: int = 128
    trained_mask_rows: int = 32
    block_rows: int = 64
    fused_block_rows: int = 256
    far_keys_length_per_distance: int = 8
    backward_rows: int = 128

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            smallest = 0 if field.name.endswith(("max_elements", "per_distance")) else 1
            if not isinstance(value, int) or value < smallest:
                raise ValueError(f"attention tuning: {field.name} must be an integer >= {smallest}, got {value!r}")


#: The measured defaults.
TUNING = Tuning()


def flex_trains(case: Case) -> bool:
    """FlexAttention differentiates on CUDA only (it has no CPU backward)."""
    return case.backend == "flex" and case.device == "cuda"


def over_blocks(traits: Traits, case: Case, tuning: Tuning) -> bool:
    """Whether attention goes over blocks of query rows, keeping nothing ``(B, H, L, L)`` for backward.

    Always for a value term (it needs the probabilities, which no fused kernel returns);
    in training (unless FlexAttention trains) for a bias that reads the queries (a new
    bias in every layer) and for a static bias whose shared mask would be too large.
    """
    if traits.mixes_values:
        return True
    if not case.grad or flex_trains(case) or not traits.has_bias:
        return False
    if traits.bias_needs_query:
        return True
    limit = tuning.shared_learned_mask_max_elements if traits.learned_bias else tuning.shared_mask_max_elements
    return case.batch * traits.heads * case.length * case.length > limit


def traits_of(encoding: PositionalEncoding) -> Traits:
    """An encoding's :class:`Traits`, from its contract (``mixes_values`` is derived from ``clipped_relative``)."""
    relative = encoding.clipped_relative()
    return Traits(
        has_bias=encoding.has_bias,
        bias_needs_query=encoding.bias_needs_query,
        mixes_values=relative is not None and relative.values is not None,
        learned_bias=any(p.requires_grad for p in encoding.parameters()),
        clipped_distance=None if relative is None else relative.max_distance,
        clipped_vectors_only=relative is not None and relative.table is None and relative.keys is not None,
        heads=encoding.num_heads,
    )


def case_of(positions: torch.Tensor, padding_mask: torch.Tensor | None, *, causal: bool, backend: str,
            check_contiguity: bool) -> Case:
    """The :class:`Case` of a forward pass: positions ``(L,)`` or ``(B, L)``, padding mask ``(B, L)`` or ``None``."""
    contiguous = check_contiguity and positions.dim() == 1 and is_contiguous_range(positions)
    return Case(length=positions.shape[-1], device=positions.device.type, grad=torch.is_grad_enabled(),
                batch=1 if padding_mask is None else padding_mask.shape[0], padded=padding_mask is not None,
                contiguous=contiguous, causal=causal, backend=backend)
