"""The Smooth-L1 baseline of the paper's Tables 1-3: each track regressed to its object's box."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepmot.loss.deepmot import IdsLike, as_id_array

__all__ = ["SmoothL1Loss"]


class SmoothL1Loss(nn.Module):
    """Baseline of the paper's Tables 1–3: regress each track to its ground-truth box.

    Tracks and objects are paired by id (tracks initialised from the ground truth carry its ids);
    tracks whose id is absent from the ground truth are ignored. The error of each coordinate is
    divided by the ground-truth box's width or height so that near and far pedestrians weigh
    alike; ``beta`` is Faster R-CNN's 1/9.

    ``loss_fn(pred_boxes (N, 4) xyxy, gt_boxes (M, 4) xyxy, track_ids (N,), gt_ids (M,))`` →
    scalar (0 when nothing pairs up, with a gradient of zeros).
    """

    def __init__(self, beta: float = 1 / 9) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = beta

    def forward(
        self, pred_boxes: Tensor, gt_boxes: Tensor, track_ids: IdsLike, gt_ids: IdsLike
    ) -> Tensor:
        rows = as_id_array(track_ids, "track_ids", pred_boxes.shape[0], "predicted box")
        cols = as_id_array(gt_ids, "gt_ids", gt_boxes.shape[0], "ground-truth box")
        position = {int(g): j for j, g in enumerate(cols)}
        pairs = [(i, position[int(t)]) for i, t in enumerate(rows) if int(t) in position]
        if not pairs:
            return pred_boxes.sum() * 0
        index = torch.tensor(pairs, device=pred_boxes.device)
        pred = pred_boxes[index[:, 0]]
        target = gt_boxes[index[:, 1]]
        size = (target[:, 2:] - target[:, :2]).clamp(min=1.0).repeat(1, 2)
        return F.smooth_l1_loss(pred / size, target / size, beta=self.beta)
