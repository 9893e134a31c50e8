"""How well a soft assignment approximates the Hungarian one (paper eq. 10, supplementary B).

- **Discretisation**: *row-wise maximum* keeps, in each row, the largest entry if it exceeds
  0.5; *column-wise maximum* does the same per column.
- **WA** (eq. 10) with ``w0 = n1 / (n0 + n1)``, ``w1 = 1 - w0``:
  ``(w1 n1* + w0 n0*) / (w1 n1 + w0 n0)`` where ``n1*``/``n0*`` count the correctly predicted
  ones/zeros, i.e. the mean of the recalls of ones and zeros. A matrix without ones (or
  without zeros) has an undefined weighting; its WA is the plain accuracy. WA is computed per
  matrix and averaged.
- **MA** / **SA**, counted over columns for the row-wise maximum and over rows for the
  column-wise maximum (the supplementary's "rows/columns ... respectively"): a line is a
  *missing assignment* when it has no assignment in Ā but one in A* or the other way round,
  and a *several assignments* line when it has more than one in Ā. Reported as percentages
  of all such lines.
- **Exact match**: the share of matrices whose Ā equals A*.

NOTES.md: the no-learning rule Â = 1 − D already scores WA ≈ 95% on real matrices, so every
report carries the same figures for that rule (:func:`one_minus_d`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MODES",
    "Counts",
    "discretize",
    "matrix_counts",
    "one_minus_d",
    "evaluate",
    "summarize",
]

MODES = ("row", "col")


def discretize(a_soft: Tensor | np.ndarray, mode: str, threshold: float = 0.5) -> np.ndarray:
    """Ā from Â by row-wise (``"row"``) or column-wise (``"col"``) maximum.

    Args:
        a_soft: ``(N, M)`` soft assignment.
        mode: ``"row"`` or ``"col"``.
        threshold: an entry must exceed it to be kept.

    Returns:
        ``(N, M) bool``. Ties keep the first maximum.
    """
    a = a_soft.detach().cpu().numpy() if isinstance(a_soft, Tensor) else np.asarray(a_soft)
    if mode not in MODES:
        raise ValueError(f"mode must be 'row' or 'col', got {mode!r}")
    out = np.zeros(a.shape, dtype=bool)
    if a.size == 0:
        return out
    if mode == "row":
        j = a.argmax(1)
        i = np.arange(a.shape[0])
    else:
        i = a.argmax(0)
        j = np.arange(a.shape[1])
    keep = a[i, j] > threshold
    out[i[keep], j[keep]] = True
    return out


@dataclass
class Counts:
    """Counts of one or more matrices for one discretisation mode."""

    wa_sum: float = 0.0
    matrices: int = 0
    exact: int = 0
    missing: int = 0
    several: int = 0
    lines: int = 0

    def add(self, other: Counts) -> None:
        self.wa_sum += other.wa_sum
        self.matrices += other.matrices
        self.exact += other.exact
        self.missing += other.missing
        self.several += other.several
        self.lines += other.lines

    def ratios(self) -> dict[str, float]:
        """WA, MA, SA and exact match in percent."""
        m, lines = max(self.matrices, 1), max(self.lines, 1)
        return {
            "WA": 100 * self.wa_sum / m,
            "MA": 100 * self.missing / lines,
            "SA": 100 * self.several / lines,
            "exact": 100 * self.exact / m,
        }


def weighted_accuracy(a_bar: np.ndarray, a_star: np.ndarray) -> float:
    """WA (eq. 10) of one discrete ``(N, M)`` prediction against A*, in [0, 1]."""
    t = a_star.astype(bool)
    n1, n0 = int(t.sum()), int((~t).sum())
    c1, c0 = int((a_bar & t).sum()), int((~a_bar & ~t).sum())
    if n1 == 0 or n0 == 0:
        return (c0 + c1) / max(n0 + n1, 1)
    w0 = n1 / (n0 + n1)
    w1 = 1 - w0
    return (w1 * c1 + w0 * c0) / (w1 * n1 + w0 * n0)


def matrix_counts(a_soft: Tensor | np.ndarray, a_star: Tensor | np.ndarray, mode: str) -> Counts:
    """Counts of one ``(N, M)`` soft assignment against its ``(N, M)`` A*."""
    a_bar = discretize(a_soft, mode)
    t = a_star.detach().cpu().numpy() if isinstance(a_star, Tensor) else np.asarray(a_star)
    t = t > 0.5
    axis = 0 if mode == "row" else 1  # row-wise max: count columns; column-wise: rows
    pred_lines = a_bar.sum(axis)
    true_lines = t.sum(axis)
    return Counts(
        wa_sum=weighted_accuracy(a_bar, t),
        matrices=1,
        exact=int(np.array_equal(a_bar, t)),
        missing=int(((pred_lines > 0) != (true_lines > 0)).sum()),
        several=int((pred_lines > 1).sum()),
        lines=int(pred_lines.size),
    )


def one_minus_d(d: Tensor, mask: Tensor | None = None) -> Tensor:
    """The no-learning rule Â = clamp(1 − D, 0, 1) (0 on padding).

    Args:
        d: ``(B, N, M)`` or ``(N, M)``; mask: same shape, bool, or None.
    """
    out = (1 - d).clamp(0, 1)
    return out if mask is None else out.masked_fill(~mask, 0.0)


def evaluate(
    predict: Callable[[Tensor, Tensor], Tensor],
    batches: Iterable[tuple[Tensor, Tensor, Tensor]],
    group: Callable[[int, int], object] | None = None,
) -> dict[object, dict[str, Counts]]:
    """Counts of a predictor over padded batches.

    Args:
        predict: ``(D (B, N, M), mask (B, N, M)) -> Â (B, N, M)``.
        batches: ``(D, A*, mask)`` padded batches (see :func:`deepmot.data.dhn_dataset.collate`).
        group: maps a matrix's ``(N, M)`` to a group key (e.g. its size); None: one group
            ``"all"``.

    Returns:
        ``{group: {"row": Counts, "col": Counts}}``.
    """
    result: dict[object, dict[str, Counts]] = {}
    with torch.no_grad():
        for d, a, mask in batches:
            a_soft = predict(d, mask).cpu()
            mask = mask.cpu()
            a = a.cpu()
            for b in range(d.shape[0]):
                n, m = int(mask[b].any(1).sum()), int(mask[b].any(0).sum())
                key = "all" if group is None else group(n, m)
                counts = result.setdefault(key, {mode: Counts() for mode in MODES})
                for mode in MODES:
                    counts[mode].add(matrix_counts(a_soft[b, :n, :m], a[b, :n, :m], mode))
    return result


def summarize(counts: dict[str, Counts]) -> dict[str, dict[str, float]]:
    """``{"row": {"WA": .., "MA": .., "SA": .., "exact": ..}, "col": {...}}`` in percent."""
    return {mode: c.ratios() for mode, c in counts.items()}
