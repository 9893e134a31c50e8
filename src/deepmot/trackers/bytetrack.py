"""ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection
Box", ECCV 2022): SORT-like tracking that also associates the low-score detections.

Each frame (``BYTETracker.update`` in ``ifzhang/ByteTrack``):

1. detections are split by score: *high* above ``track_thresh``, *low* between ``low_thresh``
   and ``track_thresh``;
2. the Kalman filters of the tracked and the lost tracks predict (a track that is not being
   tracked keeps its height);
3. **first association**: tracked and lost tracks against the high detections, cost ``1 - IoU
   * score`` (``fuse_score``), pairs above ``match_thresh`` forbidden; a matched lost track is
   re-found with its id;
4. **second association**: the tracked tracks left against the low detections, cost ``1 -
   IoU``, pairs above ``low_match_thresh`` forbidden; tracked tracks still unmatched become
   lost;
5. tentative tracks (born in the previous frame) against the high detections left, cost
   ``1 - IoU * score``, pairs above ``unconfirmed_match_thresh`` forbidden: a match confirms
   the track, a miss removes it;
6. high detections left scored at least ``new_track_thresh`` open tentative tracks (confirmed
   at once in a sequence's first frame);
7. lost tracks unmatched for more than ``track_buffer`` frames are removed; a tracked (or
   newly opened) and a lost track overlapping by IoU above 0.85 (distance below 0.15) are
   duplicates: the younger one goes.

Reported: the confirmed, tracked tracks, at their filter's corrected state. The filter, the
assignment and the score convention are shared with :mod:`~deepmot.trackers.sort` (see there
for the differences from the references); ids are given at confirmation, so they have no gaps;
tentative tracks are predicted with the others (the reference leaves them where they were
born, which only changes their covariance: their velocity is zero).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch import Tensor

from deepmot.trackers.registry import register_standalone
from deepmot.trackers.sort import (
    FilterTracker,
    _check_counts,
    detection_scores,
    iou_matrix,
    match,
    tracks_tensor,
)

__all__ = ["ByteTrackConfig", "ByteTracker"]


@dataclass(frozen=True)
class ByteTrackConfig:
    """ByteTrack's settings; defaults from the paper (Sec. 4.1) and ``ifzhang/ByteTrack``
    (``tools/track.py`` arguments, ``yolox/tracker/byte_tracker.py``) for MOT17.

    Attributes:
        track_thresh: detections above this are *high* (``--track_thresh 0.5``).
        new_track_thresh: least score of a detection that opens a track (``det_thresh =
            track_thresh + 0.1``, 0.6).
        low_thresh: detections above this and up to ``track_thresh`` are *low* (``0.1``).
        match_thresh: largest cost ``1 - IoU * score`` of a first-association match
            (``--match_thresh 0.8``).
        low_match_thresh: largest cost ``1 - IoU`` of a second-association match (``0.5``).
        unconfirmed_match_thresh: largest cost of a tentative track's match (``0.7``).
        track_buffer: frames a lost track is kept (``--track_buffer 30``; the reference scales
            it by ``frame_rate / 30``, here it is in frames).
        fuse_score: multiply the IoU by the detection score in the first association and the
            tentative tracks' (the reference does so except with ``--mot20``).
        duplicate_iou: a tracked and a lost track overlapping above this are duplicates
            (``remove_duplicate_stracks``: IoU distance ``< 0.15``).
    """

    track_thresh: float = 0.5
    new_track_thresh: float = 0.6
    low_thresh: float = 0.1
    match_thresh: float = 0.8
    low_match_thresh: float = 0.5
    unconfirmed_match_thresh: float = 0.7
    track_buffer: int = 30
    fuse_score: bool = True
    duplicate_iou: float = 0.85

    def __post_init__(self) -> None:
        _check_counts(self, "track_buffer")
        for name in ("match_thresh", "low_match_thresh", "unconfirmed_match_thresh"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.low_thresh > self.track_thresh:
            raise ValueError(
                f"low_thresh ({self.low_thresh}) must not exceed track_thresh ({self.track_thresh})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ByteTrackConfig:
        return cls(**values)


class _State(enum.Enum):
    TRACKED = "tracked"
    LOST = "lost"


@dataclass(eq=False)
class _Track:
    start_frame: int
    end_frame: int
    score: float
    state: _State = _State.TRACKED
    confirmed: bool = False
    id: int = 0  # 0 until confirmed


class ByteTracker(FilterTracker):
    """ByteTrack (see the module doc): two-stage association of high- and low-score detections.

    Args:
        config: :class:`ByteTrackConfig` (None: the paper's MOT17 defaults).
    """

    config_class = ByteTrackConfig

    def _cost(
        self, rows: list[int], boxes: np.ndarray, scores: np.ndarray, fuse: bool
    ) -> np.ndarray:
        """``(len(rows), K)`` cost ``1 - IoU`` (``1 - IoU * score`` with ``fuse``) between the
        tracks at ``rows`` and ``boxes (K, 4)`` xyxy scored ``scores (K,)``."""
        iou = iou_matrix(self.bank.boxes[rows], boxes)
        return 1.0 - (iou * scores[None] if fuse else iou)

    def _update(self, dets: Tensor, frame: np.ndarray | Tensor | None) -> Tensor:
        cfg = self.config
        self.frame_count += 1
        scores = detection_scores(dets)
        boxes = dets[:, :4].double().numpy()
        high = np.flatnonzero(scores > cfg.track_thresh)
        low = np.flatnonzero((scores > cfg.low_thresh) & (scores <= cfg.track_thresh))
        matched: dict[int, int] = {}  # track row -> detection index

        self.bank.predict(
            hold_height=np.array([t.state is not _State.TRACKED for t in self.tracks])
        )
        pool = [i for i, t in enumerate(self.tracks) if t.confirmed]
        cost = self._cost(pool, boxes[high], scores[high], cfg.fuse_score)
        pairs, left_rows, left_high = match(cost, cfg.match_thresh)
        matched |= {pool[r]: int(high[c]) for r, c in pairs}

        second = [pool[r] for r in left_rows if self.tracks[pool[r]].state is _State.TRACKED]
        pairs, missed, _ = match(
            self._cost(second, boxes[low], scores[low], False), cfg.low_match_thresh
        )
        matched |= {second[r]: int(low[c]) for r, c in pairs}
        for r in missed:
            self.tracks[second[r]].state = _State.LOST

        tentative = [i for i, t in enumerate(self.tracks) if not t.confirmed]
        high = high[left_high]
        cost = self._cost(tentative, boxes[high], scores[high], cfg.fuse_score)
        pairs, _, left_high = match(cost, cfg.unconfirmed_match_thresh)
        matched |= {tentative[r]: int(high[c]) for r, c in pairs}
        drop = {tentative[r] for r in range(len(tentative))} - {tentative[r] for r, _ in pairs}

        rows = np.array(sorted(matched), dtype=np.int64)
        self.bank.update(rows, boxes[[matched[r] for r in rows]])
        for row in rows:
            track = self.tracks[row]
            track.state, track.end_frame = _State.TRACKED, self.frame_count
            track.score = float(scores[matched[row]])
            if not track.confirmed:
                self._confirm(track)

        born = high[left_high]
        born = born[scores[born] >= cfg.new_track_thresh]
        self.bank.add(boxes[born])
        for col in born:
            track = _Track(self.frame_count, self.frame_count, float(scores[col]))
            self.tracks.append(track)
            if self.frame_count == 1:
                self._confirm(track)

        for row, track in enumerate(self.tracks):
            if track.state is _State.LOST and self.frame_count - track.end_frame > cfg.track_buffer:
                drop.add(row)
        drop |= self._duplicates(drop)
        keep = np.array([i not in drop for i in range(len(self.tracks))], dtype=bool)
        self.tracks = [t for t, k in zip(self.tracks, keep, strict=True) if k]
        self.bank.keep(keep)

        shown = [i for i, t in enumerate(self.tracks) if t.confirmed and t.state is _State.TRACKED]
        return tracks_tensor(
            self.bank.boxes[shown],
            [self.tracks[i].id for i in shown],
            [self.tracks[i].score for i in shown],
            self.image_size,
        )

    def _confirm(self, track: _Track) -> None:
        track.confirmed = True
        track.id = self.next_id
        self.next_id += 1

    def _duplicates(self, dropped: set[int]) -> set[int]:
        """Rows of duplicated tracks: of a tracked and a lost track overlapping above
        ``duplicate_iou``, the one tracked for fewer frames (ByteTrack's
        ``remove_duplicate_stracks``)."""
        tracked = [
            i for i, t in enumerate(self.tracks) if t.state is _State.TRACKED and i not in dropped
        ]
        lost = [i for i, t in enumerate(self.tracks) if t.state is _State.LOST and i not in dropped]
        boxes = self.bank.boxes
        iou = iou_matrix(boxes[tracked], boxes[lost])
        out = set()
        for a, b in zip(*np.nonzero(iou > self.config.duplicate_iou), strict=True):
            p, q = self.tracks[tracked[a]], self.tracks[lost[b]]
            age_p, age_q = self.frame_count - p.start_frame, self.frame_count - q.start_frame
            out.add(lost[b] if age_p > age_q else tracked[a])
        return out


@register_standalone("bytetrack", config=ByteTrackConfig)
def bytetrack(config: ByteTrackConfig) -> ByteTracker:
    """ByteTrack (Zhang et al. 2022): two-stage association with the low-score detections."""
    return ByteTracker(config)
