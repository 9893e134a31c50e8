"""Frame-pair sampling: the paper's GT perturbation, and simulated trackers for loss studies.

All randomness comes from an explicit ``numpy.random.Generator``. Boxes are ``(K, 4)`` xyxy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepmot.data.sequence import FrameGT, Sequence

__all__ = [
    "perturb_boxes",
    "TrackErrors",
    "corrupt_tracks",
    "CorruptedPair",
    "sample_frames",
    "sample_corrupted_pairs",
]


def perturb_boxes(
    boxes: np.ndarray,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.8, 1.2),
    max_offset: float = 0.25,
) -> np.ndarray:
    """The supplementary's augmentation of ground-truth boxes that initialise tracks (A.2).

    Each box is rescaled about its centre by a factor drawn from ``scale_range`` and shifted by
    up to ``max_offset`` of its width horizontally and of its height vertically (either sign).

    Args:
        boxes: ``(K, 4)`` xyxy.
        rng: the random generator.

    Returns:
        ``(K, 4)`` float32 xyxy.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    k = len(boxes)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    scale = rng.uniform(*scale_range, size=(k, 1))
    offset = rng.uniform(-max_offset, max_offset, size=(k, 2)) * size
    centre = centre + offset
    half = size * scale / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


@dataclass(frozen=True)
class TrackErrors:
    """How a simulated tracker gets a frame wrong.

    ``noise``: box jitter, as a fraction of the box size (standard deviation); ``drop``:
    probability of missing an object; ``swap``: probability, per object, of exchanging its id
    with another object's; ``false_positives``: mean number of spurious boxes (Poisson).
    """

    noise: float = 0.05
    drop: float = 0.0
    swap: float = 0.0
    false_positives: float = 0.0


def corrupt_tracks(
    boxes: np.ndarray,
    ids: np.ndarray,
    rng: np.random.Generator,
    errors: TrackErrors,
    image_size: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """A tracker output made from the ground truth of a frame by the given errors.

    Args:
        boxes: ``(K, 4)`` xyxy ground truth; ids: ``(K,)`` its ids.
        rng: the random generator.
        errors: :class:`TrackErrors`.
        image_size: ``(width, height)``, where false positives are drawn.

    Returns:
        ``(boxes (T, 4) float32 xyxy, ids (T,) int64)``; false positives get fresh ids above
        every ground-truth id.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.int64).copy()
    first_spurious_id = int(ids.max(initial=0)) + 1
    k = len(boxes)
    size = boxes[:, 2:] - boxes[:, :2]
    jitter = rng.normal(0, errors.noise, size=(k, 4)) * np.tile(size, 2)
    out = boxes + jitter
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1)
    swapping = np.flatnonzero(rng.uniform(size=k) < errors.swap)
    if len(swapping) >= 2:
        ids[swapping] = ids[rng.permutation(swapping)]
    keep = rng.uniform(size=k) >= errors.drop
    out, ids = out[keep], ids[keep]
    n_fp = rng.poisson(errors.false_positives)
    if n_fp:
        width, height = image_size
        typical = np.median(size, axis=0) if k else np.array([width / 20, height / 8])
        corner = rng.uniform([0, 0], [width, height], size=(n_fp, 2))
        fp_boxes = np.concatenate(
            [corner, corner + typical * rng.uniform(0.7, 1.3, (n_fp, 1))], axis=1
        )
        out = np.concatenate([out, fp_boxes])
        ids = np.concatenate([ids, first_spurious_id + np.arange(n_fp)])
    return out.astype(np.float32), ids


@dataclass(frozen=True)
class CorruptedPair:
    """A frame pair (t − 1, t) with a simulated tracker output at t.

    ``gt``: the active pedestrians at t; ``tracks (T, 4) float32`` xyxy and ``track_ids (T,)``:
    the corrupted output; ``memory``: ``{gt_id: track_id}`` at t − 1 (tracks start from the
    ground truth there, so each object is its own track); ``errors``: what was drawn.
    """

    sequence: Sequence
    frame: int
    gt: FrameGT
    tracks: np.ndarray
    track_ids: np.ndarray
    memory: dict[int, int]
    errors: TrackErrors


def sample_frames(
    sequences: list[Sequence], count: int, rng: np.random.Generator
) -> list[tuple[Sequence, int, FrameGT, dict[int, int]]]:
    """Random frames t >= 2 with objects, as ``(sequence, t, active gt at t, memory)``.

    ``memory`` maps every object of frame t − 1 to itself: tracks that start from the ground
    truth at t − 1 carry its ids.
    """
    usable = [s for s in sequences if s.gt is not None and len(s) >= 2]
    if not usable:
        raise ValueError("need at least one sequence with ground truth and two frames")
    frames = []
    while len(frames) < count:
        seq = usable[rng.integers(len(usable))]
        t = int(rng.integers(2, len(seq) + 1))
        now = seq.gt_at(t).active_pedestrians()
        if len(now.ids):
            memory = {int(g): int(g) for g in seq.gt_at(t - 1).active_pedestrians().ids}
            frames.append((seq, t, now, memory))
    return frames


def sample_corrupted_pairs(
    sequences: list[Sequence],
    count: int,
    rng: np.random.Generator,
    worst: TrackErrors = TrackErrors(noise=0.3, drop=0.4, swap=0.4, false_positives=0.3),
) -> list[CorruptedPair]:
    """Random frame pairs of ``sequences`` (see :func:`sample_frames`) tracked with random errors.

    Each pair draws its noise, drop and swap uniformly between 0 and ``worst``'s, and a mean
    number of false positives between 0 and ``worst.false_positives`` times the object count,
    so the pairs span good and bad trackers.
    """
    pairs: list[CorruptedPair] = []
    for seq, t, now, memory in sample_frames(sequences, count, rng):
        errors = TrackErrors(
            noise=rng.uniform(0, worst.noise),
            drop=rng.uniform(0, worst.drop),
            swap=rng.uniform(0, worst.swap),
            false_positives=rng.uniform(0, worst.false_positives) * len(now.ids),
        )
        size = (seq.im_width, seq.im_height)
        tracks, track_ids = corrupt_tracks(now.boxes, now.ids, rng, errors, size)
        pairs.append(CorruptedPair(seq, t, now, tracks, track_ids, memory, errors))
    return pairs
