"""A bias of the signed distance ``j - i`` alone, stated once: :meth:`DistanceBias.distance_bias`.

ALiBi, KERPLE and any bias ``b_h(j - i)`` write their mathematics in that one method;
the dense bias (evaluated once per distinct distance, :func:`~ablate.model.encodings.base.bias_from_distances`)
and the FlexAttention ``score_mod`` are derived from it here.
"""

from __future__ import annotations

import torch

from ablate.model.encodings.base import PositionalEncoding, ScoreMod, bias_from_distances, gather_positions


class DistanceBias(PositionalEncoding):
    """Base of biases that depend on the signed distance alone; subclasses implement :meth:`distance_bias`."""

    family = "bias"

    def distance_bias(self, distance: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """The bias of heads ``head`` at signed distances ``distance = j - i``, broadcasting together.

        The dense bias calls it with ``head`` ``(H, 1, ...)`` against distances ``(*S)`` (int64,
        or float for interpolated positions) for an ``(H, *S)`` result; FlexAttention calls it
        with scalar tensors. Read a per-head parameter as ``parameter[head]``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement distance_bias(distance, head)")

    def project_parameters(self) -> None:
        """Bring parameters back into their domain before the bias is evaluated (default: nothing to do)."""

    def bias(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(H, Lq, Lk)`` for positions ``(L,)``, ``(B, H, Lq, Lk)`` for ``(B, L)``."""
        self.project_parameters()
        heads = torch.arange(self.num_heads, device=q_positions.device)

        def values_of(distance: torch.Tensor) -> torch.Tensor:  # (*S) -> (H, *S)
            return self.distance_bias(distance, heads.view(-1, *[1] * distance.dim()))

        return bias_from_distances(values_of, q_positions, k_positions)

    def score_mod(
        self, q_positions: torch.Tensor, k_positions: torch.Tensor, q: torch.Tensor | None = None
    ) -> ScoreMod:
        """FlexAttention form of :meth:`bias`: a per-head table of every distance the positions reach.

        The table ``(H, R)`` is computed here, so the score modification only reads a
        captured tensor by index (compiled FlexAttention scatters its gradient there and
        autograd carries it to the parameters); interpolated (float) positions evaluate
        :meth:`distance_bias` at each pair instead.
        """
        self.project_parameters()
        if q_positions.dtype.is_floating_point or k_positions.dtype.is_floating_point:
            values = self.distance_bias

            def interpolated(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
                distance = gather_positions(k_positions, b, kv_idx) - gather_positions(q_positions, b, q_idx)
                return score + values(distance, h).to(score.dtype)

            return interpolated
        low = int(k_positions.min()) - int(q_positions.max())
        distances = torch.arange(low, int(k_positions.max()) - int(q_positions.min()) + 1, device=q_positions.device)
        heads = torch.arange(self.num_heads, device=q_positions.device)
        table = self.distance_bias(distances, heads.view(-1, 1))  # (H, R): [h, d - low]

        def score_mod(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            distance = gather_positions(k_positions, b, kv_idx) - gather_positions(q_positions, b, q_idx)
            return score + table[h, distance - low].to(score.dtype)

        return score_mod
