"""The focal classification term of the authors' SiamRPN training with the DeepMOT loss.

The authors' released code (``utils/loss.py``, ``focaLoss`` and
``weighted_binary_focal_entropy``; summed as ``MOTA + 5 MOTP + 10 focal``) adds to the DeepMOT
loss, per track and frame, a focal loss (Lin et al., ICCV 2017) on SiamRPN's classification
branch: the anchors of the track's search region that overlap the box of the object the track
follows by more than 0.6 are positives, those below 0.3 negatives, the rest ignored (all
negatives when the object is absent); the classes are balanced by the share of positives
(``w_neg = positives / labelled``, ``w_pos = 1 - w_neg``; ``w_neg = 1`` without positives,
``0`` when all are positive) and each term is modulated by the other class's probability to
the power ``gamma``. The loss of a frame is the mean over its tracks.

Without it the DeepMOT loss reaches SiamRPN's classification branch not at all: the anchor
choice is an argmax, and only the chosen anchor's regression carries a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from deepmot.boxes import box_iou

__all__ = ["anchor_labels", "focal_classification_loss"]

POSITIVE_IOU = 0.6
NEGATIVE_IOU = 0.3


def anchor_labels(anchors: Tensor, targets: Tensor) -> Tensor:
    """Labels ``(T, A)`` of each track's anchors ``(T, A, 4)`` xyxy against the box ``(T, 4)``
    xyxy of the object it follows (a row of NaN: the object is absent): 1 where IoU > 0.6, 0
    where IoU < 0.3 (everywhere for an absent object), -1 (ignored) in between."""
    labels = torch.zeros(anchors.shape[:2], dtype=torch.long, device=anchors.device)
    for t, target in enumerate(targets):
        if torch.isnan(target).any():
            continue
        iou = box_iou(anchors[t].detach(), target[None].to(anchors))[:, 0]
        labels[t] = torch.where(iou > POSITIVE_IOU, 1, torch.where(iou < NEGATIVE_IOU, 0, -1))
    return labels


def focal_classification_loss(logits: Tensor, labels: Tensor, gamma: float) -> Tensor:
    """The class-balanced focal loss ``(T,)`` of each track.

    Args:
        logits: ``(T, A, 2)`` (background, target) logits of each track's anchors.
        labels: ``(T, A)`` 1 positive, 0 negative, -1 ignored (:func:`anchor_labels`).
        gamma: the focal exponent (the authors': 2).

    Returns:
        ``-mean over the labelled anchors of [w_pos y (1 - p)^gamma log p + w_neg (1 - y)
        p^gamma log(1 - p)]`` per track, p the target probability (0 for a track without a
        labelled anchor).
    """
    log_prob = F.log_softmax(logits, dim=-1)
    log_bg, log_fg = log_prob[..., 0], log_prob[..., 1]
    positive, negative = labels == 1, labels == 0
    n_pos = positive.sum(1).float()
    n_labelled = (positive | negative).sum(1).float()
    w_neg = torch.where(n_pos > 0, n_pos / n_labelled.clamp(min=1), torch.ones_like(n_pos))
    w_neg = torch.where(n_pos == n_labelled, torch.zeros_like(w_neg), w_neg)
    w_pos = 1 - w_neg
    terms = (
        w_pos[:, None] * positive * log_bg.exp() ** gamma * log_fg
        + w_neg[:, None] * negative * log_fg.exp() ** gamma * log_bg
    )
    return -terms.sum(1) / n_labelled.clamp(min=1)
