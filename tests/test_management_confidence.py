"""The confidence rules of the track management on hand-made sequences: an unverified track is
reported above ``report_confidence`` and ended below ``end_confidence``; the learned motion
model's confidence head feeds them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmot.trackers import ManagedTracker, TrackManagementConfig, TrackState
from deepmot.trackers.motion import (
    UNVERIFIED_KEY,
    LearnedMotionConfig,
    LearnedMotionModel,
    LearnedMotionPredictor,
)
from deepmot.trackers.predictor import Prediction, Predictor, TrackBatch

A = (0.0, 0.0, 10.0, 20.0)
B = (100.0, 0.0, 110.0, 20.0)


class Drifting(Predictor):
    """Moves every track 1 px to the right and scores it ``confidence`` (per track id)."""

    history_len = 2

    def __init__(self, confidence: dict[int, float]) -> None:
        self.confidence = confidence

    def predict(self, frame, tracks: TrackBatch, detections, image_size) -> Prediction:
        boxes = tracks.last + torch.tensor([1.0, 0.0, 1.0, 0.0])
        scores = torch.tensor([self.confidence.get(int(i), 1.0) for i in tracks.ids])
        return Prediction(boxes, scores=scores)


def det(*boxes: tuple[float, float, float, float]) -> np.ndarray:
    return np.asarray([[*b, -1.0] for b in boxes], dtype=np.float32).reshape(-1, 5)


def run(frames: list[np.ndarray], confidence: dict[int, float], **config) -> list[np.ndarray]:
    tracker = ManagedTracker(
        Drifting(confidence), TrackManagementConfig(birth_min_frames=1, **config)
    )
    return [tracker.update(f) for f in frames]


def ids(out: np.ndarray) -> list[int]:
    return out[:, 4].astype(int).tolist()


# frames 1-2: one person verified at A; frames 3-4: the detector misses it; frame 5: back
MISSED = [det(A), det(A), det(), det(), det(A)]


def test_no_threshold_hides_every_unverified_track() -> None:
    out = run(MISSED, {1: 0.99})
    assert [ids(o) for o in out] == [[1], [1], [], [], [1]]


def test_confident_unverified_track_is_reported_at_its_predicted_box() -> None:
    out = run(MISSED, {1: 0.9}, report_confidence=0.5)
    assert [ids(o) for o in out] == [[1], [1], [1], [1], [1]]
    # frame 2's box was refined towards A (IoU above 0.6): A + 0.5 px, then +1 px per frame
    np.testing.assert_allclose(out[2][0, :4], [1.5, 0.0, 11.5, 20.0])
    np.testing.assert_allclose(out[3][0, :4], [2.5, 0.0, 12.5, 20.0])
    assert out[2][0, 5] == pytest.approx(0.9)  # its score is its confidence


def test_doubtful_unverified_track_is_hidden_then_revived() -> None:
    out = run(MISSED, {1: 0.3}, report_confidence=0.5)
    assert [ids(o) for o in out] == [[1], [1], [], [], [1]]


def test_confidence_below_the_end_threshold_ends_the_track() -> None:
    out = run(MISSED, {1: 0.3}, report_confidence=0.5, end_confidence=0.4)
    assert [ids(o) for o in out] == [[1], [1], [], [], [2]]  # a new track at frame 5
    kept = run(MISSED, {1: 0.45}, report_confidence=0.5, end_confidence=0.4)
    assert [ids(o) for o in kept] == [[1], [1], [], [], [1]]


def test_unverified_track_under_an_active_one_is_not_reported() -> None:
    """Two confident tracks on the same place; a detection verifies one of them: the other,
    unverified, overlaps it by more than ``track_nms`` and is not reported."""
    tracker = ManagedTracker(
        Drifting({1: 0.9, 2: 0.9}), TrackManagementConfig(birth_min_frames=1, report_confidence=0.5)
    )
    for _ in range(2):
        tracker.update(det(A, B))
    one, two = tracker.manager.tracks
    two.history = one.history.clone()  # track 2 jumps onto track 1
    out = tracker.update(det((2.5, 0.0, 12.5, 20.0)))  # where both are predicted
    hidden = [t.id for t in tracker.manager.tracks if t.state is TrackState.INVISIBLE]
    assert len(hidden) == 1
    assert ids(out) == [i for i in (1, 2) if i not in hidden]


def test_confidence_head_scores_and_counts_unverified_frames() -> None:
    """The learned model's head: off by default (no scores), 0.5 untrained, and the count of
    frames since verification it reads grows while a track is unverified."""
    history = torch.tensor([[A, A]], dtype=torch.float32)
    batch = TrackBatch.from_histories([history[0]], 5, ids=[1], verified=[True])
    plain = LearnedMotionPredictor(LearnedMotionModel())
    assert plain.predict(None, batch, None, (640, 480)).scores is None
    torch.manual_seed(0)
    predictor = LearnedMotionPredictor(LearnedMotionModel(LearnedMotionConfig(confidence=True)))
    out = predictor.predict(None, batch, None, (640, 480))
    assert out.scores is not None and float(out.scores[0].detach()) == pytest.approx(0.5)
    assert batch.extras[0][UNVERIFIED_KEY] == 0
    unverified = TrackBatch(batch.history, batch.mask, batch.ids, torch.tensor([False]))
    unverified.extras = batch.extras
    for expected in (1, 2, 3):
        predictor.predict(None, unverified, None, (640, 480))
        assert batch.extras[0][UNVERIFIED_KEY] == expected
    predictor.predict(None, batch, None, (640, 480))
    assert batch.extras[0][UNVERIFIED_KEY] == 0
    # the untrained model's boxes are the same with or without the head
    np.testing.assert_array_equal(
        out.boxes.detach().numpy(),
        plain.predict(None, batch, None, (640, 480)).boxes.detach().numpy(),
    )


def test_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="report_confidence"):
        TrackManagementConfig(report_confidence=1.5)
    with pytest.raises(ValueError, match="end_confidence"):
        TrackManagementConfig(end_confidence=-0.1)
