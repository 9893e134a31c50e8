"""Identity measures: IDF1, IDP, IDR and the counts IDTP, IDFP, IDFN (Ristani et al., 2016).

Each gt trajectory is matched to at most one tracker trajectory, once for the whole sequence,
so as to maximise IDTP, the number of frames in which a matched pair of trajectories overlaps
with IoU >= 0.5 (the reference's threshold, without tolerance). Then
``IDFN = num_gt_boxes - IDTP``, ``IDFP = num_tracker_boxes - IDTP`` and
``IDF1 = IDTP / (IDTP + (IDFP + IDFN) / 2)``.

The reference solves this as a square assignment of size ``num_gt_ids + num_tracker_ids``.
Here the same optimum is found as a maximum-weight bipartite matching on the sparse matrix of
overlap counts, split into its connected components, so that a tracker that emits a new id per
box (tens of thousands of ids) costs no more than one that tracks well.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from deepmot.metrics._base import MetricFamily, Result, SequenceData
from deepmot.metrics._lsa import linear_sum_assignment

__all__ = ["Identity", "connected_components", "max_weight_matching"]


def connected_components(num_nodes: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component label ``(num_nodes,)`` of each node of the undirected graph with edges ``(u, v)``.

    Labels are ``0..k-1``, numbered in order of each component's smallest node. Vectorised
    union-find (hooking onto the smaller root, then pointer jumping), a few NumPy passes
    instead of importing ``scipy.sparse`` (about 0.25 s).
    """
    parent = np.arange(num_nodes)
    u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            break
        pu, pv = pu[differ], pv[differ]
        low = np.minimum(pu, pv)
        np.minimum.at(parent, pu, low)
        np.minimum.at(parent, pv, low)
        while True:  # pointer jumping until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return np.unique(parent, return_inverse=True)[1].reshape(-1)


def max_weight_matching(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> float:
    """Total weight of a maximum-weight bipartite matching of a sparse non-negative matrix.

    Args:
        rows, cols: ``(E,)`` row and column index of each non-zero entry (distinct pairs).
        weights: ``(E,)`` positive weights.

    The matrix is split into connected components; a component with one row or one column is
    solved by its largest entry, the others by :func:`scipy.optimize.linear_sum_assignment`.
    """
    if len(weights) == 0:
        return 0.0
    r_uniq, r = np.unique(rows, return_inverse=True)
    c_uniq, c = np.unique(cols, return_inverse=True)
    n_r, n_c = len(r_uniq), len(c_uniq)
    label = connected_components(n_r + n_c, r, n_r + c)
    comp = label[r]  # component of each entry
    rows_in = np.bincount(label[:n_r], minlength=label.max() + 1)
    cols_in = np.bincount(label[n_r:], minlength=label.max() + 1)
    simple = (rows_in[comp] == 1) | (cols_in[comp] == 1)
    total = 0.0
    if simple.any():  # a star: the best single entry is the optimum
        best = np.full(label.max() + 1, -np.inf)
        np.maximum.at(best, comp[simple], weights[simple])
        total += float(best[np.isfinite(best)].sum())
    hard = np.flatnonzero(~simple)
    if hard.size:
        order = hard[np.argsort(comp[hard], kind="stable")]
        bounds = np.flatnonzero(np.diff(comp[order])) + 1
        for group in np.split(order, bounds):
            gr_uniq, gr = np.unique(r[group], return_inverse=True)
            gc_uniq, gc = np.unique(c[group], return_inverse=True)
            block = np.zeros((len(gr_uniq), len(gc_uniq)))
            block[gr, gc] = weights[group]
            i, j = linear_sum_assignment(block, maximize=True)
            total += float(block[i, j].sum())
    return total


class Identity(MetricFamily):
    """IDF1, IDP, IDR, IDTP, IDFN, IDFP with the reference's fields and combination.

    Args:
        threshold: the IoU at which a pair of boxes counts as overlapping (MOTChallenge: 0.5).
    """

    name = "identity"
    integer_fields = ("IDTP", "IDFN", "IDFP")
    float_fields = ("IDF1", "IDR", "IDP")
    summary_fields = ("IDF1", "IDR", "IDP", "IDTP", "IDFN", "IDFP")

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
        self.threshold = float(threshold)

    def eval_sequence(self, data: SequenceData) -> Result:
        res: Result = {"IDTP": 0, "IDFN": 0, "IDFP": 0}
        if data.num_tracker_dets == 0:
            res["IDFN"] = data.num_gt_dets
            return self._final(res)
        if data.num_gt_dets == 0:
            res["IDFP"] = data.num_tracker_dets
            return self._final(res)
        overlap = np.flatnonzero(data.pair_sim >= self.threshold)
        key = (
            data.gt_ids[data.pair_gt[overlap]] * np.int64(data.num_tracker_ids)
            + data.tracker_ids[data.pair_tracker[overlap]]
        )
        keys, counts = np.unique(key, return_counts=True)
        idtp = max_weight_matching(
            keys // data.num_tracker_ids, keys % data.num_tracker_ids, counts
        )
        idtp = int(round(idtp))
        res.update(
            IDTP=idtp,
            IDFN=data.num_gt_dets - idtp,
            IDFP=data.num_tracker_dets - idtp,
        )
        return self._final(res)

    def combine_sequences(self, results: Mapping[str, Result]) -> Result:
        return self._final({f: self._sum(results, f) for f in self.integer_fields})

    @staticmethod
    def _final(res: Result) -> Result:
        idtp, idfn, idfp = res["IDTP"], res["IDFN"], res["IDFP"]
        res["IDR"] = idtp / max(1.0, idtp + idfn)
        res["IDP"] = idtp / max(1.0, idtp + idfp)
        res["IDF1"] = idtp / max(1.0, idtp + 0.5 * idfp + 0.5 * idfn)
        return res
