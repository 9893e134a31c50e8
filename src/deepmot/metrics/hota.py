"""HOTA measures (Luiten et al., IJCV 2020): HOTA, DetA, AssA, LocA, DetRe/DetPr, AssRe/AssPr.

As in the reference (TrackEval):

1. Every pair of gt and tracker ids gets a global alignment score: the sum over frames of the
   pair's IoU normalised by the IoUs its two boxes have with all other boxes of that frame,
   divided by (frames of the gt id + frames of the tracker id - that sum).
2. In each frame, boxes are matched one-to-one maximising (alignment score x IoU).
3. For each localisation threshold alpha in 0.05, 0.10, ..., 0.95, matches with IoU >= alpha
   are true positives; DetA = TP / (TP + FN + FP), AssA averages over true positives the
   Jaccard index of the pair's trajectories, HOTA = sqrt(DetA * AssA), and LocA is the mean IoU
   of the true positives. Summary numbers are the means over the 19 alphas.

Per-alpha fields are float64 arrays of length 19. Frames whose positive-score pairs already
form a one-to-one matching need no solver: their matching is that set.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from deepmot.metrics._base import EPS, MetricFamily, Result, SequenceData, frames_among, relabel
from deepmot.metrics._lsa import linear_sum_assignment

__all__ = ["ALPHAS", "HOTA"]

#: The localisation thresholds, built exactly as the reference builds them.
ALPHAS: np.ndarray = np.arange(0.05, 0.99, 0.05)


class HOTA(MetricFamily):
    """HOTA and its sub-measures per alpha, with the reference's fields and combination."""

    name = "hota"
    float_array_fields = (
        "HOTA",
        "DetA",
        "AssA",
        "DetRe",
        "DetPr",
        "AssRe",
        "AssPr",
        "LocA",
        "OWTA",
    )
    integer_array_fields = ("HOTA_TP", "HOTA_FN", "HOTA_FP")
    float_fields = ("HOTA(0)", "LocA(0)", "HOTALocA(0)")
    integer_fields = ()
    summary_fields = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")

    def _empty(self) -> Result:
        res: Result = {
            f: np.zeros(len(ALPHAS)) for f in self.float_array_fields + self.integer_array_fields
        }
        res.update({f: 0.0 for f in self.float_fields})
        return res

    def match(self, data: SequenceData) -> np.ndarray:
        """Indices of the pairs matched by the per-frame HOTA assignment, in pair order."""
        sim = data.pair_sim
        g_rows, t_rows = data.pair_gt, data.pair_tracker
        gt_ids, tr_ids = data.gt_ids[g_rows], data.tracker_ids[t_rows]

        # Step 1: global alignment scores of the id pairs that ever share a frame.
        row_sum = np.bincount(g_rows, weights=sim, minlength=data.num_gt_dets)
        col_sum = np.bincount(t_rows, weights=sim, minlength=data.num_tracker_dets)
        denom = col_sum[t_rows] + row_sum[g_rows] - sim
        ok = denom > EPS
        sim_iou = np.zeros_like(sim)
        sim_iou[ok] = sim[ok] / denom[ok]
        key = gt_ids * np.int64(data.num_tracker_ids) + tr_ids
        keys, key_of_pair = relabel(key)
        potential = np.bincount(key_of_pair, weights=sim_iou, minlength=len(keys))
        gt_count = np.bincount(data.gt_ids, minlength=data.num_gt_ids).astype(np.float64)
        tr_count = np.bincount(data.tracker_ids, minlength=data.num_tracker_ids).astype(np.float64)
        key_gt, key_tr = keys // data.num_tracker_ids, keys % data.num_tracker_ids
        alignment = potential / (gt_count[key_gt] + tr_count[key_tr] - potential)
        score = alignment[key_of_pair] * sim

        # Step 2: per-frame assignment; solver only where positive pairs compete for a box.
        positive = np.flatnonzero(score > 0)
        gt_degree = np.bincount(g_rows[positive], minlength=data.num_gt_dets)
        tr_degree = np.bincount(t_rows[positive], minlength=data.num_tracker_dets)
        contested = (gt_degree[g_rows[positive]] > 1) | (tr_degree[t_rows[positive]] > 1)
        pos_frames = data.gt_frames[g_rows[positive]]
        hard_frames, in_hard = frames_among(pos_frames, contested, data.num_frames)
        matched = [positive[~in_hard]]
        for _, block, index in data.frame_blocks(hard_frames, -score):
            matched.append(index[linear_sum_assignment(block)])
        pairs = np.sort(np.concatenate(matched))
        return pairs[pairs >= 0]  # -1: entries without a pair (IoU 0), never true positives

    def eval_sequence(self, data: SequenceData) -> Result:
        res = self._empty()
        n_alpha = len(ALPHAS)
        if data.num_tracker_dets == 0:  # the reference's early exits
            res["HOTA_FN"] = data.num_gt_dets * np.ones(n_alpha)
            res["LocA"] = np.ones(n_alpha)
            res["LocA(0)"] = 1.0
            return res
        if data.num_gt_dets == 0:
            res["HOTA_FP"] = data.num_tracker_dets * np.ones(n_alpha)
            res["LocA"] = np.ones(n_alpha)
            res["LocA(0)"] = 1.0
            return res

        pairs = self.match(data)
        sims = data.pair_sim[pairs]
        gt_ids = data.gt_ids[data.pair_gt[pairs]]
        tr_ids = data.tracker_ids[data.pair_tracker[pairs]]
        keys, key_of_match = relabel(gt_ids * np.int64(data.num_tracker_ids) + tr_ids)
        gt_count = np.bincount(data.gt_ids, minlength=data.num_gt_ids)
        tr_count = np.bincount(data.tracker_ids, minlength=data.num_tracker_ids)
        key_gt_count = gt_count[keys // data.num_tracker_ids]
        key_tr_count = tr_count[keys % data.num_tracker_ids]

        # A match is a true positive for the first ``passes`` alphas (IoU >= alpha - eps), so
        # per-alpha sums are suffix sums of histograms over ``passes``: O(matches), no
        # (alpha x matches) arrays.
        passes = np.searchsorted(ALPHAS - EPS, sims, side="right")
        n_keys = len(keys)

        def above(hist: np.ndarray) -> np.ndarray:
            """``out[..., a] = sum of hist[..., j] for j > a``, for a in 0..n_alpha-1."""
            return np.cumsum(hist[..., ::-1], axis=-1)[..., ::-1][..., 1:]

        tp = above(np.bincount(passes, minlength=n_alpha + 1)).astype(np.float64)
        loc_sum = above(np.bincount(passes, weights=sims, minlength=n_alpha + 1))
        per_key = np.bincount(
            key_of_match * (n_alpha + 1) + passes, minlength=n_keys * (n_alpha + 1)
        )
        counts = above(per_key.reshape(n_keys, n_alpha + 1)).T.astype(np.float64)
        ass_a = counts / np.maximum(1, key_gt_count + key_tr_count - counts)
        ass_re = counts / np.maximum(1, key_gt_count)
        ass_pr = counts / np.maximum(1, key_tr_count)
        denom = np.maximum(1, tp)
        res["AssA"] = (counts * ass_a).sum(axis=1) / denom
        res["AssRe"] = (counts * ass_re).sum(axis=1) / denom
        res["AssPr"] = (counts * ass_pr).sum(axis=1) / denom
        res["HOTA_TP"] = tp
        res["HOTA_FN"] = data.num_gt_dets - tp
        res["HOTA_FP"] = data.num_tracker_dets - tp
        res["LocA"] = np.maximum(1e-10, loc_sum) / np.maximum(1e-10, tp)
        return self._final(res)

    def combine_sequences(self, results: Mapping[str, Result]) -> Result:
        res = self._empty()
        for field in self.integer_array_fields:
            res[field] = self._sum(results, field)
        tp = res["HOTA_TP"]
        for field in ("AssRe", "AssPr", "AssA"):
            weighted = self._sum(
                {k: {field: r[field] * r["HOTA_TP"]} for k, r in results.items()}, field
            )
            res[field] = weighted / np.maximum(1.0, tp)
        loc = self._sum({k: {"LocA": r["LocA"] * r["HOTA_TP"]} for k, r in results.items()}, "LocA")
        res["LocA"] = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
        return self._final(res)

    @staticmethod
    def _final(res: Result) -> Result:
        tp, fn, fp = res["HOTA_TP"], res["HOTA_FN"], res["HOTA_FP"]
        res["DetRe"] = tp / np.maximum(1, tp + fn)
        res["DetPr"] = tp / np.maximum(1, tp + fp)
        res["DetA"] = tp / np.maximum(1, tp + fn + fp)
        res["HOTA"] = np.sqrt(res["DetA"] * res["AssA"])
        res["OWTA"] = np.sqrt(res["DetRe"] * res["AssA"])
        res["HOTA(0)"] = float(res["HOTA"][0])
        res["LocA(0)"] = float(res["LocA"][0])
        res["HOTALocA(0)"] = res["HOTA(0)"] * res["LocA(0)"]
        return res
