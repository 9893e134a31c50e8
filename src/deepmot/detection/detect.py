"""Detections made by the detector, for a sequence that has none (a video given as is)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepmot.data.frames import image_to_tensor
from deepmot.data.sequence import Sequence
from deepmot.detection.config import MIN_DETECTION_SCORE
from deepmot.io.mot import Detections

__all__ = ["detect_sequence"]


@torch.no_grad()
def detect_sequence(
    model: nn.Module,
    sequence: Sequence,
    min_score: float = MIN_DETECTION_SCORE,
    progress: bool = True,
) -> Detections:
    """Run ``model`` (a two-class Faster R-CNN, :func:`deepmot.detection.model.load_detector`)
    on every frame of ``sequence`` and keep the detections scored at least ``min_score``.

    Returns:
        A MOTChallenge detection table: ``frames (K,)`` 1-based, ``boxes_xywh (K, 4)`` in
        pixels, ``scores (K,)``; what :meth:`Sequence.with_detections` takes.
    """
    from tqdm.auto import tqdm

    if not 0.0 <= min_score <= 1.0:
        raise ValueError(f"min_score must be in [0, 1], got {min_score}")
    device = next(model.parameters()).device
    model.eval()
    frames, boxes, scores = [], [], []
    bar = tqdm(sequence.frames, desc=f"detect {sequence.name}", unit="frame", disable=not progress)
    for frame in bar:
        found = model([image_to_tensor(sequence.read_image(frame)).to(device)])[0]
        keep = found["scores"] >= min_score
        xyxy = found["boxes"][keep].cpu().double().numpy()
        frames.append(np.full(len(xyxy), frame, np.int64))
        boxes.append(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1))
        scores.append(found["scores"][keep].cpu().double().numpy())
    return Detections(
        frames=np.concatenate(frames) if frames else np.empty(0, np.int64),
        boxes_xywh=np.concatenate(boxes) if boxes else np.empty((0, 4)),
        scores=np.concatenate(scores) if scores else np.empty(0),
    )
