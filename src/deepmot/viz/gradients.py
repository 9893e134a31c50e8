"""What the DeepMOT loss asks of each box (paper Fig. 9).

For one frame, draws the predicted boxes, the ground-truth boxes and, for each term of the loss
(FP~, FN~, IDS~, 1 − dMOTP and the total), the negative gradient with respect to each predicted
box's corners as arrows: where gradient descent would move the corners.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from deepmot import boxes as box_ops
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.viz.figures import pyplot, save_figure

__all__ = ["loss_gradients", "plot_loss_gradients"]

TERMS = ("fp", "fn", "ids", "1 - dmotp", "loss")
TITLES = {"fp": "FP~", "fn": "FN~", "ids": "IDS~", "1 - dmotp": "1 − dMOTP", "loss": "DeepMOT loss"}


def loss_gradients(
    loss_fn: DeepMOTLoss,
    pred_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    track_ids: np.ndarray,
    gt_ids: np.ndarray,
    image_size: tuple[float, float],
    memory: Mapping[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """Gradient of each loss term with respect to the predicted boxes.

    Args:
        loss_fn: the loss (its memory is replaced by ``memory`` for this call).
        pred_boxes: ``(N, 4)`` xyxy; gt_boxes: ``(M, 4)`` xyxy; track_ids ``(N,)``; gt_ids ``(M,)``.
        image_size: ``(width, height)``.
        memory: ``{gt_id: track_id}`` matches of the previous frame.

    Returns:
        ``{term: (N, 4) float32}`` for the terms ``fp``, ``fn``, ``ids``, ``1 - dmotp``, ``loss``.
    """
    pred = torch.as_tensor(np.asarray(pred_boxes, dtype=np.float32)).requires_grad_(True)
    gt = torch.as_tensor(np.asarray(gt_boxes, dtype=np.float32))
    loss_fn.memory = dict(memory or {})
    out = loss_fn(box_ops.distance_matrix(pred, gt, *image_size), track_ids, gt_ids)
    values = {
        "fp": out.fp,
        "fn": out.fn,
        "ids": out.ids,
        "1 - dmotp": 1 - out.dmotp,
        "loss": out.loss,
    }
    grads = {}
    for term in TERMS:
        (grad,) = torch.autograd.grad(values[term], pred, retain_graph=True, allow_unused=True)
        grads[term] = np.zeros((len(pred), 4), np.float32) if grad is None else grad.numpy()
    return grads


def plot_loss_gradients(
    path: str | Path,
    loss_fn: DeepMOTLoss,
    pred_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    track_ids: np.ndarray,
    gt_ids: np.ndarray,
    image_size: tuple[float, float],
    memory: Mapping[int, int] | None = None,
    image: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Draw :func:`loss_gradients` as arrows on the frame, one panel per term, into a PNG.

    Arrows start at each predicted box's top-left and bottom-right corners and point along the
    negative gradient; within a panel they are scaled so that the longest is a tenth of the view's
    diagonal (panels are not comparable in scale; the largest gradient norm is in each title).
    Without an image the view zooms on the boxes.
    Ground truth is green with its ids, predictions red with theirs. ``image``: optional
    ``(H, W, 3) uint8`` RGB background. Returns the gradients.
    """
    grads = loss_gradients(loss_fn, pred_boxes, gt_boxes, track_ids, gt_ids, image_size, memory)
    plt = pyplot()
    width, height = image_size
    fig, axes = plt.subplots(1, len(TERMS), figsize=(4.2 * len(TERMS), 4.8))
    pred = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    everything = np.concatenate([pred, np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)])
    if image is not None or len(everything) == 0:
        x_lo, y_lo, x_hi, y_hi = 0.0, 0.0, float(width), float(height)
    else:  # zoom on the boxes, with a margin for the arrows
        x_lo, y_lo = everything[:, :2].min(0)
        x_hi, y_hi = everything[:, 2:].max(0)
        margin = 0.25 * max(x_hi - x_lo, y_hi - y_lo)
        x_lo, y_lo, x_hi, y_hi = x_lo - margin, y_lo - margin, x_hi + margin, y_hi + margin
    longest = 0.1 * float(np.hypot(x_hi - x_lo, y_hi - y_lo))
    for ax, term in zip(axes, TERMS, strict=True):
        if image is not None:
            ax.imshow(image)
        _draw_boxes(ax, np.asarray(gt_boxes), gt_ids, "tab:green")
        _draw_boxes(ax, pred, track_ids, "tab:red")
        step = -grads[term].astype(np.float64).reshape(-1, 2, 2)  # (N, corner, xy)
        norm = float(np.linalg.norm(step, axis=2).max(initial=0.0))
        if norm > 0:
            corners = pred.reshape(-1, 2, 2)
            arrows = step / norm * longest
            ax.quiver(
                corners[..., 0].ravel(), corners[..., 1].ravel(),
                arrows[..., 0].ravel(), arrows[..., 1].ravel(),
                angles="xy", scale_units="xy", scale=1, color="tab:blue", width=0.006,
            )  # fmt: skip
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_hi, y_lo)
        ax.set_title(f"{TITLES[term]}  (max |grad| {norm:.2g})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path)
    return grads


def _draw_boxes(ax, boxes: np.ndarray, ids: np.ndarray, color: str) -> None:
    from matplotlib.patches import Rectangle

    for (x1, y1, x2, y2), box_id in zip(boxes.reshape(-1, 4), np.asarray(ids), strict=True):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, lw=1.5))
        ax.text(x1, y1 - 2, str(int(box_id)), color=color, fontsize=7)
