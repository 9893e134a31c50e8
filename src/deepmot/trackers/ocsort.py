"""OC-SORT (Cao et al., "Observation-Centric SORT: Rethinking SORT for Robust Multi-Object
Tracking", CVPR 2023): SORT with three observation-centric changes.

Each frame (``OCSort.update`` in ``noahcao/OC_SORT``):

1. detections scored at most ``det_thresh`` are dropped; every track's Kalman filter predicts;
2. **first association with momentum (OCM)**: cost ``-(IoU + inertia * score * angle)``, pairs
   below ``iou_threshold`` forbidden, where ``angle = (pi/2 - |theta|) / pi`` and ``theta`` is
   the angle between the track's direction (from the observation ``delta_t`` frames back to its
   last one) and the direction from that older observation to the detection; a track without
   observations has no momentum term;
3. **observation-centric recovery (OCR)**: detections and tracks left are matched by IoU
   between the detection and the track's *last observation* (not its prediction);
4. a matched track's filter is updated; if it had missed frames, first **re-updated along a
   virtual trajectory (ORU)**: its state is restored to the prediction of its first missed
   frame and updated, frame by frame, with boxes interpolated linearly between its last
   observation and the new detection (the last of which is the detection);
5. unmatched detections open tracks; a track is reported while matched in this frame with
   ``min_hits`` consecutive matches (every matched track in a sequence's first ``min_hits``
   frames), at its last observation; a track unmatched for more than ``max_age`` frames goes.

As in the reference, a track's first detection is not an observation (its momentum starts
at its second match). The filter, the assignment and the score convention are shared with
:mod:`~deepmot.trackers.sort` (see there for the differences from the references); in step 4
the detection is applied once, as the last virtual box (the reference updates with it a second
time after the re-update).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from deepmot.trackers.kalman import xyxy_to_xyah
from deepmot.trackers.registry import register_standalone
from deepmot.trackers.sort import (
    FilterTracker,
    _check_counts,
    _check_unit,
    detection_scores,
    iou_matrix,
    match,
    tracks_tensor,
)

__all__ = ["OCSortConfig", "OCSortTracker", "directions"]


@dataclass(frozen=True)
class OCSortConfig:
    """OC-SORT's settings; defaults from the paper (Sec. 4, implementation details) and
    ``noahcao/OC_SORT`` (``trackers/ocsort_tracker/ocsort.py``, ``tools/run_ocsort.py``
    arguments for MOT17).

    Attributes:
        det_thresh: detections scored at most this are dropped (``--track_thresh 0.6``).
        iou_threshold: least IoU of a match, both rounds (``--iou_thresh 0.3``).
        max_age: frames a track may go unmatched before it is dropped (``max_age=30``).
        min_hits: consecutive matches before a track is reported (``--min_hits 3``).
        delta_t: frames back to the observation a track's direction is measured from
            (``--deltat 3``).
        inertia: weight of the direction term in the first association (``--inertia 0.2``).
    """

    det_thresh: float = 0.6
    iou_threshold: float = 0.3
    max_age: int = 30
    min_hits: int = 3
    delta_t: int = 3
    inertia: float = 0.2

    def __post_init__(self) -> None:
        _check_unit(self, "iou_threshold")
        _check_counts(self, "max_age", "min_hits", "delta_t")
        if self.delta_t < 1:
            raise ValueError(f"delta_t must be >= 1, got {self.delta_t}")
        if not math.isfinite(self.inertia) or self.inertia < 0:
            raise ValueError(f"inertia must be finite and >= 0, got {self.inertia}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OCSortConfig:
        return cls(**values)


def directions(origins: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Unit directions between box centres.

    Args:
        origins: ``(A, 4)`` xyxy.
        targets: ``(B, 4)`` xyxy.

    Returns:
        ``(A, B, 2)`` float64 ``(dy, dx)`` from each origin's centre to each target's, divided
        by their distance plus ``1e-6`` (as the reference's ``speed_direction_batch``; a zero
        displacement gives ``(0, 0)``).
    """
    a = (origins[:, None, :2] + origins[:, None, 2:]) / 2
    b = (targets[None, :, :2] + targets[None, :, 2:]) / 2
    d = (b - a)[..., ::-1]  # (dy, dx)
    return d / (np.linalg.norm(d, axis=-1, keepdims=True) + 1e-6)


@dataclass(eq=False)
class _Track:
    score: float
    id: int = 0  # 0 until first reported
    age: int = 0
    hits: int = 0
    hit_streak: int = 0
    time_since_update: int = 0
    observations: dict[int, np.ndarray] = field(default_factory=dict)  # age -> (4,) xyxy
    last_observation: np.ndarray | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # (dy, dx), unit
    observed: bool = False  # matched in the previous frame (the reference's kf.observed)
    saved: tuple[np.ndarray, np.ndarray] | None = None  # filter state of the first missed frame
    missed: int = 0  # frames missed since the last observation

    def previous_observation(self, delta_t: int) -> np.ndarray | None:
        """The observation ``delta_t`` frames back, else the nearest later one, else the last
        (the reference's ``k_previous_obs``); None without observations."""
        if not self.observations:
            return None
        for dt in range(delta_t, 0, -1):
            if self.age - dt in self.observations:
                return self.observations[self.age - dt]
        return self.observations[max(self.observations)]


class OCSortTracker(FilterTracker):
    """OC-SORT (see the module doc): SORT with momentum, recovery by last observation and
    re-update along a virtual trajectory.

    Args:
        config: :class:`OCSortConfig` (None: the paper's MOT17 defaults).
    """

    config_class = OCSortConfig

    def _update(self, dets: Tensor, frame: np.ndarray | Tensor | None) -> Tensor:
        cfg = self.config
        self.frame_count += 1
        scores = detection_scores(dets)
        keep = scores > cfg.det_thresh
        boxes, scores = dets[:, :4].double().numpy()[keep], scores[keep]

        self.bank.predict()
        for track in self.tracks:
            track.age += 1
            if track.time_since_update > 0:
                track.hit_streak = 0
            track.time_since_update += 1

        pairs, rows, cols = self._first_association(boxes, scores)
        matched = [(int(r), int(c)) for r, c in pairs]
        if len(rows) and len(cols):
            last = np.array([self._last_box(self.tracks[r]) for r in rows])
            iou = iou_matrix(last, boxes[cols])
            again, rest, cols_left = match(1.0 - iou, 1.0 - cfg.iou_threshold)
            matched += [(int(rows[r]), int(cols[c])) for r, c in again]
            rows, cols = rows[rest], cols[cols_left]

        for row, col in matched:
            self._observe(row, boxes[col], float(scores[col]))
        for row in rows:
            track = self.tracks[row]
            if track.observed:
                track.saved = (self.bank.mean[row].copy(), self.bank.cov[row].copy())
            track.observed = False
            track.missed += 1
        self.bank.add(boxes[cols])
        self.tracks += [_Track(score=float(scores[c])) for c in cols]

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
            np.array([self._last_box(self.tracks[i], i) for i in shown]),
            [self.tracks[i].id for i in shown],
            [self.tracks[i].score for i in shown],
            self.image_size,
        )
        alive = np.array([t.time_since_update <= cfg.max_age for t in self.tracks], dtype=bool)
        self.tracks = [t for t, k in zip(self.tracks, alive, strict=True) if k]
        self.bank.keep(alive)
        return out

    def _last_box(self, track: _Track, row: int | None = None) -> np.ndarray:
        """The track's last observation; without one, its filter's box (row given) or a box
        that overlaps nothing (the reference's ``[-1, -1, -1, -1]`` placeholder)."""
        if track.last_observation is not None:
            return track.last_observation
        if row is not None:
            return self.bank.boxes[row]
        return np.full(4, -1.0)

    def _first_association(
        self, boxes: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """IoU plus the momentum term, gated at ``iou_threshold``: ``(matches, unmatched track
        rows, unmatched detection indices)``."""
        cfg = self.config
        iou = iou_matrix(self.bank.boxes, boxes)
        bonus = np.zeros_like(iou)
        previous = [t.previous_observation(cfg.delta_t) for t in self.tracks]
        valid = np.array([p is not None for p in previous], dtype=bool)
        if valid.any() and len(boxes):
            origins = np.array([p for p in previous if p is not None])
            to_dets = directions(origins, boxes)  # (V, K, 2)
            velocity = np.array([t.velocity for t, v in zip(self.tracks, valid, strict=True) if v])
            cos = np.clip(np.einsum("vkc,vc->vk", to_dets, velocity), -1.0, 1.0)
            angle = (np.pi / 2 - np.abs(np.arccos(cos))) / np.pi
            bonus[valid] = cfg.inertia * angle * scores[None]
        cost = -(iou + bonus)
        cost[iou < cfg.iou_threshold] = np.inf
        return match(cost, math.inf)

    def _observe(self, row: int, box: np.ndarray, score: float) -> None:
        """Update track ``row`` with its detection: direction, observations, and the filter
        (after the re-update along the virtual trajectory if it had missed frames)."""
        track = self.tracks[row]
        if track.last_observation is not None:
            origin = track.previous_observation(self.config.delta_t)
            track.velocity = directions(origin[None], box[None])[0, 0]
        if not track.observed and track.saved is not None and track.last_observation is not None:
            gap = track.missed + 1
            start = track.last_observation
            mean, cov = track.saved
            kf = self.bank.filter
            mean, cov = mean[None], cov[None]
            for step in range(1, gap + 1):
                virtual = start + (box - start) * step / gap
                mean, cov = kf.update(mean, cov, xyxy_to_xyah(virtual[None]))
                if step < gap:
                    mean, cov = kf.predict(mean, cov)
            self.bank.mean[row], self.bank.cov[row] = mean[0], cov[0]
        else:
            self.bank.update(np.array([row]), box[None])
        track.last_observation = box.copy()
        track.observations[track.age] = box.copy()
        track.observed, track.saved, track.missed = True, None, 0
        track.time_since_update = 0
        track.hits += 1
        track.hit_streak += 1
        track.score = score


@register_standalone("ocsort", config=OCSortConfig)
def ocsort(config: OCSortConfig) -> OCSortTracker:
    """OC-SORT (Cao et al. 2023): SORT with observation-centric momentum, recovery and
    re-update."""
    return OCSortTracker(config)
