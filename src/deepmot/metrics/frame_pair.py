"""Exact CLEAR MOT counts of one frame given the matches of the frame before.

Training samples frame pairs: tracks start from the ground truth at t − 1 (so object g was
matched to track ``memory[g]``) and are predicted at t. The true FP, FN, ID switches and MOTA of
frame t are those the evaluator gives the two-frame sequence whose first frame holds exactly
those matches; this module builds that sequence and runs :class:`~deepmot.metrics.CLEAR` on it,
so the numbers are the evaluator's own, matching rules (IoU >= 0.5, continuing matches first)
included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from deepmot.metrics._base import SequenceData
from deepmot.metrics.clear import CLEAR

__all__ = ["FrameCounts", "clear_frame_pair"]


@dataclass(frozen=True)
class FrameCounts:
    """CLEAR MOT counts of one frame; ``mota`` divides by ``max(1, num_objects)``, ``motp`` is
    the mean IoU of the matches."""

    tp: int
    fp: int
    fn: int
    idsw: int
    num_objects: int
    iou_sum: float

    @property
    def mota(self) -> float:
        return 1 - (self.fp + self.fn + self.idsw) / max(1, self.num_objects)

    @property
    def motp(self) -> float:
        return self.iou_sum / max(1, self.tp)


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def clear_frame_pair(
    gt_boxes: np.ndarray,
    gt_ids: np.ndarray,
    track_boxes: np.ndarray,
    track_ids: np.ndarray,
    memory: Mapping[int, int] | None = None,
    threshold: float = 0.5,
) -> FrameCounts:
    """CLEAR MOT counts of a frame after a frame whose matches were ``memory``.

    Args:
        gt_boxes: ``(M, 4)`` xyxy; gt_ids: ``(M,)``.
        track_boxes: ``(N, 4)`` xyxy; track_ids: ``(N,)``.
        memory: ``{gt_id: track_id}`` matches of the previous frame (one track per object).
        threshold: IoU a match needs.

    Returns:
        :class:`FrameCounts` of this frame alone.
    """
    memory = dict(memory or {})
    if len(set(memory.values())) != len(memory):
        raise ValueError("memory maps two objects to the same track: it must come from one frame")
    gt_ids = np.asarray(gt_ids, dtype=np.int64).reshape(-1)
    track_ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
    n_prev = len(memory)
    # The previous frame: object g and track memory[g] share a box of their own, apart from others.
    prev_boxes = np.stack(
        [np.arange(n_prev) * 10.0, np.zeros(n_prev), np.full(n_prev, 5.0), np.full(n_prev, 5.0)], 1
    )
    data = SequenceData.from_rows(
        "frame-pair",
        2,
        np.concatenate([np.zeros(n_prev, np.int64), np.ones(len(gt_ids), np.int64)]),
        np.concatenate([np.fromiter(memory.keys(), np.int64, n_prev), gt_ids]),
        np.concatenate([prev_boxes, _xyxy_to_xywh(gt_boxes)]),
        np.concatenate([np.zeros(n_prev, np.int64), np.ones(len(track_ids), np.int64)]),
        np.concatenate([np.fromiter(memory.values(), np.int64, n_prev), track_ids]),
        np.concatenate([prev_boxes, _xyxy_to_xywh(track_boxes)]),
    )
    res = CLEAR(threshold).eval_sequence(data)
    tp = int(res["CLR_TP"]) - n_prev
    return FrameCounts(
        tp=tp,
        fp=int(res["CLR_FP"]),
        fn=int(res["CLR_FN"]),
        idsw=int(res["IDSW"]),
        num_objects=len(gt_ids),
        iou_sum=float(res["MOTP_sum"]) - n_prev,
    )
