"""Detector accuracy on held-out frames: AP50 and AP[.5:.95] with torchmetrics' COCO mAP
(pycocotools backend), low-visibility people as crowd regions (see
:mod:`deepmot.detection.data`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepmot.data.frames import image_to_tensor
from deepmot.data.sequence import Sequence
from deepmot.detection.data import frame_targets
from deepmot.engine.run import progress_bar

__all__ = ["evaluate_detector"]


@torch.no_grad()
def evaluate_detector(
    model: nn.Module,
    sequences: list[Sequence],
    min_visibility: float = 0.25,
    stride: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``model`` on every ``stride``-th frame of ``sequences`` and score its detections.

    Returns ``{"ap50", "ap", "ar100", "frames", "objects"}`` (AP in [0, 1]; ``objects``: the
    non-crowd boxes).
    """
    from torchmetrics.detection import MeanAveragePrecision

    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    device = next(model.parameters()).device
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    model.eval()
    work = [(s, f) for s in sequences for f in list(s.frames)[::stride]]
    objects = 0
    bar = progress_bar(len(work), 0, "detector eval", progress)
    for seq, frame in work:
        image = image_to_tensor(seq.read_image(frame)).to(device)
        out = model([image])[0]
        boxes, crowd = frame_targets(seq, frame, min_visibility)
        objects += int((~crowd).sum())
        metric.update(
            [{k: out[k].cpu() for k in ("boxes", "scores", "labels")}],
            [
                {
                    "boxes": torch.from_numpy(boxes),
                    "labels": torch.ones(len(boxes), dtype=torch.int64),
                    "iscrowd": torch.from_numpy(crowd.astype("int64")),
                }
            ],
        )
        bar.update(1)
    bar.close()
    result = metric.compute()
    return {
        "ap50": float(result["map_50"]),
        "ap": float(result["map"]),
        "ar100": float(result["mar_100"]),
        "frames": len(work),
        "objects": objects,
    }
