"""Track management shared by every tracker: births, regression, invisibility, NMS, refinement.

The paper uses "a simple (non-trainable) track management procedure" (Sec. 5, "Track
Management"; supplementary A.2, "Test-time Track Management"). :class:`TrackManager` implements
it around a pluggable *predictor* (:class:`~deepmot.trackers.predictor.Predictor`): it gets the
frame, the tracks and the detections and moves the tracks to the frame (a motion model through
:class:`~deepmot.trackers.predictor.MotionPredictor`, or an image-based regressor).
:class:`ManagedTracker` puts a predictor and a manager behind the one tracker contract. One
call of :meth:`TrackManager.update` per frame does, in this order:

0. A predictor with ``prepare_detections`` replaces the frame's detections first (Tracktor
   re-scores public detections with its box head, or detects on its own). Detections are
   clipped to the image (when its size is known), as Tracktor does; those
   left without area are dropped.
1. **Regression** (t-1 -> t): every alive track (active, and invisible ones when
   ``predict_invisible``) is moved by the predictor; boxes are clipped to the image; a
   track whose box leaves the image (no area left) is terminated; an active track the
   predictor scores below ``min_track_score`` becomes invisible (Tracktor's regression
   threshold).
2. **Verification**: active tracks are matched one-to-one to the detections (Hungarian on
   ``1 - IoU``, pairs below ``match_iou`` forbidden). A verified track may be **refined** by
   averaging its box with its detection when their IoU is above ``refine_iou`` (supp. A.2).
   An active track that no detection verifies becomes **invisible** ("Tracks that can not be
   verified by the detector are marked invisible", supp. A.2), unless
   ``require_verification`` is off (Tracktor).
3. **NMS between tracks** (Tracktor's ``regression_nms_thresh``): of two active tracks that
   overlap by more than ``track_nms``, the one with fewer verified frames becomes invisible.
4. **Detections covered by tracks** are no birth material: after NMS among the detections, a
   detection overlapping an active track by more than ``detection_nms`` is dropped (Tracktor's
   ``detection_nms_thresh``, applied between tracks and detections as Tracktor does).
5. **Re-activation**: the remaining detections are matched to invisible tracks by IoU
   (>= ``revive_iou``) and, where the predictor has ``appearance_similarity``, by appearance
   too (>= ``revive_similarity``); a matched track becomes active again and keeps its id.
6. **Births** from the detections still left. With ``birth_min_frames > 1`` (the paper's SOT
   birth rule: 3 consecutive frames, consecutive IoU >= 0.3) a detection first opens a
   *tentative* track with no id; it is confirmed (and gets the next id) once it has been seen in
   ``birth_min_frames`` consecutive frames, and dropped at its first miss. The predictor's
   ``on_birth`` hook sees each confirmed track with the frame.
7. **Termination**: a track invisible for more than ``max_invisible`` (K) frames is terminated
   (or, with ``end_confidence``, as soon as its predicted confidence falls below it).

Only active tracks are reported; with ``report_confidence``, so is an invisible track whose
predicted confidence (the predictor's ``scores``) is above it and that no active track
overlaps by more than ``track_nms``. Ids start at 1, are never reused, and restart with
:meth:`TrackManager.reset`. Tracking is inference: :meth:`TrackManager.update` runs without
gradients (a graph across a whole sequence would only grow). Training calls the same
``predictor.predict`` on sampled tracks (:mod:`deepmot.train.rollout`), where it is
differentiable.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import nms

from deepmot.assign.hungarian import linear_assignment
from deepmot.boxes import box_iou
from deepmot.trackers.base import Tracker
from deepmot.trackers.predictor import (
    Frame,
    MotionModel,
    MotionPredictor,
    Predictor,
    TrackBatch,
    module_device,
    stack_histories,
)

__all__ = [
    "DETECTION_KEY",
    "PAPER_SOT_REFINEMENT",
    "SOT_MANAGEMENT",
    "ManagedTracker",
    "Track",
    "TrackManagementConfig",
    "TrackManager",
    "TrackState",
    "match_and_refine",
    "management_overrides",
    "stack_histories",
]

log = logging.getLogger(__name__)

DETECTION_KEY = "detection"
"""The key, in a track's ``extra`` dict, of the ``(4,)`` xyxy detection last assigned to it
(verification, re-activation or birth), as detected (before refinement): what a filter
measures."""


@dataclass(frozen=True)
class TrackManagementConfig:
    """Settings of :class:`TrackManager`, defaults from the paper (supp. A.2) and Tracktor.

    Attributes:
        max_invisible: K, frames a track may stay invisible before it is terminated (supp.
            A.2: "terminated after K = 60 frames"; Sec. 5: "set a track as invisible for K
            frames"). 0 terminates a track at its first unverified frame.
        match_iou: least IoU for a detection to verify a track (one-to-one, Hungarian). Equal to
            Tracktor's ``detection_nms_thresh`` (0.3) so that a detection near a track either
            verifies it or is treated as covered by it; the paper gives no number.
        refine_iou: refine a verified track with its detection when their IoU is above this
            (supp. A.2: "When the IoU between a track prediction and detection is higher than
            0.6, we output their average"). None disables refinement.
        refine_weight: weight of the detection in that average (0.5: the paper's plain
            average; 1.0: replace the prediction by the detection).
        detection_nms: NMS threshold among new detections and between tracks and detections
            (Tracktor, ``experiments/cfgs/tracktor.yaml``: ``detection_nms_thresh: 0.3``).
        track_nms: NMS threshold between tracks (Tracktor: ``regression_nms_thresh: 0.6``).
        revive_iou: least IoU between an invisible track and a detection to re-activate it.
            Tracktor re-identifies at IoU >= 0.2 *and* an appearance match; with boxes alone we
            ask for Tracktor's ``detection_nms_thresh`` (0.3) instead.
        birth_min_frames: consecutive frames a detection must be seen before a track is born
            (supp. A.2, MOT-by-SOT: "only when detections appear in 3 consecutive frames");
            1 gives a track to every uncovered detection at once, as Tracktor does.
        birth_iou: least IoU between consecutive detections of one birth candidate (supp.
            A.2: "a minimal consecutive IoU overlap of 0.3").
        min_score: drop detections scored below this. None keeps all: Tracktor's 0.5
            (``detection_person_thresh``) applies to its own Faster R-CNN scores, and MOT17's
            cleaned public detections carry no score (-1).
        predict_invisible: move invisible tracks with the predictor too (Tracktor moves its
            inactive tracks with its motion model when that is enabled), so that a person who
            walks behind an occluder is looked for where they went.
        min_track_score: an active track whose predicted score (for predictors that score,
            e.g. Tracktor's classification head) is below this becomes invisible (Tracktor's
            ``regression_person_thresh: 0.5``). None: scores are ignored.
        revive_similarity: least appearance similarity (for predictors with
            ``appearance_similarity``) for a detection to re-activate an invisible track, on
            top of ``revive_iou``.
        require_verification: an active track no detection verifies becomes invisible (supp.
            A.2). False keeps it active (Tracktor: a track lives while its regression score
            passes ``min_track_score``, detections or not).
        report_confidence: an invisible track whose predicted score (its confidence, e.g. the
            learned motion model's confidence head) is above this is reported with its
            predicted box, unless an active track overlaps it by more than ``track_nms``; it
            stays invisible (unverified) otherwise. None: invisible tracks are never reported
            (supp. A.2). Tracks of a predictor without scores follow the None rule.
        end_confidence: an invisible track whose predicted score is below this is terminated
            at once, before K. None: only K ends tracks.
    """

    max_invisible: int = 60
    match_iou: float = 0.3
    refine_iou: float | None = 0.6
    refine_weight: float = 0.5
    detection_nms: float = 0.3
    track_nms: float = 0.6
    revive_iou: float = 0.3
    birth_min_frames: int = 3
    birth_iou: float = 0.3
    min_score: float | None = None
    predict_invisible: bool = True
    min_track_score: float | None = None
    revive_similarity: float = 0.5
    require_verification: bool = True
    report_confidence: float | None = None
    end_confidence: float | None = None

    def __post_init__(self) -> None:
        if self.max_invisible < 0:
            raise ValueError(f"max_invisible must be >= 0, got {self.max_invisible}")
        if self.birth_min_frames < 1:
            raise ValueError(f"birth_min_frames must be >= 1, got {self.birth_min_frames}")
        names = ("match_iou", "detection_nms", "track_nms", "revive_iou", "birth_iou")
        for name in (*names, "revive_similarity"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.refine_iou is not None and not 0.0 <= self.refine_iou <= 1.0:
            raise ValueError(f"refine_iou must be in [0, 1] or None, got {self.refine_iou}")
        if not 0.0 <= self.refine_weight <= 1.0:
            raise ValueError(f"refine_weight must be in [0, 1], got {self.refine_weight}")
        for name in ("report_confidence", "end_confidence"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] or None, got {value}")

    @classmethod
    def tracktor(cls, **overrides: Any) -> TrackManagementConfig:
        """Tracktor-like management: births at once, no refinement, K = 10 inactive frames
        (``inactive_patience: 10``); other thresholds as the defaults.

        Meant for trackers that regress boxes from the image (Tracktor). A motion-only model
        drifts without refinement: constant velocity on MOT17-{02,04,05,09,10} with the cleaned
        FRCNN detections scored MOTA 16.0 with this preset against 47.4 with the defaults.
        """
        base = {"birth_min_frames": 1, "refine_iou": None, "max_invisible": 10}
        return cls(**{**base, **overrides})

    @classmethod
    def sot(cls, **overrides: Any) -> TrackManagementConfig:
        """The paper's MOT-by-SOT rules (supp. A.2, "Test-time Track Management"): refinement
        by averaging with a detection above IoU 0.6, births after 3 consecutive frames with IoU
        >= 0.3, invisible tracks terminated after K = 60 frames. Spelled out, so that they stay
        the SOT trackers' whatever the defaults become."""
        base = {
            "refine_iou": 0.6,
            "refine_weight": 0.5,
            "birth_min_frames": 3,
            "birth_iou": 0.3,
            "max_invisible": 60,
        }
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrackManagementConfig:
        return cls(**values)


SOT_MANAGEMENT = TrackManagementConfig.sot(refine_iou=0.3, refine_weight=1.0)
"""GOTURN's and SiamRPN's default: the paper's MOT-by-SOT rules except refinement, where a
verified track takes its detection's box (``refine_weight`` 1.0 from IoU 0.3, where every
verification starts) instead of the average with a detection above IoU 0.6. Chosen on the
training halves of PETS09-S2L1 and TUD-Campus with the shipped weights (``docs/sot.md``):
MOTA -3.67 -> 65.76 for GOTURN and 27.19 -> 61.26 for SiamRPN, whose single-object boxes drift
on real frames they never trained on."""

PAPER_SOT_REFINEMENT = {"refine_iou": 0.6, "refine_weight": 0.5}
"""The overrides that turn :data:`SOT_MANAGEMENT` back into the paper's rules (supp. A.2), with
which the synthetic-scene SOT tables were measured; the defaults of the other trackers'
management, so passing them to every row of a table changes only the SOT rows."""


class TrackState(enum.Enum):
    """Where a track is in its life.

    ``TENTATIVE`` -> ``ACTIVE`` <-> ``INVISIBLE`` -> ``TERMINATED``; a tentative track that
    misses a frame is dropped (it never had an id). Only active tracks are reported.
    """

    TENTATIVE = "tentative"
    ACTIVE = "active"
    INVISIBLE = "invisible"
    TERMINATED = "terminated"


@dataclass(eq=False)
class Track:
    """One track.

    Attributes:
        id: positive id once confirmed; 0 while tentative.
        state: its :class:`TrackState`.
        history: ``(n, 4)`` xyxy, oldest first; the last row is the current box.
        score: score of the detection that last verified it.
        hits: frames in which a detection verified it (or confirmed a tentative track).
        frames_invisible: consecutive frames without verification.
        start_frame: frame (1-based count of updates) of its first detection.
        extra: room for what a tracker keeps per track beyond boxes (e.g. appearance
            embeddings for re-identification); the manager does not read it, and writes only
            ``extra["detection"]`` (:data:`DETECTION_KEY`), the detection last assigned to it.
        confidence: the predictor's last score of it (None for a predictor without scores).
    """

    id: int
    state: TrackState
    history: Tensor
    score: float
    start_frame: int
    hits: int = 1
    frames_invisible: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None

    @property
    def box(self) -> Tensor:
        """``(4,)`` xyxy: the current box."""
        return self.history[-1]

    def push(self, box: Tensor, keep: int) -> None:
        """Append ``box (4,)`` to the history, keeping the last ``keep`` boxes."""
        self.history = torch.cat([self.history, box[None]])[-keep:]


def _priority_nms(boxes: Tensor, priority: Tensor, threshold: float) -> Tensor:
    """NMS with ties broken by index (torchvision's sort is not stable).

    Returns the kept indices, highest priority first.
    """
    order = torch.sort(priority, descending=True, stable=True).indices
    rank = torch.empty(len(order), dtype=torch.float32)
    rank[order] = torch.arange(len(order), 0, -1, dtype=torch.float32)
    return nms(boxes.float(), rank, threshold)


def _match(boxes_a: Tensor, boxes_b: Tensor, min_iou: float) -> tuple[Tensor, Tensor]:
    """One-to-one matching by IoU (Hungarian on ``1 - IoU``, pairs below ``min_iou`` forbidden).

    Returns ``matches (P, 2)`` int64 (row of a, row of b) and the IoU matrix ``(A, B)``.
    """
    iou = (
        box_iou(boxes_a, boxes_b)
        if len(boxes_a) and len(boxes_b)
        else boxes_a.new_zeros((len(boxes_a), len(boxes_b)))
    )
    cost = 1.0 - iou
    cost[iou < min_iou] = float("inf")
    matches, _, _ = linear_assignment(cost)
    return torch.from_numpy(matches), iou


def management_overrides(
    target: TrackManagementConfig, base: TrackManagementConfig
) -> dict[str, Any]:
    """The fields of ``target`` that differ from ``base``: the overrides (for
    ``create_tracker`` or ``replace``) that turn ``base`` into ``target``."""
    return {
        f.name: getattr(target, f.name)
        for f in fields(target)
        if getattr(target, f.name) != getattr(base, f.name)
    }


def match_and_refine(
    boxes: Tensor, detections: Tensor, config: TrackManagementConfig
) -> tuple[Tensor, Tensor]:
    """Verification and refinement (step 2), the one rule tracking and training follow.

    ``boxes (T, 4)`` are matched one-to-one to ``detections (K, 4+)`` xyxy (Hungarian on
    ``1 - IoU``, pairs below ``config.match_iou`` forbidden); a matched box whose IoU with its
    detection is above ``config.refine_iou`` becomes ``(1 - w) * box + w * detection`` with
    ``w = config.refine_weight``. :meth:`TrackManager.update` calls it on the predicted boxes
    of the active tracks; the training rollout (:mod:`deepmot.train.rollout`) on the
    predictions it keeps, so that what the loss sees is what the tracker does.

    Returns ``matches (P, 2)`` int64 (row of ``boxes``, row of ``detections``) on the CPU and
    the boxes ``(T, 4)``, refined where the rule says: differentiable in ``boxes`` (the
    pairing and the detections carry no gradient), ``boxes`` itself where nothing is refined.
    """
    dets = detections[:, :4].to(boxes)
    matches, iou = _match(boxes.detach(), dets.detach(), config.match_iou)
    if config.refine_iou is None or len(matches) == 0:
        return matches, boxes
    rows, cols = matches[:, 0], matches[:, 1]
    good = iou[rows, cols].double().cpu() > config.refine_iou  # in float64, as Python compares
    if not bool(good.any()):
        return matches, boxes
    rows, cols = rows[good].to(boxes.device), cols[good].to(boxes.device)
    w = config.refine_weight
    refined = boxes.clone()
    refined[rows] = (1 - w) * boxes[rows] + w * dets[cols]
    return matches, refined


def _clip(boxes: Tensor, image_size: tuple[int, int] | None) -> Tensor:
    if image_size is None:
        return boxes
    width, height = image_size
    x = boxes[:, 0::2].clamp(0, width)
    y = boxes[:, 1::2].clamp(0, height)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


def as_predictor(model: Predictor | MotionModel) -> Predictor:
    """``model`` itself if it is a :class:`Predictor`, a history-only :class:`MotionModel`
    wrapped in :class:`MotionPredictor` otherwise."""
    if isinstance(model, Predictor):
        return model
    return MotionPredictor(model)


class TrackManager:
    """The paper's test-time track management around a predictor (see the module doc).

    Args:
        predictor: a :class:`~deepmot.trackers.predictor.Predictor`, or a history-only
            :class:`~deepmot.trackers.predictor.MotionModel` (wrapped in a
            :class:`~deepmot.trackers.predictor.MotionPredictor`).
        config: :class:`TrackManagementConfig` (default: the paper's).
        image_size: ``(width, height)``, or None where unknown; :meth:`reset` may change it.
    """

    def __init__(
        self,
        predictor: Predictor | MotionModel,
        config: TrackManagementConfig | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        self.predictor = as_predictor(predictor)
        self.config = config if config is not None else TrackManagementConfig()
        self.image_size = image_size
        self.tracks: list[Track] = []
        self.next_id = 1
        self.frame_count = 0

    @property
    def history_len(self) -> int:
        return max(2, int(self.predictor.history_len))

    def reset(self, image_size: tuple[int, int] | None = None) -> None:
        """Forget every track; ids restart at 1. ``image_size`` is that of the next sequence
        (None: unknown, boxes are not clipped)."""
        self.image_size = image_size
        self.tracks = []
        self.next_id = 1
        self.frame_count = 0

    def tracks_in(self, *states: TrackState) -> list[Track]:
        """Tracks currently in any of ``states``, in creation order."""
        return [t for t in self.tracks if t.state in states]

    # ------------------------------------------------------------------ one frame

    def batch(self, tracks: list[Track]) -> TrackBatch:
        """``tracks`` as the predictor sees them (their ``extra`` dicts shared)."""
        return TrackBatch.from_histories(
            [t.history for t in tracks],
            self.history_len,
            ids=[t.id for t in tracks],
            verified=[t.state is TrackState.ACTIVE for t in tracks],
            extras=[t.extra for t in tracks],
        )

    @torch.no_grad()
    def update(self, dets: Tensor, frame: Frame = None) -> Tensor:
        """One frame.

        Args:
            dets: ``(K, 5|6)`` float32 CPU tensor: xyxy + score [+ class], finite,
                positive-area boxes (see :func:`deepmot.trackers.base.check_detections`).
                The state lives on the CPU; the predictor runs on its own device.
            frame: the image ``(H, W, 3)`` uint8 RGB, for predictors that need it.

        Returns:
            ``(T, 6)`` float32 xyxy + id + score of the active tracks, sorted by id.
        """
        cfg = self.config
        self.frame_count += 1
        dets = self.predictor.prepare_detections(frame, dets, self.image_size).float().cpu()
        if cfg.min_score is not None and len(dets):
            dets = dets[dets[:, 4] >= cfg.min_score]
        det_boxes, det_scores = _clip(dets[:, :4].float(), self.image_size), dets[:, 4].float()
        inside = (det_boxes[:, 2:] > det_boxes[:, :2]).all(dim=1)
        det_boxes, det_scores = det_boxes[inside], det_scores[inside]

        self._predict(frame, det_boxes)
        used = self._verify(det_boxes, det_scores)
        self._suppress_tracks()
        free = self._uncovered(det_boxes, det_scores, used)
        free = self._revive(frame, det_boxes, det_scores, free)
        self._births(frame, det_boxes, det_scores, free)
        self._age_invisible()
        return self._output()

    def _predict(self, frame: Frame, det_boxes: Tensor) -> None:
        """Step 1: move alive tracks with the predictor; terminate those leaving the image,
        hide active ones scored below ``min_track_score``."""
        moving = [TrackState.ACTIVE] + (
            [TrackState.INVISIBLE] if self.config.predict_invisible else []
        )
        tracks = self.tracks_in(*moving)
        if not tracks:
            return
        device = module_device(self.predictor)
        out = self.predictor.predict(
            frame, self.batch(tracks).to(device), det_boxes.to(device), self.image_size
        )
        predicted = _clip(out.boxes.float().cpu(), self.image_size)
        threshold = self.config.min_track_score
        scores = None if out.scores is None or threshold is None else out.scores.float().cpu()
        self._keep_confidences(tracks, out.scores)
        for i, (track, box) in enumerate(zip(tracks, predicted, strict=True)):
            if not bool((box[2:] > box[:2]).all()) or not bool(torch.isfinite(box).all()):
                track.state = TrackState.TERMINATED
                continue
            track.push(box, self.history_len)
            active = track.state is TrackState.ACTIVE
            if scores is not None and active and float(scores[i]) < threshold:
                track.state = TrackState.INVISIBLE

    def _keep_confidences(self, tracks: list[Track], scores: Tensor | None) -> None:
        """Remember each moved track's predicted score where a confidence rule reads it."""
        cfg = self.config
        if scores is None or (cfg.report_confidence is None and cfg.end_confidence is None):
            return
        for track, score in zip(tracks, scores.float().cpu().tolist(), strict=True):
            track.confidence = score

    def _verify(self, det_boxes: Tensor, det_scores: Tensor) -> set[int]:
        """Step 2: detections verify (and may refine) active tracks; the rest turn invisible.

        Returns the indices of the detections used.
        """
        cfg = self.config
        active = self.tracks_in(TrackState.ACTIVE)
        if not active:
            return set()
        boxes = torch.stack([t.box for t in active])
        matches, refined = match_and_refine(boxes, det_boxes, cfg)
        matched = dict(matches.tolist())
        for row, track in enumerate(active):
            col = matched.get(row)
            if col is None:
                if cfg.require_verification:
                    track.state = TrackState.INVISIBLE
                continue
            track.hits += 1
            track.frames_invisible = 0
            track.score = float(det_scores[col])
            track.extra[DETECTION_KEY] = det_boxes[col].clone()
            track.history[-1] = refined[row]
        return set(matched.values())

    def _suppress_tracks(self) -> None:
        """Step 3: NMS between active tracks; the better-established track wins."""
        active = self.tracks_in(TrackState.ACTIVE)
        if len(active) < 2:
            return
        boxes = torch.stack([t.box for t in active])
        # more verified frames first, then the older id (ties broken by creation order)
        priority = torch.tensor([float(t.hits) for t in active])
        keep = set(_priority_nms(boxes, priority, self.config.track_nms).tolist())
        for i, track in enumerate(active):
            if i not in keep:
                track.state = TrackState.INVISIBLE

    def _uncovered(self, det_boxes: Tensor, det_scores: Tensor, used: set[int]) -> list[int]:
        """Step 4: NMS among the unused detections, then drop those covered by active tracks."""
        free = torch.tensor([i for i in range(len(det_boxes)) if i not in used], dtype=torch.long)
        if len(free) == 0:
            return []
        keep = _priority_nms(det_boxes[free], det_scores[free], self.config.detection_nms)
        free = free[keep.sort().values]
        active = self.tracks_in(TrackState.ACTIVE)
        if active and len(free):
            boxes = torch.stack([t.box for t in active])
            covered = (box_iou(boxes, det_boxes[free]) > self.config.detection_nms).any(dim=0)
            free = free[~covered]
        return free.tolist()

    def _revive(
        self, frame: Frame, det_boxes: Tensor, det_scores: Tensor, free: list[int]
    ) -> list[int]:
        """Step 5: free detections re-activate invisible tracks (IoU, and appearance where the
        predictor has it); returns the detections left."""
        invisible = self.tracks_in(TrackState.INVISIBLE)
        if not invisible or not free:
            return free
        boxes = torch.stack([t.box for t in invisible])
        similarity = self.predictor.appearance_similarity(
            frame, self.batch(invisible), det_boxes[free]
        )
        if similarity is None:
            matches, _ = _match(boxes, det_boxes[free], self.config.revive_iou)
        else:
            similarity = similarity.float().cpu()
            iou = box_iou(boxes, det_boxes[free])
            cost = 1.0 - similarity
            cost[(iou < self.config.revive_iou) | (similarity < self.config.revive_similarity)] = (
                float("inf")
            )
            matches = torch.from_numpy(linear_assignment(cost)[0])
        taken = set()
        for row, col in matches.tolist():
            det = free[col]
            track = invisible[row]
            track.state = TrackState.ACTIVE
            track.frames_invisible = 0
            track.hits += 1
            track.score = float(det_scores[det])
            # restart the history at the detection: the extrapolated boxes of the invisible
            # frames would make a jump that reads as a velocity
            track.history = det_boxes[det][None].clone()
            track.extra[DETECTION_KEY] = det_boxes[det].clone()
            taken.add(col)
        return [d for c, d in enumerate(free) if c not in taken]

    def _births(self, frame: Frame, det_boxes: Tensor, det_scores: Tensor, free: list[int]) -> None:
        """Step 6: new tracks from the free detections, directly or after the SOT birth rule;
        the predictor's ``on_birth`` hook sees the confirmed ones."""
        cfg = self.config
        before = self.next_id
        candidates = self.tracks_in(TrackState.TENTATIVE)
        if cfg.birth_min_frames > 1 and candidates:
            if free:
                boxes = torch.stack([t.box for t in candidates])
                matches, _ = _match(boxes, det_boxes[free], cfg.birth_iou)
            else:
                matches = torch.zeros((0, 2), dtype=torch.long)
            matched = dict(matches.tolist())
            taken = set()
            for row, track in enumerate(candidates):
                col = matched.get(row)
                if col is None:
                    track.state = TrackState.TERMINATED  # a candidate that misses a frame
                    continue
                det = free[col]
                taken.add(col)
                track.push(det_boxes[det], self.history_len)
                track.extra[DETECTION_KEY] = det_boxes[det].clone()
                track.hits += 1
                track.score = float(det_scores[det])
                if track.hits >= cfg.birth_min_frames:
                    self._confirm(track)
            free = [d for c, d in enumerate(free) if c not in taken]
        for det in free:
            track = Track(
                id=0,
                state=TrackState.TENTATIVE,
                history=det_boxes[det][None].clone(),
                score=float(det_scores[det]),
                start_frame=self.frame_count,
                extra={DETECTION_KEY: det_boxes[det].clone()},
            )
            self.tracks.append(track)
            if cfg.birth_min_frames <= 1:
                self._confirm(track)
        born = [t for t in self.tracks if t.id >= before]
        if born:
            self.predictor.on_birth(frame, self.batch(born))

    def _confirm(self, track: Track) -> None:
        track.state = TrackState.ACTIVE
        track.id = self.next_id
        self.next_id += 1

    def _age_invisible(self) -> None:
        """Step 7: count invisible frames; terminate after K; forget terminated tracks."""
        end = self.config.end_confidence
        for track in self.tracks_in(TrackState.INVISIBLE):
            track.frames_invisible += 1
            doubted = end is not None and track.confidence is not None and track.confidence < end
            if track.frames_invisible > self.config.max_invisible or doubted:
                track.state = TrackState.TERMINATED
        self.tracks = [t for t in self.tracks if t.state is not TrackState.TERMINATED]

    def reported_unverified(self) -> list[Track]:
        """The invisible tracks reported this frame (``report_confidence``): confidence above
        it, no active track overlapping by more than ``track_nms``."""
        threshold = self.config.report_confidence
        if threshold is None:
            return []
        chosen = [
            t
            for t in self.tracks_in(TrackState.INVISIBLE)
            if t.confidence is not None and t.confidence > threshold
        ]
        active = self.tracks_in(TrackState.ACTIVE)
        if chosen and active:
            iou = box_iou(
                torch.stack([t.box for t in chosen]), torch.stack([t.box for t in active])
            )
            free = (iou <= self.config.track_nms).all(dim=1).tolist()
            chosen = [t for t, ok in zip(chosen, free, strict=True) if ok]
        return chosen

    def _output(self) -> Tensor:
        unverified = self.reported_unverified()
        tracks = sorted(self.tracks_in(TrackState.ACTIVE) + unverified, key=lambda t: t.id)
        if not tracks:
            return torch.zeros((0, 6))
        boxes = torch.stack([t.box for t in tracks])
        ids = torch.tensor([[float(t.id)] for t in tracks])
        reported = {id(t) for t in unverified}
        # a reported unverified track's score is its confidence, a verified one's its detection's
        scores = torch.tensor([[t.confidence if id(t) in reported else t.score] for t in tracks])
        return torch.cat([boxes, ids, scores], dim=1)


class ManagedTracker(Tracker):
    """A predictor inside the shared track management, behind the tracker contract.

    Args:
        predictor: a :class:`~deepmot.trackers.predictor.Predictor` or a history-only motion
            model (adapted with :class:`~deepmot.trackers.predictor.MotionPredictor`).
        management: :class:`TrackManagementConfig`.
        image_size: ``(width, height)`` of the frames, or None; :meth:`reset` may set it.
    """

    def __init__(
        self,
        predictor: Predictor | MotionModel,
        management: TrackManagementConfig | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        self.manager = TrackManager(predictor, management, image_size)

    @property
    def predictor(self) -> Predictor:
        return self.manager.predictor

    @property
    def needs_images(self) -> bool:  # type: ignore[override]
        return bool(self.predictor.needs_images)

    @property
    def has_detector(self) -> bool:  # type: ignore[override]
        return bool(self.predictor.has_detector)

    def use_own_detector(self, min_score: float | None = None) -> None:
        """Births from the predictor's own detections (see :attr:`Predictor.has_detector`)."""
        self.predictor.use_own_detector(min_score)

    @property
    def config(self) -> TrackManagementConfig:
        return self.manager.config

    def reset(self, image_size: tuple[int, int] | None = None) -> None:
        """Forget every track (ids restart at 1); set the image size of the next sequence."""
        self.manager.reset(image_size)

    def _update(self, dets: Tensor, frame: np.ndarray | Tensor | None) -> Tensor:
        return self.manager.update(dets, frame)
