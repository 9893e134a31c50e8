"""Training samples for trackers: where a clip starts, its tracks, and the evaluator's matching.

A training sample is a clip of ``L`` consecutive frames ``s .. s + L − 1`` of a sequence's
training frames (``L = 2``: the paper's frame pairs). :class:`ClipSampler` draws the start
frame and builds the tracks the clip starts from: one per ground-truth object at ``s``, with
its recent ground-truth boxes as history, then the :class:`~deepmot.train.config.
AugmentationConfig` applied — the last box perturbed (supp. A.2), objects dropped, false
tracks added, ids swapped. The trainer then lets the tracker run on its own outputs through
the clip (:mod:`deepmot.train.rollout`), using :func:`clear_matches` — the evaluator's
matching rule — to decide which tracks live on and which objects are born.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepmot.data.samplers import perturb_boxes
from deepmot.data.sequence import Sequence
from deepmot.engine.prefetch import PrefetchedFrames
from deepmot.errors import DeepMOTError
from deepmot.train.config import AugmentationConfig

__all__ = [
    "ClipSampler",
    "ClipStart",
    "StepClipFrames",
    "jitter_boxes",
    "perturb_some",
]


@dataclass
class ClipStart:
    """The state a training clip starts from.

    Attributes:
        sequence: the sequence; frames ``start .. start + length − 1`` (1-based).
        start: the first frame, where the tracks are.
        length: frames in the clip (the tracker predicts the ``length − 1`` after ``start``).
        histories: one ``(n_i, 4)`` float32 xyxy array per track, oldest first, the last row at
            ``start``.
        track_ids: ``(T,)`` int64 tracker ids (1, 2, ... before swaps).
        targets: ``(T,)`` int64, the gt id each track follows (negative: a false track).
        memory: ``{gt_id: track_id}``: which track each object was matched to at ``start``.
    """

    sequence: Sequence
    start: int
    length: int
    histories: list[np.ndarray]
    track_ids: np.ndarray
    targets: np.ndarray
    memory: dict[int, int]


def jitter_boxes(
    boxes: np.ndarray, rng: np.random.Generator, augment: AugmentationConfig
) -> np.ndarray:
    """``boxes (..., 4)`` xyxy with Gaussian noise of ``augment.jitter`` times each box's width
    (x coordinates) and height (y coordinates); the boxes keep a positive size."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if augment.jitter <= 0 or boxes.size == 0:
        return boxes
    size = np.concatenate([boxes[..., 2:] - boxes[..., :2]] * 2, axis=-1)
    out = boxes + rng.normal(0.0, augment.jitter, boxes.shape) * size
    out[..., 2:] = np.maximum(out[..., 2:], out[..., :2] + 1.0)
    return out.astype(np.float32)


def perturb_some(
    boxes: np.ndarray, rng: np.random.Generator, augment: AugmentationConfig
) -> np.ndarray:
    """``boxes (K, 4)`` xyxy jittered (:func:`jitter_boxes`), then each rescaled and shifted
    with probability ``augment.perturb`` (see :func:`~deepmot.data.samplers.perturb_boxes`)."""
    boxes = jitter_boxes(np.asarray(boxes, dtype=np.float32).reshape(-1, 4), rng, augment)
    moved = perturb_boxes(boxes, rng, augment.scale_range, augment.max_offset)
    chosen = rng.uniform(size=len(boxes)) < augment.perturb
    return np.where(chosen[:, None], moved, boxes).astype(np.float32)


class ClipSampler:
    """Draws :class:`ClipStart` s from the training frames of sequences with ground truth.

    Args:
        sequences: sequences with ground truth.
        length: frames per clip (>= 2).
        history_len: ground-truth boxes of history per starting track.
        train_fraction: the share of each sequence's first frames clips lie in.
        augment: the trajectory augmentation.
    """

    def __init__(
        self,
        sequences: list[Sequence],
        length: int,
        history_len: int,
        train_fraction: float,
        augment: AugmentationConfig,
    ) -> None:
        if length < 2:
            raise ValueError(f"length must be >= 2, got {length}")
        self.sequences = sequences
        self.length = length
        self.history_len = history_len
        self.augment = augment
        self.starts: list[tuple[int, int]] = []  # (sequence index, start frame)
        self.boxes: list[dict[tuple[int, int], np.ndarray]] = []  # (gt id, frame) -> box
        for index, seq in enumerate(sequences):
            if seq.gt is None:
                raise DeepMOTError(f"sequence {seq.name} has no ground truth to train on")
            last = int(seq.seq_length * train_fraction)
            lookup = {}
            for frame in range(1, last + 1):
                gt = seq.gt_at(frame).active_pedestrians()
                for gid, box in zip(gt.ids.tolist(), gt.boxes, strict=True):
                    lookup[(gid, frame)] = box
                if frame + length - 1 <= last and len(gt.ids):
                    self.starts.append((index, frame))
            self.boxes.append(lookup)
        if not self.starts:
            raise DeepMOTError(
                f"no training clips of {length} frames: the sequences' training frames "
                f"(first {train_fraction:.0%}) are too short or hold no objects"
            )

    def sample(self, rng: np.random.Generator, count: int) -> list[ClipStart]:
        """``count`` clip starts drawn with ``rng`` (uniformly over the possible starts)."""
        return [
            self._start(*self.starts[int(k)], rng)
            for k in rng.integers(len(self.starts), size=count)
        ]

    def _start(self, index: int, start: int, rng: np.random.Generator) -> ClipStart:
        seq, lookup, aug = self.sequences[index], self.boxes[index], self.augment
        gt = seq.gt_at(start).active_pedestrians()
        kept = rng.uniform(size=len(gt.ids)) >= aug.drop
        gids = gt.ids[kept]
        histories = [
            np.stack(
                [
                    lookup[(g, f)]
                    for f in range(start - self.history_len + 1, start + 1)
                    if (g, f) in lookup
                ]
            )
            for g in gids.tolist()
        ]
        if histories:
            histories = [
                np.concatenate([jitter_boxes(h[:-1], rng, aug), h[-1:]]) for h in histories
            ]
            last = perturb_some(np.stack([h[-1] for h in histories]), rng, aug)
            for h, box in zip(histories, last, strict=True):
                h[-1] = box
        track_ids = np.arange(1, len(gids) + 1, dtype=np.int64)
        memory = {int(g): int(t) for g, t in zip(gids, track_ids, strict=True)}
        targets = gids.astype(np.int64)
        swapping = rng.permutation(np.flatnonzero(rng.uniform(size=len(track_ids)) < aug.swap))
        for first, second in zip(swapping[0::2], swapping[1::2], strict=False):
            track_ids[[first, second]] = track_ids[[second, first]]
        n_false = int(rng.poisson(aug.false_tracks)) if aug.false_tracks > 0 else 0
        if n_false:
            width, height = seq.im_width or 1920, seq.im_height or 1080
            sizes = gt.boxes[:, 2:] - gt.boxes[:, :2]
            typical = np.median(sizes, axis=0) if len(sizes) else np.array([width / 20, height / 8])
            size = typical * rng.uniform(0.7, 1.3, (n_false, 1))
            corner = rng.uniform([0, 0], np.maximum([width, height] - size, 1), size=(n_false, 2))
            for box in np.concatenate([corner, corner + size], axis=1).astype(np.float32):
                histories.append(box[None])
            track_ids = np.concatenate([track_ids, len(gids) + 1 + np.arange(n_false)])
            targets = np.concatenate([targets, -1 - np.arange(n_false)])
        return ClipStart(seq, start, self.length, histories, track_ids, targets, memory)


class StepClipFrames:
    """A map-style dataset of training steps: item ``step`` is ``{sequence index: {frame:
    image}}``, every frame of this process's clips of ``step`` (the clips
    ``rank, rank + world_size, ...`` of ``sampler.sample(default_rng([seed, step]),
    batch_size)``, as the trainer draws them), read from the sequences' own frame sources."""

    def __init__(
        self, sampler: ClipSampler, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def __getitem__(self, step: int) -> dict[int, dict[int, np.ndarray]]:
        rng = np.random.default_rng([self.seed, step])
        starts = self.sampler.sample(rng, self.batch_size)[self.rank :: self.world_size]
        index = {id(s): i for i, s in enumerate(self.sampler.sequences)}
        frames: dict[int, dict[int, np.ndarray]] = {}
        for start in starts:
            source = start.sequence.frame_source
            source = source.source if isinstance(source, PrefetchedFrames) else source
            read = frames.setdefault(index[id(start.sequence)], {})
            for frame in range(start.start, start.start + start.length):
                if frame not in read:
                    read[frame] = source.read(frame)
        return frames
