"""SORT (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016), and the pieces that
ByteTrack and OC-SORT share with it.

SORT is a Kalman filter per track and one Hungarian assignment per frame on IoU:

1. every track's filter predicts its box in this frame;
2. tracks and detections are matched one-to-one (Hungarian, :func:`~deepmot.assign.hungarian.
   linear_assignment`), pairs below ``iou_threshold`` forbidden;
3. a matched track's filter is updated with its detection; every unmatched detection opens a
   new track;
4. a track is reported while it was matched in this frame and has been matched in
   ``min_hits`` consecutive frames after the one that opened it (in the first ``min_hits``
   frames of a sequence every track with a detection is reported, as the reference
   implementation does); its box is the filter's corrected state;
5. a track unmatched for more than ``max_age`` frames is dropped.

Differences from the reference (``abewley/sort``), shared with :mod:`~deepmot.trackers.
bytetrack` and :mod:`~deepmot.trackers.ocsort`: the filter is deepmot's
:class:`~deepmot.trackers.kalman.KalmanBoxFilter` (DeepSORT's and ByteTrack's state ``(cx, cy,
a, h)`` with noise proportional to the height) rather than SORT's ``(cx, cy, area, ratio)``
filter with fixed noise; ids are given when a track is first reported, so they have no gaps
(the reference numbers every candidate); boxes are clipped to the image when its size is known.
A detection scored exactly ``-1`` (MOTChallenge's "no score", as in the cleaned detection
files) counts as scored 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deepmot.assign.hungarian import linear_assignment
from deepmot.boxes import box_iou
from deepmot.trackers.base import Tracker
from deepmot.trackers.kalman import KalmanBoxFilter, KalmanConfig, xyah_to_xyxy, xyxy_to_xyah
from deepmot.trackers.registry import register_standalone

__all__ = [
    "FilterBank",
    "FilterTracker",
    "SortConfig",
    "SortTracker",
    "detection_scores",
    "iou_matrix",
    "match",
    "tracks_tensor",
]


# --------------------------------------------------------------------------- shared pieces


def detection_scores(dets: Tensor) -> np.ndarray:
    """``(K,)`` float64 scores of ``dets (K, 6)``; a score of exactly -1 (no score) reads as 1."""
    scores = dets[:, 4].double().numpy().copy()
    scores[scores == -1.0] = 1.0
    return scores


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``(A, B)`` float64 IoU between ``boxes_a (A, 4)`` and ``boxes_b (B, 4)`` xyxy."""
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros((len(boxes_a), len(boxes_b)))
    iou = box_iou(
        torch.as_tensor(boxes_a, dtype=torch.float64), torch.as_tensor(boxes_b, dtype=torch.float64)
    )
    return iou.numpy()


def match(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hungarian matching of ``cost (A, B)`` with pairs costing more than ``max_cost``
    forbidden: ``matches (P, 2)``, unmatched rows, unmatched columns (int64, ascending)."""
    return linear_assignment(cost, threshold=max_cost)


def tracks_tensor(
    boxes: np.ndarray, ids: list[int], scores: list[float], image_size: tuple[int, int] | None
) -> Tensor:
    """``(T, 6)`` float32 xyxy + id + score sorted by id, boxes clipped to ``image_size``."""
    if len(ids) == 0:
        return torch.zeros((0, 6))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    if image_size is not None:
        width, height = image_size
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    out = np.concatenate([boxes, np.array(ids)[:, None], np.array(scores)[:, None]], axis=1)
    return torch.from_numpy(out[np.argsort(out[:, 4], kind="stable")]).float()


class FilterBank:
    """One :class:`~deepmot.trackers.kalman.KalmanBoxFilter` state per track, batched.

    ``mean (T, 8)``, ``cov (T, 8, 8)`` float64, rows in the order of the tracker's track list.
    """

    def __init__(self, config: KalmanConfig | None = None) -> None:
        self.filter = KalmanBoxFilter(config)
        self.reset()

    def reset(self) -> None:
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))

    def __len__(self) -> int:
        return len(self.mean)

    @property
    def boxes(self) -> np.ndarray:
        """``(T, 4)`` xyxy of the current states."""
        return xyah_to_xyxy(self.mean[:, :4], self.filter.config.min_size)

    def add(self, boxes: np.ndarray) -> None:
        """New states (zero velocity) from ``boxes (K, 4)`` xyxy, appended."""
        mean, cov = self.filter.initiate(xyxy_to_xyah(boxes).reshape(-1, 4))
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])

    def keep(self, rows: np.ndarray) -> None:
        """Keep only the states at ``rows`` (bool mask or indices), in that order."""
        self.mean, self.cov = self.mean[rows], self.cov[rows]

    def predict(self, hold_height: np.ndarray | None = None) -> None:
        """Every state one frame ahead; rows in ``hold_height (T,) bool`` lose their height
        velocity first (ByteTrack does so for tracks that are not being tracked)."""
        if len(self) == 0:
            return
        if hold_height is not None:
            self.mean[hold_height, 7] = 0.0
        self.mean, self.cov = self.filter.predict(self.mean, self.cov)

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct the states at ``rows (P,)`` with measured ``boxes (P, 4)`` xyxy."""
        if len(rows) == 0:
            return
        z = xyxy_to_xyah(np.asarray(boxes).reshape(-1, 4))
        self.mean[rows], self.cov[rows] = self.filter.update(self.mean[rows], self.cov[rows], z)


# --------------------------------------------------------------------------- SORT


@dataclass(frozen=True)
class SortConfig:
    """SORT's settings; defaults from the paper (Sec. 3.3-3.4) and ``abewley/sort``'s
    ``sort.py`` (``Sort(max_age=1, min_hits=3, iou_threshold=0.3)``).

    Attributes:
        iou_threshold: least IoU of a track-detection match (``IOU_min = 0.3``).
        max_age: frames a track may go unmatched before it is dropped (``T_Lost = 1``).
        min_hits: consecutive matched frames before a track is reported (``min_hits = 3``).
        min_score: detections scored below this are ignored (the reference feeds its
            detector's output after its own threshold; None keeps every detection).
    """

    iou_threshold: float = 0.3
    max_age: int = 1
    min_hits: int = 3
    min_score: float | None = None

    def __post_init__(self) -> None:
        _check_unit(self, "iou_threshold")
        _check_counts(self, "max_age", "min_hits")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SortConfig:
        return cls(**values)


def _check_unit(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_counts(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


@dataclass(eq=False)
class _SortTrack:
    id: int = 0  # 0 until first reported
    score: float = 0.0
    hits: int = 0  # matches after the detection that opened it, as in the reference
    hit_streak: int = 0
    time_since_update: int = 0


class FilterTracker(Tracker):
    """What SORT, ByteTrack and OC-SORT share: a config (``config_class``'s defaults when
    none is given), a :class:`FilterBank` and the per-sequence state ``reset`` clears (tracks,
    the next id, the frame count)."""

    config_class: type

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.config_class()
        self.bank = FilterBank()
        self.reset()

    def reset(self, image_size: tuple[int, int] | None = None) -> None:
        self.image_size = image_size
        self.tracks: list[Any] = []
        self.bank.reset()
        self.next_id = 1
        self.frame_count = 0


class SortTracker(FilterTracker):
    """SORT (see the module doc): Kalman prediction, Hungarian IoU matching, ``min_hits`` and
    ``max_age`` lifecycle.

    Args:
        config: :class:`SortConfig` (None: the paper's defaults).
    """

    config_class = SortConfig

    def _update(self, dets: Tensor, frame: np.ndarray | Tensor | None) -> Tensor:
        cfg = self.config
        self.frame_count += 1
        scores = detection_scores(dets)
        boxes = dets[:, :4].double().numpy()
        if cfg.min_score is not None:
            boxes, scores = boxes[scores >= cfg.min_score], scores[scores >= cfg.min_score]

        self.bank.predict()
        for track in self.tracks:
            if track.time_since_update > 0:
                track.hit_streak = 0
            track.time_since_update += 1
        iou = iou_matrix(self.bank.boxes, boxes)
        matches, _, new = match(1.0 - iou, 1.0 - cfg.iou_threshold)
        self.bank.update(matches[:, 0], boxes[matches[:, 1]])
        for row, col in matches:
            track = self.tracks[row]
            track.time_since_update = 0
            track.hits += 1
            track.hit_streak += 1
            track.score = float(scores[col])
        self.bank.add(boxes[new])
        self.tracks += [_SortTrack(score=float(scores[col])) for col in new]

        shown = [
            i
            for i, t in enumerate(self.tracks)
            if t.time_since_update < 1
            and (t.hit_streak >= cfg.min_hits or self.frame_count <= cfg.min_hits)
        ]
        for i in shown:
            if self.tracks[i].id == 0:
                self.tracks[i].id = self.next_id
                self.next_id += 1
        out = tracks_tensor(
            self.bank.boxes[shown],
            [self.tracks[i].id for i in shown],
            [self.tracks[i].score for i in shown],
            self.image_size,
        )
        alive = np.array([t.time_since_update <= cfg.max_age for t in self.tracks], dtype=bool)
        self.tracks = [t for t, keep in zip(self.tracks, alive, strict=True) if keep]
        self.bank.keep(alive)
        return out


@register_standalone("sort", config=SortConfig)
def sort(config: SortConfig) -> SortTracker:
    """SORT (Bewley et al. 2016): Kalman filter + Hungarian matching on IoU."""
    return SortTracker(config)
