"""Train and evaluate the external ReID network (:mod:`deepmot.trackers.reid`) on identity crops.

:func:`identity_crops` cuts the ground-truth boxes of well visible people out of a sequence's
frames (one identity per sequence and gt id); :func:`train_reid` trains with the batch-hard
triplet loss on batches of P identities x K crops (Hermans et al. 2017), flipping crops
left-right at random; :func:`evaluate_reid` reports rank-1 and mAP on other identities with
``torchmetrics``' retrieval metrics, every crop querying all the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deepmot.data.frames import image_to_tensor
from deepmot.data.sequence import Sequence
from deepmot.engine.run import progress_bar
from deepmot.errors import DeepMOTError
from deepmot.trackers.reid import ReIDConfig, ReIDNet, batch_hard_triplet_loss, crop_boxes

__all__ = [
    "ReIDTrainConfig",
    "box_embeddings",
    "evaluate_reid",
    "identity_crops",
    "retrieval_scores",
    "train_reid",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReIDTrainConfig:
    """Settings of a ReID training run.

    Attributes:
        model: the network (:class:`~deepmot.trackers.reid.ReIDConfig`).
        steps: optimisation steps.
        identities, per_identity: P identities x K crops per batch (Hermans et al. use 18 x 4;
            8 x 4 keeps a CPU step under a second).
        margin: the triplet margin (FaceNet's α = 0.2).
        lr: Adam's learning rate (Hermans et al.: 3e-4).
        min_visibility: least visibility of a crop's person (occluded crops show someone else).
        frame_stride: one frame in this many gives crops.
        train_fraction: the first share of each sequence's frames that gives crops (the
            trackers' training frames, supp. A.2: 50%).
        seed: seeds the initialisation and the batches.
    """

    model: ReIDConfig = ReIDConfig()
    steps: int = 100
    identities: int = 8
    per_identity: int = 4
    margin: float = 0.2
    lr: float = 3e-4
    min_visibility: float = 0.6
    frame_stride: int = 2
    train_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "frame_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.identities < 2 or self.per_identity < 2:
            raise ValueError("a triplet batch needs identities >= 2 and per_identity >= 2")
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must lie in (0, 1], got {self.train_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def identity_crops(
    sequences: list[Sequence],
    crop_size: tuple[int, int],
    stride: int = 1,
    min_visibility: float = 0.6,
    first: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Crops of the ground-truth pedestrians of ``sequences``.

    Args:
        sequences: sequences with ground truth and frames.
        crop_size: ``(h, w)`` of every crop.
        stride: every ``stride``-th frame gives crops.
        min_visibility: people less visible than this are left out.
        first: the share of each sequence's first frames that gives crops.

    Returns:
        ``crops (N, 3, h, w) uint8`` and ``labels (N,) int64``, one label per (sequence, gt
        id), numbered from 0.
    """
    crops, labels, names = [], [], {}
    for seq in sequences:
        if seq.gt is None or not seq.has_images:
            raise DeepMOTError(f"sequence {seq.name} needs ground truth and frames for ReID crops")
        last = max(1, int(seq.seq_length * first))
        for frame in list(seq.frames)[:last:stride]:
            gt = seq.gt_at(frame).active_pedestrians()
            keep = gt.visibility >= min_visibility
            if not keep.any():
                continue
            image = image_to_tensor(seq.read_image(frame))
            cut = crop_boxes(image, torch.from_numpy(gt.boxes[keep]), crop_size)
            crops.append((cut * 255).round().clamp(0, 255).to(torch.uint8))
            for gid in gt.ids[keep].tolist():
                labels.append(names.setdefault((seq.name, gid), len(names)))
    if not crops:
        raise DeepMOTError("no visible people to cut ReID crops from")
    return torch.cat(crops), torch.tensor(labels, dtype=torch.int64)


@torch.no_grad()
def box_embeddings(
    embed: Callable[[np.ndarray, Tensor], Tensor],
    sequences: list[Sequence],
    stride: int = 10,
    min_visibility: float = 0.6,
) -> tuple[Tensor, Tensor]:
    """``embed(frame (H, W, 3) uint8, boxes (K, 4) xyxy) -> (K, E)`` (e.g. Tracktor's
    :meth:`~deepmot.trackers.tracktor.TracktorPredictor.embed`: its ReID head) applied to
    the well visible ground-truth people of every ``stride``-th frame; returns the embeddings
    ``(N, E)`` and labels ``(N,)`` as :func:`identity_crops` numbers them."""
    found, labels, names = [], [], {}
    for seq in sequences:
        for frame in list(seq.frames)[::stride]:
            gt = seq.gt_at(frame).active_pedestrians()
            keep = gt.visibility >= min_visibility
            if not keep.any():
                continue
            found.append(embed(seq.read_image(frame), torch.from_numpy(gt.boxes[keep])).cpu())
            for gid in gt.ids[keep].tolist():
                labels.append(names.setdefault((seq.name, gid), len(names)))
    if not found:
        raise DeepMOTError("no visible people to embed")
    return torch.cat(found), torch.tensor(labels, dtype=torch.int64)


def _batch(labels: Tensor, config: ReIDTrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Indices of P identities x K crops (drawn with replacement for short tracks)."""
    counts = np.bincount(labels.numpy())
    usable = np.flatnonzero(counts >= 2)
    if len(usable) < 2:
        raise DeepMOTError("ReID training needs at least 2 identities with 2 crops each")
    chosen = rng.choice(usable, size=min(config.identities, len(usable)), replace=False)
    by_label = labels.numpy()
    picks = []
    for label in chosen:
        members = np.flatnonzero(by_label == label)
        replace = len(members) < config.per_identity
        picks.append(rng.choice(members, size=config.per_identity, replace=replace))
    return np.concatenate(picks)


def train_reid(
    crops: Tensor, labels: Tensor, config: ReIDTrainConfig, progress: bool = True
) -> tuple[ReIDNet, list[float]]:
    """Train a :class:`~deepmot.trackers.reid.ReIDNet` on ``crops (N, 3, h, w) uint8`` with
    ``labels (N,)``; returns the network (eval mode) and the loss of every step."""
    torch.manual_seed(config.seed)
    model = ReIDNet(config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    losses = []
    model.train()
    bar = progress_bar(config.steps, 0, "train reid", progress)
    for _ in range(config.steps):
        index = _batch(labels, config, rng)
        batch = crops[index].float() / 255.0
        flip = torch.from_numpy(rng.uniform(size=len(index)) < 0.5)
        batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        loss = batch_hard_triplet_loss(model(batch), labels[index], config.margin)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    bar.close()
    return model.eval(), losses


@torch.no_grad()
def retrieval_scores(embeddings: Tensor, labels: Tensor) -> dict[str, float]:
    """Rank-1 and mAP (percent) of every embedding ``(N, E)`` querying all the others by
    cosine similarity (``torchmetrics``' ``RetrievalPrecision(top_k=1)`` and
    ``RetrievalMAP``; queries without another item of their label ``(N,)`` are skipped), and
    the mean cosine distance ``(1 − cos) / 2`` of same-label and of other-label pairs."""
    import torch.nn.functional as F
    from torchmetrics.retrieval import RetrievalMAP, RetrievalPrecision

    unit = F.normalize(embeddings.float(), dim=1)
    similarity = unit @ unit.T
    n = len(labels)
    others = ~torch.eye(n, dtype=torch.bool, device=similarity.device)
    queries = torch.arange(n, device=similarity.device)[:, None].expand(n, n)[others]
    preds = similarity[others]
    target = (labels[:, None] == labels[None, :]).to(similarity.device)[others]
    rank1 = RetrievalPrecision(top_k=1, empty_target_action="skip")(preds, target, queries)
    average = RetrievalMAP(empty_target_action="skip")(preds, target, queries)
    distance = (1 - preds) / 2
    return {
        "rank1": 100 * float(rank1),
        "mAP": 100 * float(average),
        "same_distance": float(distance[target].mean()) if target.any() else float("nan"),
        "other_distance": float(distance[~target].mean()) if (~target).any() else float("nan"),
    }


@torch.no_grad()
def evaluate_reid(model: ReIDNet, crops: Tensor, labels: Tensor, batch: int = 256) -> dict:
    """:func:`retrieval_scores` of the network's embeddings of ``crops (N, 3, h, w) uint8``."""
    model.eval()
    embeddings = torch.cat(
        [model(crops[i : i + batch].float() / 255.0) for i in range(0, len(crops), batch)]
    )
    return {
        **retrieval_scores(embeddings, labels),
        "crops": len(labels),
        "identities": int(labels.unique().numel()),
    }
