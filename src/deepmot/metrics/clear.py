"""CLEAR MOT measures: MOTA, MOTP, FP, FN, IDSW, Frag, MT/PT/ML, recall and precision.

Definitions follow the MOTChallenge devkit and TrackEval (the reference), which agree:

- In every frame, gt and tracker boxes are matched one-to-one by an exact assignment
  (:func:`scipy.optimize.linear_sum_assignment`) among pairs with IoU >= 0.5. The assignment
  first keeps the pairs that were matched in the previous frame that had both gt and tracker
  boxes (a bonus of 1000 per kept pair), then maximises the summed IoU.
- **ID switch** (the devkit's and TrackEval's definition): a gt object matched to tracker id
  ``b`` counts one IDSW when the last time it was matched, *any number of frames earlier*, it
  was matched to another tracker id ``a``. py-motmetrics counts differently (it compares with
  the last frame the object was tracked in its own bookkeeping and also counts transfers), so
  its IDSW can differ from these on the same files.
- **Frag**: the number of times a gt trajectory resumes being matched after an interruption,
  frames with no gt or no tracker box at all not interrupting it (as in the reference).
- MT/PT/ML: objects matched in more than 80% / at least 20% / less than 20% of their frames.
- MOTP is the mean IoU of the matches (so higher is better), MOTA =
  ``1 - (FN + FP + IDSW) / num_gt``.

Everything but the assignment of frames where two candidate pairs compete for a box is
vectorised over the whole sequence; in frames where the pairs with IoU >= 0.5 already form a
one-to-one matching, that matching is the optimum and no solver runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from deepmot.metrics._base import EPS, MetricFamily, Result, SequenceData, frames_among
from deepmot.metrics._lsa import linear_sum_assignment

__all__ = ["CLEAR", "ClearMatches", "clear_matches"]


@dataclass(frozen=True)
class ClearMatches:
    """The CLEAR matching of one sequence.

    Attributes:
        pairs: ``(K,)`` indices into the sequence's pairs of the matched (gt, tracker) boxes,
            sorted by frame then gt row.
        is_idsw: ``(K,) bool``, whether the match is an ID switch.
        prev_tracker_row: ``(K,)`` for an ID switch, the tracker row the gt object was last
            matched to; -1 elsewhere.
    """

    pairs: np.ndarray
    is_idsw: np.ndarray
    prev_tracker_row: np.ndarray


def _previous_active(active: np.ndarray) -> np.ndarray:
    """For each frame, the last earlier frame that is ``active`` (-1 if none)."""
    idx = np.where(active, np.arange(len(active)), -1)
    last = np.maximum.accumulate(np.concatenate(([-1], idx)))
    return last[:-1]


def _unmatched(count: int, matched: np.ndarray) -> np.ndarray:
    """The rows ``0..count-1`` not in ``matched``, ascending (``np.setdiff1d`` without its
    ``np.unique``, whose first call imports ``numpy.ma``)."""
    free = np.ones(count, dtype=bool)
    free[matched] = False
    return np.flatnonzero(free)


class CLEAR(MetricFamily):
    """CLEAR MOT measures with the reference's (TrackEval's) fields and combination.

    Args:
        threshold: the IoU a match needs (MOTChallenge: 0.5).
    """

    name = "clear"
    integer_fields = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames")
    float_fields = (
        "MOTA",
        "MOTP",
        "MODA",
        "CLR_Re",
        "CLR_Pr",
        "MTR",
        "PTR",
        "MLR",
        "sMOTA",
        "CLR_F1",
        "FP_per_frame",
        "MOTAL",
        "MOTP_sum",
    )
    summary_fields = (
        "MOTA",
        "MOTP",
        "CLR_Re",
        "CLR_Pr",
        "CLR_FP",
        "CLR_FN",
        "IDSW",
        "Frag",
        "MT",
        "PT",
        "ML",
    )

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
        self.threshold = float(threshold)

    # ----------------------------------------------------------------------- matching

    def match(self, data: SequenceData) -> ClearMatches:
        """The frame-by-frame matching of gt and tracker boxes, with ID switches marked."""
        sim = data.pair_sim
        candidates = np.flatnonzero(sim >= self.threshold - EPS)
        cand_gt = data.pair_gt[candidates]
        cand_tr = data.pair_tracker[candidates]
        gt_degree = np.bincount(cand_gt, minlength=data.num_gt_dets)
        tr_degree = np.bincount(cand_tr, minlength=data.num_tracker_dets)
        contested = (gt_degree[cand_gt] > 1) | (tr_degree[cand_tr] > 1)
        cand_frames = data.gt_frames[cand_gt]
        hard_frames, in_hard = frames_among(cand_frames, contested, data.num_frames)
        # matched[c]: whether candidate c is a match (known already in frames without
        # competition); then two extra slots: "no candidate" (always False) and a bin
        matched = np.concatenate((~in_hard, [False, False]))

        if hard_frames.size:
            # A pair scores its IoU, plus 1000 where the gt object keeps the tracker id it was
            # matched to in the previous active frame (frames with gt and tracker boxes): where
            # that frame's candidate of the same (gt id, tracker id) is a match.
            active = (data.gt_offsets[1:] > data.gt_offsets[:-1]) & (
                data.tracker_offsets[1:] > data.tracker_offsets[:-1]
            )
            prev_active = _previous_active(active)
            key = data.gt_ids[cand_gt] * np.int64(data.num_tracker_ids) + data.tracker_ids[cand_tr]
            order = np.lexsort((cand_frames, key))
            follows = (key[order][1:] == key[order][:-1]) & (
                cand_frames[order][:-1] == prev_active[cand_frames[order][1:]]
            )
            previous = np.full(len(candidates), len(candidates), dtype=np.int64)  # none: False
            previous[order[1:][follows]] = order[:-1][follows]
            # index -1 (no pair) and pairs below the threshold point at a slot nobody reads
            candidate_of_pair = np.full(len(sim) + 1, len(candidates) + 1, dtype=np.int64)
            candidate_of_pair[candidates] = np.arange(len(candidates))
            cells = data.pair_cell[candidates]
            keeps = -(1000 + sim[candidates])  # the cost of a candidate that keeps its id
            first = np.searchsorted(cand_frames, hard_frames).tolist()
            stop = np.searchsorted(cand_frames, hard_frames, side="right").tolist()
            costs = -np.where(sim >= self.threshold - EPS, sim, 0.0)
            for k, (_, cost, index) in enumerate(data.frame_blocks(hard_frames, costs)):
                kept = first[k] + matched[previous[first[k] : stop[k]]].nonzero()[0]
                cost.ravel()[cells[kept]] = keeps[kept]
                matched[candidate_of_pair[index[linear_sum_assignment(cost)]]] = True

        pairs = candidates[matched[: len(candidates)]]
        gt_ids = data.gt_ids[data.pair_gt[pairs]]
        tr_rows = data.pair_tracker[pairs]
        order = np.argsort(gt_ids, kind="stable")  # pairs are in frame order already
        same_object = gt_ids[order][1:] == gt_ids[order][:-1]
        switched = same_object & (
            data.tracker_ids[tr_rows[order]][1:] != data.tracker_ids[tr_rows[order]][:-1]
        )
        is_idsw = np.zeros(len(pairs), dtype=bool)
        is_idsw[order[1:]] = switched
        prev_row = np.full(len(pairs), -1, dtype=np.int64)
        prev_row[order[1:][switched]] = tr_rows[order[:-1][switched]]
        return ClearMatches(pairs=pairs, is_idsw=is_idsw, prev_tracker_row=prev_row)

    # ----------------------------------------------------------------------- counts

    def eval_sequence(self, data: SequenceData) -> Result:
        res = self._empty()
        if data.num_tracker_dets == 0:  # the reference's early exits, kept as they are
            res.update(CLR_FN=data.num_gt_dets, ML=data.num_gt_ids, MLR=1.0)
            return res
        if data.num_gt_dets == 0:
            res.update(CLR_FP=data.num_tracker_dets, MLR=1.0)
            return res
        return self._counts(data, self.match(data))

    def eval_sequence_with_events(self, data: SequenceData) -> tuple[Result, dict[str, np.ndarray]]:
        """``eval_sequence`` and the per-frame FP/FN/IDSW events (see :meth:`events`)."""
        if data.num_tracker_dets == 0 or data.num_gt_dets == 0:
            matches = ClearMatches(*(np.zeros(0, dtype=t) for t in (np.int64, bool, np.int64)))
            return self.eval_sequence(data), self.events(data, matches)
        matches = self.match(data)
        return self._counts(data, matches), self.events(data, matches)

    def _empty(self) -> Result:
        res: Result = {f: 0 for f in self.integer_fields}
        res.update({f: 0.0 for f in self.float_fields})
        return res

    def _counts(self, data: SequenceData, matches: ClearMatches) -> Result:
        pairs = matches.pairs
        gt_ids = data.gt_ids[data.pair_gt[pairs]]
        frames = data.gt_frames[data.pair_gt[pairs]]
        sims = data.pair_sim[pairs]

        # Frag: runs of matches over consecutive "active" frames (frames with gt and tracker boxes).
        n_gt = np.diff(data.gt_offsets)
        n_tr = np.diff(data.tracker_offsets)
        active_rank = np.cumsum((n_gt > 0) & (n_tr > 0)) - 1
        order = np.argsort(gt_ids, kind="stable")
        g, k = gt_ids[order], active_rank[frames[order]]
        continues = (g[1:] == g[:-1]) & (k[1:] == k[:-1] + 1)
        runs = len(pairs) - int(np.count_nonzero(continues))

        gt_count = np.bincount(data.gt_ids, minlength=data.num_gt_ids)
        matched_count = np.bincount(gt_ids, minlength=data.num_gt_ids)
        tracked_objects = int(np.count_nonzero(matched_count))
        present = gt_count > 0
        ratio = matched_count[present] / gt_count[present]
        mt = int(np.count_nonzero(ratio > 0.8))
        pt = int(np.count_nonzero(ratio >= 0.2)) - mt

        # MOTP_sum: per-frame sums, then a running sum over frames (the reference's order).
        frame_sums = np.bincount(frames, weights=sims, minlength=data.num_frames)
        motp_sum = float(np.cumsum(frame_sums)[-1]) if len(frame_sums) else 0.0

        tp = len(pairs)
        res = self._empty()
        res.update(
            CLR_TP=tp,
            CLR_FN=data.num_gt_dets - tp,
            CLR_FP=data.num_tracker_dets - tp,
            IDSW=int(np.count_nonzero(matches.is_idsw)),
            MT=mt,
            PT=pt,
            ML=data.num_gt_ids - mt - pt,
            Frag=runs - tracked_objects,
            CLR_Frames=data.num_frames,
            MOTP_sum=motp_sum,
        )
        return self._final(res)

    def combine_sequences(self, results: Mapping[str, Result]) -> Result:
        res = self._empty()
        for field in (*self.integer_fields, "MOTP_sum"):
            res[field] = self._sum(results, field)
        return self._final(res)

    @staticmethod
    def _final(res: Result) -> Result:
        """Ratios from the counts (the reference's formulas, in its order)."""
        tp, fn, fp, idsw = res["CLR_TP"], res["CLR_FN"], res["CLR_FP"], res["IDSW"]
        num_gt_ids = res["MT"] + res["ML"] + res["PT"]
        num_gt = max(1.0, tp + fn)
        res["MTR"] = res["MT"] / max(1.0, num_gt_ids)
        res["MLR"] = res["ML"] / max(1.0, num_gt_ids)
        res["PTR"] = res["PT"] / max(1.0, num_gt_ids)
        res["CLR_Re"] = tp / num_gt
        res["CLR_Pr"] = tp / max(1.0, tp + fp)
        res["MODA"] = (tp - fp) / num_gt
        res["MOTA"] = (tp - fp - idsw) / num_gt
        res["MOTP"] = res["MOTP_sum"] / max(1.0, tp)
        res["sMOTA"] = (res["MOTP_sum"] - fp - idsw) / num_gt
        res["CLR_F1"] = tp / max(1.0, tp + 0.5 * fn + 0.5 * fp)
        res["FP_per_frame"] = fp / max(1.0, res["CLR_Frames"])
        log_idsw = math.log10(idsw) if idsw > 0 else idsw
        res["MOTAL"] = (tp - fp - log_idsw) / num_gt
        return res

    # ----------------------------------------------------------------------- events

    @staticmethod
    def events(data: SequenceData, matches: ClearMatches) -> dict[str, np.ndarray]:
        """Per-frame FP, FN and IDSW events, sorted by frame.

        Returns columns ``frame`` (1-based), ``type`` (``"FP"``, ``"FN"`` or ``"IDSW"``),
        ``gt_id`` and ``tracker_id`` (ids as in the files, -1 where none),
        ``prev_tracker_id`` (for an IDSW, the id the object had before; else -1) and ``iou``
        (of the match for an IDSW; NaN elsewhere).
        """
        pairs = matches.pairs
        gt_rows, tr_rows = data.pair_gt[pairs], data.pair_tracker[pairs]
        fn_rows = _unmatched(data.num_gt_dets, gt_rows)
        fp_rows = _unmatched(data.num_tracker_dets, tr_rows)
        sw = np.flatnonzero(matches.is_idsw)
        n_fn, n_fp, n_sw = len(fn_rows), len(fp_rows), len(sw)
        none = np.full(max(n_fn, n_fp), -1, dtype=np.int64)
        frame = np.concatenate(
            (data.gt_frames[fn_rows], data.tracker_frames[fp_rows], data.gt_frames[gt_rows[sw]])
        )
        kind = np.array(["FN"] * n_fn + ["FP"] * n_fp + ["IDSW"] * n_sw, dtype="<U4")
        gt_id = np.concatenate(
            (data.gt_orig_ids[fn_rows], none[:n_fp], data.gt_orig_ids[gt_rows[sw]])
        )
        tracker_id = np.concatenate(
            (none[:n_fn], data.tracker_orig_ids[fp_rows], data.tracker_orig_ids[tr_rows[sw]])
        )
        prev = np.concatenate(
            (none[:n_fn], none[:n_fp], data.tracker_orig_ids[matches.prev_tracker_row[sw]])
        )
        iou = np.concatenate((np.full(n_fn + n_fp, np.nan), data.pair_sim[pairs[sw]]))
        order = np.argsort(frame, kind="stable")
        return {
            "frame": frame[order] + 1,
            "type": kind[order],
            "gt_id": gt_id[order],
            "tracker_id": tracker_id[order],
            "prev_tracker_id": prev[order],
            "iou": iou[order],
        }


def clear_matches(
    iou: np.ndarray,
    track_ids: np.ndarray,
    gt_ids: np.ndarray,
    memory: dict[int, int],
    threshold: float = 0.5,
) -> tuple[np.ndarray, int]:
    """The evaluator's matching of one frame (CLEAR MOT, as TrackEval and the devkit), for a
    trainer that rolls tracks out frame by frame (a training clip).

    Pairs below ``threshold`` IoU are never matched; among the rest, pairs that continue an
    object's previous match (``memory``) come first, then IoU (Hungarian).

    Args:
        iou: ``(N, M)`` IoU of the tracks (rows) and the objects (columns).
        track_ids: ``(N,)``; gt_ids: ``(M,)``.
        memory: ``{gt_id: track_id}``, each object's last match (any frame before); updated in
            place with this frame's matches.

    Returns:
        ``matches (K, 2)`` (row, column) and the number of ID switches (matched objects whose
        last match was another track).
    """
    n, m = iou.shape
    if n == 0 or m == 0:
        return np.empty((0, 2), np.int64), 0
    previous = np.array([memory.get(int(g), -(2**62)) for g in gt_ids], dtype=np.int64)
    continuing = np.asarray(track_ids, np.int64)[:, None] == previous[None, :]
    matchable = iou >= threshold - np.finfo(np.float64).eps
    score = np.where(matchable, 1000.0 * continuing + iou, 0.0)
    rows, cols = linear_sum_assignment(-score)
    keep = matchable[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    switches = 0
    for i, j in matches:
        gid, tid = int(gt_ids[j]), int(track_ids[i])
        switches += int(gid in memory and memory[gid] != tid)
        memory[gid] = tid
    return matches, switches
