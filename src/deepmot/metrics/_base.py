"""What every metric family shares: the per-sequence data layout, box IoU and the base class.

A :class:`SequenceData` is one sequence after MOTChallenge preprocessing (see
:mod:`deepmot.metrics.evaluate`). Rows are stored frame by frame (CSR layout: ``*_offsets``
give each frame's slice), and every (gt, tracker) pair of boxes that overlap in a frame
(IoU > 0) is stored once with its IoU, sorted by gt row then tracker row, so by frame too.
Whole-sequence work is plain array arithmetic over those pairs; only the assignments that
really need it build a frame's dense matrix (:meth:`SequenceData.frame_block`).

This module, like the whole :mod:`deepmot.metrics` package, uses only NumPy and SciPy (no
torch), so that ``deepmot eval`` starts fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

__all__ = [
    "EPS",
    "MetricFamily",
    "Result",
    "SequenceData",
    "box_corners",
    "box_iou_xywh",
    "frames_among",
    "overlapping_pairs",
    "offsets_from_frames",
    "relabel",
]

#: The float tolerance the reference uses around every threshold (``np.finfo(float).eps``).
EPS: float = float(np.finfo(np.float64).eps)

#: The result of one metric family on one sequence or on a combination: field name to a number
#: (Python ``int``/``float``) or, for HOTA's per-alpha fields, a float64 array.
Result = dict[str, "int | float | np.ndarray"]


# --------------------------------------------------------------------------- box IoU


def box_corners(boxes_xywh: np.ndarray) -> tuple[np.ndarray, ...]:
    """``x1, y1, x2, y2, area`` of ``(K, 4)`` ``x, y, w, h`` boxes, area as ``(x2-x1)*(y2-y1)``."""
    x1, y1 = boxes_xywh[:, 0], boxes_xywh[:, 1]
    x2, y2 = x1 + boxes_xywh[:, 2], y1 + boxes_xywh[:, 3]
    return x1, y1, x2, y2, (x2 - x1) * (y2 - y1)


def _iou_from_corners(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> np.ndarray:
    """IoU of corner tuples that broadcast against each other.

    The arithmetic is the MOTChallenge/TrackEval one, operation for operation, so that results
    are bit-identical to the reference and thresholds such as IoU >= 0.5 decide alike. Boxes of
    zero area, or pairs whose union is zero, have IoU 0.
    """
    ax1, ay1, ax2, ay2, area_a = a
    bx1, by1, bx2, by2, area_b = b
    inter_w = np.maximum(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0.0)
    inter_h = np.maximum(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0)
    inter = inter_w * inter_h
    union = area_a + area_b - inter
    degenerate = (area_a <= EPS) | (area_b <= EPS) | (union <= EPS)
    inter = np.where(degenerate, 0.0, inter)
    union = np.where(union <= EPS, 1.0, union)
    return inter / union


def box_iou_xywh(boxes1: np.ndarray, boxes2: np.ndarray, pairwise: bool = True) -> np.ndarray:
    """IoU of ``x, y, w, h`` boxes (MOTChallenge file layout), in float64.

    Args:
        boxes1: ``(N, 4)`` boxes.
        boxes2: ``(M, 4)`` boxes.
        pairwise: if true, return the ``(N, M)`` matrix of all pairs; if false, ``N == M`` and
            the ``(N,)`` IoUs of row ``i`` with row ``i`` are returned.
    """
    b1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    a, b = box_corners(b1), box_corners(b2)
    if pairwise:
        return _iou_from_corners(tuple(v[:, None] for v in a), tuple(v[None, :] for v in b))
    if len(b1) != len(b2):
        raise ValueError(
            f"pairwise=False needs as many boxes1 as boxes2, got {len(b1)} and {len(b2)}"
        )
    return _iou_from_corners(a, b)


# --------------------------------------------------------------------------- frame layout


def frames_among(
    frames: np.ndarray, chosen: np.ndarray, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct 0-based frames of ``frames[chosen]``, ascending, and the mask of the
    elements of ``frames`` that lie in one of them.

    ``np.unique`` and ``np.isin`` in a table of ``num_frames`` flags: linear, and without
    NumPy 2's plain ``np.unique``, whose first call imports ``numpy.ma`` (15 ms of start-up).
    """
    hit = np.zeros(num_frames, dtype=bool)
    hit[frames[chosen]] = True
    return np.flatnonzero(hit), hit[frames]


def relabel(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` of ``(N,)`` integers: the distinct values,
    ascending, and each value's rank among them.

    A table of flags when the values span at most a few times their count (ids and keys of
    id pairs usually do): linear, where ``np.unique`` sorts.
    """
    if values.size:
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * values.size + 1024:
            present = np.zeros(high - low + 1, dtype=bool)
            present[values - low] = True
            return np.flatnonzero(present) + low, (np.cumsum(present) - 1)[values - low]
    return np.unique(values, return_inverse=True)


def offsets_from_frames(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """CSR offsets ``(num_frames + 1,)`` of rows sorted by 0-based ``frames``."""
    counts = np.bincount(frames, minlength=num_frames)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def overlapping_pairs(
    gt_frames: np.ndarray,
    gt_corners: tuple[np.ndarray, ...],
    tracker_frames: np.ndarray,
    tracker_corners: tuple[np.ndarray, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (gt row, tracker row) pairs of the same frame whose boxes overlap (IoU > 0).

    Args:
        gt_frames, tracker_frames: ``(G,)``, ``(T,)`` frames of the rows, non-decreasing.
        gt_corners, tracker_corners: :func:`box_corners` of the rows.

    Returns ``(pair_gt (P,), pair_tracker (P,), iou (P,))`` sorted by gt row, then tracker row.
    Pairs whose IoU is 0 are left out: no measure depends on them (their similarity is 0 in
    every formula and in every assignment matrix). Candidates are found without enumerating
    all pairs: trackers are sorted by (frame, x1), and a gt box can only overlap trackers whose
    x1 lies in ``(gt.x1 - widest tracker of the frame, gt.x2)``, a contiguous range.
    """
    empty = np.zeros(0, dtype=np.int64)
    if len(gt_frames) == 0 or len(tracker_frames) == 0:
        return empty, empty.copy(), np.zeros(0)
    gx1, gx2, tx1, tx2 = gt_corners[0], gt_corners[2], tracker_corners[0], tracker_corners[2]
    lo = min(gx1.min(), tx1.min())
    extent = max(gx2.max(), tx2.max()) - lo
    num_frames = int(max(gt_frames[-1], tracker_frames[-1])) + 1
    pad = 1.0 + 1e-9 * num_frames * (extent + 1.0)  # far above the rounding of the keys
    span = extent + 4.0 * pad  # frame f owns the keys [f * span, f * span + extent]
    key = tracker_frames * span + (tx1 - lo)
    order = np.argsort(key, kind="stable")  # by frame, then x1
    key = key[order]
    widest = np.zeros(num_frames)
    np.maximum.at(widest, tracker_frames, tx2 - tx1)
    base = gt_frames * span
    low = np.maximum(base + (gx1 - lo) - widest[gt_frames] - pad, base - 2.0 * pad)
    high = np.minimum(base + (gx2 - lo) + pad, base + span - 2.0 * pad)
    first = np.searchsorted(key, low)
    stop = np.searchsorted(key, high)
    counts = np.maximum(stop - first, 0)
    pair_gt = np.repeat(np.arange(len(gt_frames)), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    within = np.arange(len(pair_gt)) - np.repeat(starts - first, counts)
    pair_tr = order[within]
    gx1, gy1, gx2, gy2, _ = gt_corners
    tx1, ty1, tx2, ty2, _ = tracker_corners
    # The key ranges never reach into another frame; keep the pairs whose boxes intersect.
    hit = tx2[pair_tr] > gx1[pair_gt]
    pair_gt, pair_tr = pair_gt[hit], pair_tr[hit]
    hit = (ty1[pair_tr] < gy2[pair_gt]) & (ty2[pair_tr] > gy1[pair_gt])
    pair_gt, pair_tr = pair_gt[hit], pair_tr[hit]
    iou = _iou_from_corners(
        tuple(v[pair_gt] for v in gt_corners), tuple(v[pair_tr] for v in tracker_corners)
    )
    keep = iou > 0
    pair_gt, pair_tr, iou = pair_gt[keep], pair_tr[keep], iou[keep]
    # pair_gt is sorted already: a stable sort of this key orders each gt row's few pairs
    sort = np.argsort(pair_gt * np.int64(len(tracker_frames)) + pair_tr, kind="stable")
    return pair_gt[sort], pair_tr[sort], iou[sort]


@dataclass(frozen=True, eq=False)
class SequenceData:
    """One sequence as the metrics see it: preprocessed, ids relabelled 0..n-1, IoUs computed.

    Attributes:
        name: the sequence's name.
        num_frames: ``F``, the number of frames (timesteps) of the sequence.
        gt_frames: ``(G,) int64`` 0-based frame of each gt box, non-decreasing.
        gt_ids: ``(G,) int64`` gt ids relabelled to ``0..num_gt_ids-1`` (in order of the file ids).
        gt_orig_ids: ``(G,) int64`` the ids as in the gt file.
        tracker_frames, tracker_ids, tracker_orig_ids: the same for the tracker boxes.
        gt_offsets, tracker_offsets: ``(F + 1,)`` CSR offsets of the rows of each frame.
        pair_offsets: ``(F + 1,)`` CSR offsets of each frame's pairs.
        pair_gt, pair_tracker: ``(P,)`` gt row and tracker row of each pair of overlapping
            boxes, sorted by gt row then tracker row.
        pair_sim: ``(P,) float64`` IoU of each pair (all > 0).
        num_gt_ids, num_tracker_ids: number of distinct ids left after preprocessing.
    """

    name: str
    num_frames: int
    gt_frames: np.ndarray
    gt_ids: np.ndarray
    gt_orig_ids: np.ndarray
    tracker_frames: np.ndarray
    tracker_ids: np.ndarray
    tracker_orig_ids: np.ndarray
    gt_offsets: np.ndarray
    tracker_offsets: np.ndarray
    pair_offsets: np.ndarray
    pair_gt: np.ndarray
    pair_tracker: np.ndarray
    pair_sim: np.ndarray
    num_gt_ids: int
    num_tracker_ids: int

    @property
    def num_gt_dets(self) -> int:
        return len(self.gt_ids)

    @property
    def num_tracker_dets(self) -> int:
        return len(self.tracker_ids)

    @property
    def pair_frames(self) -> np.ndarray:
        """``(P,)`` 0-based frame of each pair."""
        return self.gt_frames[self.pair_gt]

    def frame_block(
        self, frame: int, values: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``frame``'s dense ``(n_gt, n_tracker)`` matrix of pair ``values`` (default: IoU).

        Returns ``(matrix, index)``: entries of pairs that do not overlap are 0, and ``index``
        holds each entry's pair index (-1 where there is no pair).
        """
        _, matrix, index = next(self.frame_blocks(np.array([frame]), values))
        return matrix, index

    def frame_blocks(
        self, frames: np.ndarray, values: np.ndarray | None = None, max_cells: int = 1 << 17
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(frame, matrix, index)`` of :meth:`frame_block` for each of ``frames`` (distinct,
        ascending), as needed by per-frame assignments (about 20k frames on MOT17's training set).

        The matrices of consecutive frames are filled together, about ``max_cells`` entries at
        a time, into one buffer of which each ``matrix`` is a view: a few NumPy calls per batch
        of frames rather than per frame. A caller may change a matrix in place (no other frame
        sees it).
        """
        values = self.pair_sim if values is None else values
        frames = np.asarray(frames, dtype=np.int64)
        if frames.size == 0:
            return
        n_gt, n_tr = self._gt_counts[frames], self._tracker_counts[frames]
        before = np.cumsum(n_gt * n_tr) - n_gt * n_tr  # each frame's first cell, all frames
        batch = before // max_cells
        cuts = [0, *(np.flatnonzero(batch[1:] != batch[:-1]) + 1).tolist(), len(frames)]
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            first = self.pair_offsets[frames[a:b]]
            counts = self.pair_offsets[frames[a:b] + 1] - first
            start = before[a:b] - before[a]
            within = np.cumsum(counts) - counts
            pairs = np.arange(int(counts.sum())) + np.repeat(first - within, counts)
            cell = np.repeat(start, counts) + self.pair_cell[pairs]
            size = int(before[b - 1] - before[a] + n_gt[b - 1] * n_tr[b - 1])
            matrices = np.zeros(size)
            matrices[cell] = values[pairs]
            indices = np.full(size, -1, dtype=np.int64)
            indices[cell] = pairs
            shapes = zip(n_gt[a:b].tolist(), n_tr[a:b].tolist(), strict=True)
            for frame, s, (n, m) in zip(frames[a:b].tolist(), start.tolist(), shapes, strict=True):
                yield (
                    frame,
                    matrices[s : s + n * m].reshape(n, m),
                    indices[s : s + n * m].reshape(n, m),
                )

    @cached_property
    def _gt_counts(self) -> np.ndarray:
        """``(F,)`` gt boxes per frame."""
        return np.diff(self.gt_offsets)

    @cached_property
    def _tracker_counts(self) -> np.ndarray:
        """``(F,)`` tracker boxes per frame."""
        return np.diff(self.tracker_offsets)

    @cached_property
    def pair_cell(self) -> np.ndarray:
        """``(P,)`` each pair's flat position in its frame's ``(n_gt, n_tracker)`` matrix."""
        frames = self.gt_frames[self.pair_gt]
        rows = self.pair_gt - self.gt_offsets[frames]
        cols = self.pair_tracker - self.tracker_offsets[frames]
        return rows * self._tracker_counts[frames] + cols

    @classmethod
    def from_rows(
        cls,
        name: str,
        num_frames: int,
        gt_frames: np.ndarray,
        gt_ids: np.ndarray,
        gt_boxes_xywh: np.ndarray,
        tracker_frames: np.ndarray,
        tracker_ids: np.ndarray,
        tracker_boxes_xywh: np.ndarray,
    ) -> SequenceData:
        """Build from rows that need no preprocessing (every gt box counts, no distractors).

        Frames are 0-based; rows may come in any order (they are sorted by frame, then id).
        Raises ``ValueError`` if an id occurs twice in one frame or a frame is out of range.
        """
        gt = _sorted_rows(gt_frames, gt_ids, gt_boxes_xywh, num_frames, "gt")
        tr = _sorted_rows(tracker_frames, tracker_ids, tracker_boxes_xywh, num_frames, "tracker")
        return cls.from_sorted(
            name, num_frames, gt[0], gt[1], box_corners(gt[2]), tr[0], tr[1], box_corners(tr[2])
        )

    @classmethod
    def from_sorted(
        cls,
        name: str,
        num_frames: int,
        gt_frames: np.ndarray,
        gt_ids: np.ndarray,
        gt_corners: tuple[np.ndarray, ...],
        tracker_frames: np.ndarray,
        tracker_ids: np.ndarray,
        tracker_corners: tuple[np.ndarray, ...],
        pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> SequenceData:
        """Assemble from rows sorted by (0-based) frame then id, relabelling the ids.

        ``*_corners`` are :func:`box_corners` of the boxes; ``pairs`` (``pair_gt``,
        ``pair_tracker``, ``iou``) are computed by :func:`overlapping_pairs` unless given.
        """
        if pairs is None:
            pairs = overlapping_pairs(gt_frames, gt_corners, tracker_frames, tracker_corners)
        pair_gt, pair_tr, sim = pairs
        gt_uniq, gt_new = relabel(gt_ids)
        tr_uniq, tr_new = relabel(tracker_ids)
        return cls(
            name=name,
            num_frames=int(num_frames),
            gt_frames=gt_frames,
            gt_ids=gt_new.astype(np.int64),
            gt_orig_ids=gt_ids,
            tracker_frames=tracker_frames,
            tracker_ids=tr_new.astype(np.int64),
            tracker_orig_ids=tracker_ids,
            gt_offsets=offsets_from_frames(gt_frames, num_frames),
            tracker_offsets=offsets_from_frames(tracker_frames, num_frames),
            pair_offsets=offsets_from_frames(gt_frames[pair_gt], num_frames),
            pair_gt=pair_gt,
            pair_tracker=pair_tr,
            pair_sim=sim,
            num_gt_ids=len(gt_uniq),
            num_tracker_ids=len(tr_uniq),
        )


def _sorted_rows(
    frames: np.ndarray, ids: np.ndarray, boxes: np.ndarray, num_frames: int, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(frames) == len(ids) == len(boxes):
        raise ValueError(f"{what}: frames, ids and boxes differ in length")
    if len(frames) and (frames.min() < 0 or frames.max() >= num_frames):
        raise ValueError(f"{what}: frames must lie in 0..{num_frames - 1}")
    order = np.lexsort((ids, frames))
    frames, ids, boxes = frames[order], ids[order], boxes[order]
    dup = np.flatnonzero((frames[1:] == frames[:-1]) & (ids[1:] == ids[:-1]))
    if dup.size:
        raise ValueError(f"{what}: id {ids[dup[0]]} occurs twice in frame {frames[dup[0]]}")
    return frames, ids, boxes


# --------------------------------------------------------------------------- base class


class MetricFamily(ABC):
    """One family of measures (CLEAR, Identity, HOTA) with the reference's interface.

    ``eval_sequence`` computes the integer counts (and sums) of one sequence and then the
    ratios; ``combine_sequences`` adds the counts of several sequences exactly as the
    reference does and computes the ratios last. Field names are the reference's (TrackEval),
    so that summaries can be compared column by column.
    """

    #: Short name used on the command line and in summaries.
    name: ClassVar[str]
    #: Fields holding counts, summed over sequences.
    integer_fields: ClassVar[tuple[str, ...]]
    #: Fields holding ratios (and float sums), recomputed from the counts.
    float_fields: ClassVar[tuple[str, ...]]
    #: Per-alpha array fields (HOTA only): float ratios, then integer counts.
    float_array_fields: ClassVar[tuple[str, ...]] = ()
    integer_array_fields: ClassVar[tuple[str, ...]] = ()
    #: The fields a summary table shows, in order.
    summary_fields: ClassVar[tuple[str, ...]]

    @abstractmethod
    def eval_sequence(self, data: SequenceData) -> Result:
        """All fields of this family for one preprocessed sequence."""

    @abstractmethod
    def combine_sequences(self, results: Mapping[str, Result]) -> Result:
        """All fields over several sequences, combined as the reference combines them."""

    @property
    def fields(self) -> tuple[str, ...]:
        return (
            self.float_array_fields
            + self.integer_array_fields
            + self.float_fields
            + self.integer_fields
        )

    @staticmethod
    def _sum(results: Mapping[str, Result], field: str) -> int | float | np.ndarray:
        """Sum of one field over sequences, in sequence order (as the reference sums)."""
        total: int | float | np.ndarray = 0
        for res in results.values():
            total = total + res[field]
        return total
