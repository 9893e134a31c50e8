"""Detection targets from tracking ground truth: the person boxes of one frame.

A target is an active pedestrian row (flag not 0, class pedestrian) clipped to the image; rows
less visible than ``min_visibility`` are *crowd* boxes: no training target, and in the
evaluation a region where a detection is neither a hit nor a false positive.
"""

from __future__ import annotations

import numpy as np

from deepmot.data.sequence import Sequence

__all__ = ["frame_targets"]


def frame_targets(
    sequence: Sequence, frame: int, min_visibility: float
) -> tuple[np.ndarray, np.ndarray]:
    """The person boxes of ``frame``: ``boxes (N, 4) float32`` xyxy clipped to the image
    (boxes left under 1 px wide or high are dropped) and ``crowd (N,) bool`` (visibility
    below ``min_visibility``)."""
    gt = sequence.gt_at(frame).active_pedestrians()
    boxes = gt.boxes.astype(np.float32).copy()
    if sequence.im_width and sequence.im_height:
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, sequence.im_width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, sequence.im_height)
    keep = ((boxes[:, 2:] - boxes[:, :2]) >= 1.0).all(axis=1)
    return boxes[keep], (gt.visibility < min_visibility)[keep]
