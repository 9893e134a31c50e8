"""Detection training data: the person boxes of a frame, and each step's frames as tensors.

A target is an active pedestrian row (flag not 0, class pedestrian) clipped to the image; rows
less visible than ``min_visibility`` are *crowd* boxes: no training target, and in the
evaluation a region where a detection is neither a hit nor a false positive.

:class:`StepFrames` is the trainer's data: item ``step`` is a process's share of that step's
frames, read (decoded or rendered), flipped and turned into tensors. Everything about a step is
drawn from a generator seeded by (seed, step), so a ``torch.utils.data.DataLoader`` may read
steps ahead in worker processes (``workers``) and any process draws what one process would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepmot.data.sequence import Sequence

__all__ = ["StepFrames", "frame_targets", "read_frame", "sampling_weights"]


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


def read_frame(sequence: Sequence, frame: int, flip: bool, min_visibility: float) -> tuple:
    """``frame`` as a training sample: the image ``(3, H, W)`` float32 in [0, 1] and its
    target ``{"boxes": (N, 4) xyxy, "labels": (N,) int64, all 1}``, both mirrored left-right
    with ``flip``; crowd boxes are left out."""
    import torch

    from deepmot.data.frames import image_to_tensor

    image = image_to_tensor(sequence.read_image(frame))
    boxes, crowd = frame_targets(sequence, frame, min_visibility)
    boxes = torch.from_numpy(boxes[~crowd])
    if flip:
        width = image.shape[-1]
        image = image.flip(-1)
        boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
    return image, {"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64)}


def sampling_weights(
    sequences: list[Sequence], synthetic_share: float | None
) -> list[float] | None:
    """Each sequence's chance to be drawn for a frame (see
    :attr:`~deepmot.detection.config.DetectorTrainConfig.synthetic_share`): None keeps every
    sequence equally likely; otherwise the synthetic scenes (rendered frames) share
    ``synthetic_share`` equally and the real sequences the rest in proportion to their frames.
    Where one of the two kinds is absent the other takes everything."""
    from deepmot.data.frames import RenderedFrames

    if synthetic_share is None:
        return None
    synthetic = [isinstance(s.frame_source, RenderedFrames) for s in sequences]
    n_synthetic = sum(synthetic)
    real_frames = sum(s.seq_length for s, syn in zip(sequences, synthetic, strict=True) if not syn)
    if n_synthetic == 0 or real_frames == 0:
        share = 1.0 if real_frames == 0 else 0.0
    else:
        share = synthetic_share
    return [
        share / n_synthetic if syn else (1.0 - share) * s.seq_length / real_frames
        for s, syn in zip(sequences, synthetic, strict=True)
    ]


class StepFrames:
    """A map-style dataset (``torch.utils.data``) of training steps: item ``step`` is
    ``(images, targets, seeds)`` for this process's share of the step's ``batch_size``
    random frames (frames ``rank, rank + world_size, ...`` of the batch), half of them flipped
    when ``flip``; ``seeds (share, 2)`` int64 seed each frame's RPN and box-head samplers.

    Args:
        sequences: sequences with frames and ground truth.
        batch_size: the global batch (frames per step, all processes together).
        seed: the run's seed.
        flip, min_visibility: as :class:`~deepmot.detection.config.DetectorTrainConfig`.
        rank, world_size: this process's place (0 of 1: the whole batch).
        weights: each sequence's chance to be drawn (:func:`sampling_weights`; None: equal).
    """

    def __init__(
        self,
        sequences: list[Sequence],
        batch_size: int,
        seed: int,
        flip: bool = True,
        min_visibility: float = 0.25,
        rank: int = 0,
        world_size: int = 1,
        weights: list[float] | None = None,
    ) -> None:
        if weights is not None and len(weights) != len(sequences):
            raise ValueError(f"{len(weights)} weights for {len(sequences)} sequences")
        self.weights = None if weights is None else np.asarray(weights) / np.sum(weights)
        self.sequences = sequences
        self.batch_size = batch_size
        self.seed = seed
        self.flip = flip
        self.min_visibility = min_visibility
        self.rank = rank
        self.world_size = world_size

    def draw(self, step: int) -> list[tuple[int, int, bool, tuple[int, int]]]:
        """The whole batch of ``step``: ``(sequence index, frame, flipped, sampler seeds)``
        per frame, the same in every process."""
        rng = np.random.default_rng([self.seed, step])
        picks = []
        for _ in range(self.batch_size):
            if self.weights is None:
                index = int(rng.integers(len(self.sequences)))
            else:
                index = int(rng.choice(len(self.sequences), p=self.weights))
            frame = int(rng.integers(1, self.sequences[index].seq_length + 1))
            picks.append((index, frame, bool(self.flip and rng.uniform() < 0.5)))
        seeds = rng.integers(2**62, size=(self.batch_size, 2))
        return [(*p, (int(a), int(b))) for p, (a, b) in zip(picks, seeds, strict=True)]

    def __getitem__(self, step: int) -> tuple[list, list[dict[str, Any]], Any]:
        import torch

        images, targets, seeds = [], [], []
        for index, frame, flip, seed in self.draw(step)[self.rank :: self.world_size]:
            image, target = read_frame(self.sequences[index], frame, flip, self.min_visibility)
            images.append(image)
            targets.append(target)
            seeds.append(seed)
        return images, targets, torch.tensor(seeds, dtype=torch.int64).reshape(-1, 2)
