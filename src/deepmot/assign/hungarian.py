"""Exact assignment with SciPy's Hungarian solver, with a cost threshold (gating).

Semantics of the threshold, as in CLEAR-MOT: a pair whose cost is above ``threshold`` may not
be matched. Among the allowed pairs the solver first matches as many as it can, then
minimises the total cost of those matches (forbidden pairs get a cost larger than the sum of
all allowed ones, so trading one allowed match for any cost saving never pays). Without a
threshold every row is matched to a column until one side runs out (``min(N, M)`` pairs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["linear_assignment", "hungarian", "hungarian_batch"]


def _as_numpy(cost: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(cost, torch.Tensor):
        cost = cost.detach().cpu().numpy()
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"a cost matrix must have shape (N, M), got {cost.shape}")
    if np.isnan(cost).any():
        raise ValueError("the cost matrix holds NaN")
    return cost


def linear_assignment(
    cost: np.ndarray | torch.Tensor, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of rows to columns.

    Args:
        cost: ``(N, M)`` cost matrix (numpy or torch; not modified).
        threshold: pairs with ``cost > threshold`` are never matched; None matches
            ``min(N, M)`` pairs whatever their cost. ``inf`` entries are always forbidden.

    Returns:
        ``matches (K, 2) int64`` (row, column) sorted by row, ``unmatched_rows (N - K,) int64``,
        ``unmatched_cols (M - K,) int64``.
    """
    c = _as_numpy(cost)
    n, m = c.shape
    if n == 0 or m == 0:
        return (
            np.empty((0, 2), np.int64),
            np.arange(n, dtype=np.int64),
            np.arange(m, dtype=np.int64),
        )
    allowed = np.isfinite(c) if threshold is None else np.isfinite(c) & (c <= threshold)
    if not allowed.any():
        return (
            np.empty((0, 2), np.int64),
            np.arange(n, dtype=np.int64),
            np.arange(m, dtype=np.int64),
        )
    work = c.copy()
    valid = work[allowed]
    # Shift to non-negative costs so that "bigger than every sum of allowed costs" is simple.
    work[allowed] = valid - valid.min()
    forbidden = float(work[allowed].sum()) + 1.0
    work[~allowed] = forbidden
    rows, cols = linear_sum_assignment(work)
    keep = allowed[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    unmatched_rows = np.setdiff1d(np.arange(n), matches[:, 0]).astype(np.int64)
    unmatched_cols = np.setdiff1d(np.arange(m), matches[:, 1]).astype(np.int64)
    return matches, unmatched_rows, unmatched_cols


def hungarian(cost: np.ndarray | torch.Tensor, threshold: float | None = None) -> np.ndarray:
    """The binary assignment matrix A* of :func:`linear_assignment`.

    Args:
        cost: ``(N, M)`` cost matrix.
        threshold: see :func:`linear_assignment`.

    Returns:
        ``(N, M)`` array with 1 at matched pairs, of the same kind as ``cost`` (numpy ``uint8``
        or a ``float32`` tensor on ``cost``'s device).
    """
    matches, _, _ = linear_assignment(cost, threshold)
    shape = tuple(cost.shape)
    out = np.zeros(shape, dtype=np.uint8)
    out[matches[:, 0], matches[:, 1]] = 1
    if isinstance(cost, torch.Tensor):
        return torch.from_numpy(out).to(device=cost.device, dtype=torch.float32)
    return out


def hungarian_batch(
    costs: Sequence[np.ndarray | torch.Tensor] | torch.Tensor,
    thresholds: float | Sequence[float | None] | None = None,
    mask: torch.Tensor | None = None,
) -> list[np.ndarray | torch.Tensor] | torch.Tensor:
    """:func:`hungarian` over several matrices.

    Args:
        costs: a list of ``(N_i, M_i)`` matrices, or a padded ``(B, N, M)`` tensor.
        thresholds: one threshold for all, or one per matrix (None = no threshold).
        mask: with a padded tensor, ``(B, N, M) bool`` marking the valid top-left block of each
            matrix; padding is never matched.

    Returns:
        A list of A* for a list, or a ``(B, N, M) float32`` tensor for a padded tensor.
    """
    n_items = len(costs)
    if thresholds is None or isinstance(thresholds, (int, float)):
        thresholds = [thresholds] * n_items
    if len(thresholds) != n_items:
        raise ValueError(f"got {len(thresholds)} thresholds for {n_items} matrices")
    if isinstance(costs, torch.Tensor):
        if costs.ndim != 3:
            raise ValueError(f"a padded batch must have shape (B, N, M), got {tuple(costs.shape)}")
        out = torch.zeros_like(costs, dtype=torch.float32)
        for b in range(n_items):
            if mask is None:
                n, m = costs.shape[1:]
            else:
                n, m = int(mask[b].any(1).sum()), int(mask[b].any(0).sum())
            out[b, :n, :m] = hungarian(costs[b, :n, :m], thresholds[b])
        return out
    return [hungarian(c, t) for c, t in zip(costs, thresholds, strict=True)]
