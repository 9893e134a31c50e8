"""Entropic soft assignment with dustbins (Sinkhorn): a training-free alternative to the DHN.

A distance matrix D (N×M) is augmented with a dustbin row and column whose cost is
``dustbin_cost``; the Sinkhorn iterations, in log space, find the transport plan P of minimal
``<P, D> - epsilon * H(P)`` whose real rows and columns each carry one unit and whose dustbins
absorb what is left (N units for the dustbin column, M for the dustbin row). ``P[:N, :M]`` is a
soft assignment in [0, 1]: a pair whose distance is below ``dustbin_cost`` and that wins its row
and column gets close to 1 as ``epsilon`` goes to 0; everything else goes to the dustbins.
It is differentiable in D, needs no training, and is exact in the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["SinkhornConfig", "Sinkhorn", "sinkhorn_assignment"]


@dataclass(frozen=True)
class SinkhornConfig:
    """Sinkhorn settings.

    ``dustbin_cost``: the distance above which leaving a row or column unmatched is cheaper than
    matching it (0.5, the paper's δ). ``epsilon``: entropic temperature; smaller is closer to the
    Hungarian solution and slower to converge. ``iterations``: Sinkhorn sweeps.
    """

    dustbin_cost: float = 0.5
    epsilon: float = 0.05
    iterations: int = 50


def sinkhorn_assignment(distance: Tensor, config: SinkhornConfig = SinkhornConfig()) -> Tensor:
    """Soft assignment of one matrix.

    Args:
        distance: ``(N, M)`` distances (any real values; gated pairs may hold a large value).
        config: see :class:`SinkhornConfig`.

    Returns:
        ``(N, M)`` soft assignment in [0, 1], differentiable with respect to ``distance``.
    """
    n, m = distance.shape
    if n == 0 or m == 0:
        return distance.new_zeros((n, m))
    dustbin = distance.new_full((), config.dustbin_cost)
    cost = torch.cat(
        [
            torch.cat([distance, dustbin.expand(n, 1)], dim=1),
            torch.cat([dustbin.expand(1, m), dustbin.new_zeros(1, 1)], dim=1),
        ],
        dim=0,
    )
    scores = -cost / config.epsilon
    log_rows = torch.log(torch.cat([distance.new_ones(n), distance.new_full((1,), float(m))]))
    log_cols = torch.log(torch.cat([distance.new_ones(m), distance.new_full((1,), float(n))]))
    u = torch.zeros_like(log_rows)
    v = torch.zeros_like(log_cols)
    for _ in range(config.iterations):
        u = log_rows - torch.logsumexp(scores + v[None, :], dim=1)
        v = log_cols - torch.logsumexp(scores + u[:, None], dim=0)
    plan = torch.exp(scores + u[:, None] + v[None, :])
    return plan[:n, :m].clamp(0, 1)


class Sinkhorn(nn.Module):
    """Matcher interface over :func:`sinkhorn_assignment`: ``matcher(D, mask=None) -> Â``.

    ``D`` is ``(N, M)`` or a padded ``(B, N, M)`` batch with ``mask (B, N, M) bool`` marking each
    matrix's valid top-left block; padding comes back as 0.
    """

    def __init__(self, config: SinkhornConfig = SinkhornConfig()) -> None:
        super().__init__()
        self.config = config

    def forward(self, distance: Tensor, mask: Tensor | None = None) -> Tensor:
        if distance.ndim == 2:
            return sinkhorn_assignment(distance, self.config)
        if distance.ndim != 3:
            raise ValueError(f"D must have shape (N, M) or (B, N, M), got {tuple(distance.shape)}")
        out = torch.zeros_like(distance)
        for b in range(distance.shape[0]):
            n, m = distance.shape[1:] if mask is None else _block_size(mask[b])
            out[b, :n, :m] = sinkhorn_assignment(distance[b, :n, :m], self.config)
        return out


def _block_size(mask: Tensor) -> tuple[int, int]:
    """Rows and columns of the valid top-left block of a ``(N, M)`` mask."""
    return int(mask.any(1).sum()), int(mask.any(0).sum())
