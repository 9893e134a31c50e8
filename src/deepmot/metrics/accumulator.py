"""Evaluation frame by frame, from inside a tracking loop, beside the file API.

A :class:`FrameAccumulator` is fed each frame's ground-truth ids and tracker ids with either
their boxes (the IoU is then the evaluator's, and a ``benchmark`` applies MOTChallenge's
preprocessing exactly as ``deepmot eval`` does) or a similarity or distance matrix, as
py-motmetrics' ``MOTAccumulator.update`` is. At the end it builds the
:class:`~deepmot.metrics.SequenceData` that the metric classes read, so CLEAR, Identity and
HOTA are the very numbers of the file evaluator (and of TrackEval)::

    acc = FrameAccumulator("MOT17-09", benchmark="MOT17")
    for frame in frames:
        acc.update(gt_ids, track_ids, gt_boxes=gt_xywh, tracker_boxes=track_xywh)
    evaluation = acc.evaluate()
    evaluation.combined["clear"]["MOTA"], evaluation.combined["identity"]["IDF1"]

Ids are any integers (a gt id and a tracker id may be equal); an id may appear once per frame.
NumPy only, like the rest of :mod:`deepmot.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from deepmot.io.mot import PEDESTRIAN, GroundTruth, Results
from deepmot.metrics._base import MetricFamily, SequenceData, box_corners
from deepmot.metrics.evaluate import BENCHMARKS, Evaluation, evaluate_data, preprocess

__all__ = ["FrameAccumulator", "evaluate_accumulators"]

_BOX_FORMATS = ("xywh", "xyxy")


def _ids(values: Iterable[int] | np.ndarray, what: str) -> np.ndarray:
    ids = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
        raise ValueError(f"{what} must be integers")
    ids = ids.astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{what} must be distinct within a frame, got {ids.tolist()}")
    return ids


class FrameAccumulator:
    """One sequence's ground truth and tracker output, given frame by frame.

    Args:
        name: the sequence's name (the row name in :class:`~deepmot.metrics.Evaluation`).
        benchmark: ``None`` (default): every gt box counts, as py-motmetrics counts them; or one
            of ``MOT15``, ``MOT16``, ``MOT17``, ``MOT20``: the evaluator's preprocessing
            (gt rows with flag 0 ignored; for MOT16/17/20 only pedestrians kept and tracker
            boxes matched to distractors removed), which needs boxes and the gt classes and
            flags (:meth:`update`'s ``gt_classes``, ``gt_flags``).
        box_format: ``"xywh"`` (MOTChallenge's, default) or ``"xyxy"`` for the boxes given.
    """

    def __init__(
        self, name: str = "sequence", *, benchmark: str | None = None, box_format: str = "xywh"
    ) -> None:
        if benchmark is not None and benchmark not in BENCHMARKS:
            valid = ", ".join(BENCHMARKS)
            raise ValueError(f"unknown benchmark {benchmark!r}; valid: None, {valid}")
        if box_format not in _BOX_FORMATS:
            raise ValueError(f"box_format must be one of {_BOX_FORMATS}, got {box_format!r}")
        self.name = name
        self.benchmark = benchmark
        self.box_format = box_format
        self._gt: list[tuple[np.ndarray, ...]] = []  # per frame: ids, boxes, classes, flags
        self._tracker: list[tuple[np.ndarray, np.ndarray | None]] = []  # per frame: ids, boxes
        self._sims: list[np.ndarray | None] = []  # per frame: (n_gt, n_tracker) or None
        self._mode: str | None = None  # "boxes" or "matrix", fixed by the first update

    @property
    def num_frames(self) -> int:
        """Frames given so far."""
        return len(self._gt)

    def update(
        self,
        gt_ids: Iterable[int] | np.ndarray,
        tracker_ids: Iterable[int] | np.ndarray,
        *,
        gt_boxes: np.ndarray | None = None,
        tracker_boxes: np.ndarray | None = None,
        similarity: np.ndarray | None = None,
        distance: np.ndarray | None = None,
        gt_classes: Iterable[int] | np.ndarray | None = None,
        gt_flags: Iterable[int] | np.ndarray | None = None,
    ) -> int:
        """Add the next frame; returns its 0-based index.

        Args:
            gt_ids: ``(N,)`` ids of the ground-truth objects in the frame.
            tracker_ids: ``(M,)`` ids of the tracker's boxes in the frame.
            gt_boxes, tracker_boxes: ``(N, 4)``, ``(M, 4)`` boxes in ``box_format``; the IoU is
                computed as the evaluator computes it.
            similarity: instead of boxes, ``(N, M)`` similarities in ``[0, 1]`` (an IoU or
                anything read the same way: a pair can match at 0.5 or more).
            distance: instead of boxes, ``(N, M)`` distances ``1 - similarity``, NaN where a
                pair may not match (py-motmetrics' convention, e.g. ``mm.distances.iou_matrix``
                with ``max_iou=0.5`` gives ``1 - IoU``).
            gt_classes, gt_flags: ``(N,)`` MOTChallenge class (1 = pedestrian, default) and
                flag (1 = evaluate, default; 0 = ignore) of each gt object; used with a
                ``benchmark``.

        Every frame of one accumulator is given the same way: boxes, or a matrix.
        """
        gt = _ids(gt_ids, "gt_ids")
        tr = _ids(tracker_ids, "tracker_ids")
        given = [x is not None for x in (gt_boxes, similarity, distance)]
        if sum(given) != 1 or (gt_boxes is None) != (tracker_boxes is None):
            raise ValueError(
                "give the boxes (gt_boxes and tracker_boxes), or a similarity, or a distance"
            )
        mode = "boxes" if gt_boxes is not None else "matrix"
        if self._mode is not None and mode != self._mode:
            raise ValueError(f"this accumulator was given {self._mode}, not {mode}, before")
        if mode == "matrix" and self.benchmark is not None:
            raise ValueError("a benchmark's preprocessing needs boxes, not a matrix")
        classes = np.full(len(gt), PEDESTRIAN, dtype=np.int64)
        flags = np.ones(len(gt), dtype=np.int64)
        if gt_classes is not None:
            classes = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
        if gt_flags is not None:
            flags = np.asarray(gt_flags, dtype=np.int64).reshape(-1)
        if len(classes) != len(gt) or len(flags) != len(gt):
            raise ValueError(f"gt_classes and gt_flags must have {len(gt)} entries, as gt_ids")
        sim = None
        gt_xywh = tr_xywh = None
        if mode == "boxes":
            gt_xywh = self._xywh(gt_boxes, len(gt), "gt_boxes")
            tr_xywh = self._xywh(tracker_boxes, len(tr), "tracker_boxes")
        else:
            matrix = similarity if similarity is not None else distance
            sim = np.asarray(matrix, dtype=np.float64).reshape(len(gt), len(tr))
            if distance is not None:
                sim = np.where(np.isnan(sim), 0.0, 1.0 - sim)
            if not np.all(np.isfinite(sim)) or sim.min(initial=0) < 0 or sim.max(initial=0) > 1:
                raise ValueError("similarities must lie in [0, 1] (distances in [0, 1] or NaN)")
        self._mode = mode
        self._gt.append((gt, gt_xywh, classes, flags))
        self._tracker.append((tr, tr_xywh))
        self._sims.append(sim)
        return len(self._gt) - 1

    def _xywh(self, boxes: np.ndarray, count: int, what: str) -> np.ndarray:
        array = np.asarray(boxes, dtype=np.float64)
        if array.size != 4 * count:
            raise ValueError(f"{what} must be ({count}, 4), got shape {array.shape}")
        array = array.reshape(count, 4)
        if self.box_format == "xyxy":
            array = np.concatenate([array[:, :2], array[:, 2:] - array[:, :2]], axis=1)
        return array

    def sequence_data(self) -> SequenceData:
        """What the metric classes read: the frames given so far, preprocessed as the
        evaluator does for ``benchmark`` (none by default)."""
        num_frames = len(self._gt)
        gt_frames = np.repeat(np.arange(num_frames), [len(g[0]) for g in self._gt])
        tr_frames = np.repeat(np.arange(num_frames), [len(t[0]) for t in self._tracker])
        gt_ids = np.concatenate([np.zeros(0, np.int64), *(g[0] for g in self._gt)])
        tr_ids = np.concatenate([np.zeros(0, np.int64), *(t[0] for t in self._tracker)])
        if self._mode == "boxes":
            gt_boxes = np.concatenate([np.zeros((0, 4)), *(g[1] for g in self._gt)])
            tr_boxes = np.concatenate([np.zeros((0, 4)), *(t[1] for t in self._tracker)])
            if self.benchmark is None:
                return SequenceData.from_rows(
                    self.name, num_frames, gt_frames, gt_ids, gt_boxes, tr_frames, tr_ids, tr_boxes
                )
            return self._preprocessed(gt_frames, gt_ids, gt_boxes, tr_frames, tr_ids, tr_boxes)
        return self._from_matrices(gt_frames, gt_ids, tr_frames, tr_ids)

    def _preprocessed(
        self,
        gt_frames: np.ndarray,
        gt_ids: np.ndarray,
        gt_boxes: np.ndarray,
        tr_frames: np.ndarray,
        tr_ids: np.ndarray,
        tr_boxes: np.ndarray,
    ) -> SequenceData:
        """The evaluator's own preprocessing, on the rows as a file would hold them."""
        classes = np.concatenate([np.zeros(0, np.int64), *(g[2] for g in self._gt)])
        flags = np.concatenate([np.zeros(0, np.int64), *(g[3] for g in self._gt)])
        gt_order = np.lexsort((gt_ids, gt_frames))
        tr_order = np.lexsort((tr_ids, tr_frames))
        gt = GroundTruth(
            frames=gt_frames[gt_order] + 1,
            ids=gt_ids[gt_order],
            boxes_xywh=gt_boxes[gt_order],
            flags=flags[gt_order],
            classes=classes[gt_order],
            visibility=np.ones(len(gt_order)),
        )
        results = Results(
            frames=tr_frames[tr_order] + 1,
            ids=tr_ids[tr_order],
            boxes_xywh=tr_boxes[tr_order],
            scores=np.ones(len(tr_order)),
        )
        return preprocess(
            gt, results, benchmark=self.benchmark, num_frames=len(self._gt), name=self.name
        )

    def _from_matrices(
        self, gt_frames: np.ndarray, gt_ids: np.ndarray, tr_frames: np.ndarray, tr_ids: np.ndarray
    ) -> SequenceData:
        """Rows sorted by frame then id, and each frame's non-zero similarities as its pairs."""
        gt_order = np.lexsort((gt_ids, gt_frames))
        tr_order = np.lexsort((tr_ids, tr_frames))
        pair_gt, pair_tr, pair_sim = [], [], []
        gt_start = tr_start = 0
        for (gt, *_), (tr, _), sim in zip(self._gt, self._tracker, self._sims, strict=True):
            g_sort, t_sort = np.argsort(gt, kind="stable"), np.argsort(tr, kind="stable")
            block = sim[np.ix_(g_sort, t_sort)]
            rows, cols = np.nonzero(block > 0)  # row-major: by gt row, then tracker row
            pair_gt.append(rows + gt_start)
            pair_tr.append(cols + tr_start)
            pair_sim.append(block[rows, cols])
            gt_start += len(gt)
            tr_start += len(tr)
        empty = np.zeros(0, np.int64)
        pairs = (
            np.concatenate([empty, *pair_gt]),
            np.concatenate([empty, *pair_tr]),
            np.concatenate([np.zeros(0), *pair_sim]),
        )
        no_boxes = box_corners(np.zeros((0, 4)))  # the pairs are given: no box is read
        return SequenceData.from_sorted(
            self.name,
            len(self._gt),
            gt_frames[gt_order],
            gt_ids[gt_order],
            no_boxes,
            tr_frames[tr_order],
            tr_ids[tr_order],
            no_boxes,
            pairs,
        )

    def evaluate(
        self, metrics: Iterable[str | MetricFamily] = ("hota", "clear", "identity")
    ) -> Evaluation:
        """CLEAR, Identity and HOTA (or ``metrics``) of the frames given so far."""
        return evaluate_accumulators([self], metrics)


def evaluate_accumulators(
    accumulators: Sequence[FrameAccumulator],
    metrics: Iterable[str | MetricFamily] = ("hota", "clear", "identity"),
) -> Evaluation:
    """Every accumulator as one sequence (names must differ) and their COMBINED row, combined
    as the file evaluator combines sequences."""
    evaluation = evaluate_data([acc.sequence_data() for acc in accumulators], metrics)
    evaluation.benchmarks = {acc.name: acc.benchmark or "none" for acc in accumulators}
    return evaluation
