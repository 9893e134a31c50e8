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

__all__ = ["SinkhornConfig", "Sinkhorn", "sinkhorn_assignment", "sinkhorn_plan"]


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


_FAR = 1e4
"""Stands in for an infinite cost on padding (finite: no NaN in gradients)."""


def sinkhorn_plan(
    distance: Tensor,
    mask: Tensor,
    dustbin_cost: float,
    epsilons: tuple[float, float],
    iterations: int,
) -> Tensor:
    """Transport plans of a padded batch with dustbins, in log space, in ``distance``'s dtype.

    The temperature goes geometrically from ``epsilons[0]`` to ``epsilons[1]`` over the sweeps
    (epsilon-scaling; equal values: a fixed temperature). Each matrix's dustbin column takes what
    its N valid rows leave, its dustbin row what its M valid columns leave; padding takes no
    mass, so it never changes a matrix's plan.

    Args:
        distance: ``(B, N, M)`` distances, padded.
        mask: ``(B, N, M)`` bool, True on each matrix's valid top-left block.
        dustbin_cost: cost of leaving a row or column unmatched.
        epsilons: first and last temperature.
        iterations: Sinkhorn sweeps (each a row and a column normalisation).

    Returns:
        ``(B, N, M)`` plans in [0, 1], 0 on padding, differentiable with respect to ``distance``.
    """
    b, n, m = distance.shape
    rows, cols = mask.any(2), mask.any(1)
    pad = torch.nn.functional.pad
    cost = pad(distance.masked_fill(~mask, 0.0), (0, 1, 0, 1), value=dustbin_cost)
    cost[:, n, m] = 0.0
    invalid = pad(~mask, (0, 1, 0, 1), value=False)
    invalid[:, :n, m] = ~rows
    invalid[:, n, :m] = ~cols
    count_rows = rows.sum(1, keepdim=True).clamp(min=1).to(distance.dtype)
    count_cols = cols.sum(1, keepdim=True).clamp(min=1).to(distance.dtype)
    zero, far = distance.new_zeros(()), distance.new_full((), -_FAR)
    log_rows = torch.cat([torch.where(rows, zero, far), count_cols.log()], 1)  # dustbin row: M
    log_cols = torch.cat([torch.where(cols, zero, far), count_rows.log()], 1)  # dustbin col: N
    f, g = torch.zeros_like(log_rows), torch.zeros_like(log_cols)  # dual potentials, cost units
    first, last = epsilons
    eps = first
    for k in range(iterations):
        eps = first * (last / first) ** (k / max(iterations - 1, 1))
        scores = (-cost / eps).masked_fill(invalid, -_FAR)
        f = eps * (log_rows - torch.logsumexp(scores + g[:, None, :] / eps, dim=2))
        g = eps * (log_cols - torch.logsumexp(scores + f[:, :, None] / eps, dim=1))
    scores = (-cost / eps).masked_fill(invalid, -_FAR)
    plan = torch.exp(scores + (f[:, :, None] + g[:, None, :]) / eps)[:, :n, :m]
    return plan.clamp(0, 1).masked_fill(~mask, 0.0)


def sinkhorn_assignment(distance: Tensor, config: SinkhornConfig = SinkhornConfig()) -> Tensor:
    """Soft assignment of one matrix.

    Args:
        distance: ``(N, M)`` distances (any real values; gated pairs may hold a large value).
        config: see :class:`SinkhornConfig`.

    Returns:
        ``(N, M)`` soft assignment in [0, 1], differentiable with respect to ``distance``.
    """
    return Sinkhorn(config)(distance)


class Sinkhorn(nn.Module):
    """Matcher interface over :func:`sinkhorn_plan` at a fixed temperature:
    ``matcher(D, mask=None) -> Â``.

    ``D`` is ``(N, M)`` or a padded ``(B, N, M)`` batch with ``mask (B, N, M) bool`` marking each
    matrix's valid top-left block; padding comes back as 0. A batch is solved in one pass.
    """

    def __init__(self, config: SinkhornConfig = SinkhornConfig()) -> None:
        super().__init__()
        self.config = config

    def forward(self, distance: Tensor, mask: Tensor | None = None) -> Tensor:
        if distance.ndim not in (2, 3):
            raise ValueError(f"D must have shape (N, M) or (B, N, M), got {tuple(distance.shape)}")
        single = distance.ndim == 2
        batch = distance[None] if single else distance
        if batch.numel() == 0:
            return torch.zeros_like(distance)
        if mask is None:
            mask = torch.ones_like(batch, dtype=torch.bool)
        config = self.config
        plan = sinkhorn_plan(
            batch, mask, config.dustbin_cost, (config.epsilon, config.epsilon), config.iterations
        )
        return plan[0] if single else plan
