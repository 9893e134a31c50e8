"""The single-object ("Vanilla") objective of the MOT-by-SOT trackers (paper Sec. 5, Table 3).

The paper's Vanilla GOTURN and SiamRPN are the trackers trained with their own single-object
objective: regress the same target's box in the next frame. :func:`single_object_step` does
that on the trainer's frame pairs (``deepmot train --loss vanilla``): each track starts at its
(augmented) ground-truth box at t, and the predictor's ``single_object_loss`` (GOTURN: L1 in
search-region units; SiamRPN: anchor classification + regression; where the predictor
``has_single_object_loss``) compares its prediction at
t + 1 with the box of the object it follows. The counts it returns score those predictions as
the evaluator would with one track per object (a match where IoU >= 0.5), for the log's true
MOTA/MOTP.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from deepmot.boxes import box_iou
from deepmot.errors import DeepMOTError
from deepmot.trackers.predictor import Predictor
from deepmot.train.clips import ClipStart

__all__ = ["single_object_step"]


def single_object_step(
    starts: list[ClipStart], predictor: Predictor, device: torch.device
) -> tuple[Tensor, dict[str, float]]:
    """The mean single-object loss over ``starts`` (pairs: frames t, t + 1) and the counts
    ``tp, fp, fn, idsw, objects, iou_sum`` of the predictions."""
    if not predictor.has_single_object_loss:
        raise DeepMOTError(
            f"{type(predictor).__name__} has no single-object objective: --loss vanilla trains "
            "the single-object trackers (goturn, siamrpn)"
        )
    losses = []
    counts = dict.fromkeys(("tp", "fp", "fn", "idsw", "objects", "iou_sum"), 0.0)
    for start in starts:
        seq, t = start.sequence, start.start
        nxt = seq.gt_at(t + 1).active_pedestrians()
        where = {int(g): j for j, g in enumerate(nxt.ids)}
        rows = [i for i, g in enumerate(start.targets) if int(g) in where]
        if not rows:
            continue
        boxes = torch.from_numpy(np.stack([start.histories[i][-1] for i in rows])).to(device)
        wanted = np.stack([nxt.boxes[where[int(start.targets[i])]] for i in rows])
        targets = torch.from_numpy(wanted.astype(np.float32)).to(device)
        loss, predicted = predictor.single_object_loss(
            seq.read_image(t), seq.read_image(t + 1), boxes, targets
        )
        losses.append(loss)
        iou = box_iou(predicted.float().cpu(), targets.cpu()).diagonal()
        hit = iou >= 0.5
        counts["tp"] += float(hit.sum())
        counts["fp"] += float((~hit).sum())
        counts["fn"] += float(len(nxt.ids) - hit.sum())
        counts["objects"] += float(len(nxt.ids))
        counts["iou_sum"] += float(iou[hit].sum())
    if not losses:
        return torch.zeros((), device=device), counts
    return torch.stack(losses).mean(), counts
