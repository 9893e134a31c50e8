"""Track management rules, each on a hand-made scenario (paper Sec. 5, supp. A.2, Tracktor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from deepmot.trackers import (
    ConstantVelocityModel,
    ManagedTracker,
    TrackManagementConfig,
    TrackManager,
    TrackState,
    stack_histories,
)


class Scripted:
    """A motion model that keeps every box where it is, unless told where to put them."""

    history_len = 2

    def __init__(self) -> None:
        self.override: Tensor | None = None
        self.calls = 0

    def __call__(self, history, mask, detections=None, image_size=None) -> Tensor:
        self.calls += 1
        if self.override is not None:
            return self.override.expand(len(history), 4).clone()  # (4,) or (T, 4)
        return history[:, -1].clone()


def det(*boxes: tuple[float, float, float, float], score: float = -1.0) -> np.ndarray:
    """``(K, 5)`` detections with the given xyxy boxes (MOT17-style score -1)."""
    rows = [[*b, score] for b in boxes]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


NONE = det()
A = (0.0, 0.0, 10.0, 20.0)
FAR = (100.0, 100.0, 110.0, 120.0)


def shifted(box: tuple[float, ...], dx: float) -> tuple[float, ...]:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def tracker(model=None, **config) -> ManagedTracker:
    return ManagedTracker(model or Scripted(), TrackManagementConfig(**config))


def ids(tracks: np.ndarray) -> list[int]:
    return tracks[:, 4].astype(int).tolist()


# ----------------------------------------------------------------------------- births


def test_birth_at_once_gives_ids_from_1():
    t = tracker(birth_min_frames=1)
    out = t.update(det(A, FAR))
    assert ids(out) == [1, 2]
    np.testing.assert_array_equal(out[:, :4], det(A, FAR)[:, :4])
    np.testing.assert_array_equal(out[:, 5], [-1, -1])  # the detection's score, even -1


def test_sot_birth_rule_needs_three_consecutive_overlapping_frames():
    t = tracker(birth_min_frames=3, birth_iou=0.3)
    assert len(t.update(det(A))) == 0
    assert len(t.update(det(shifted(A, 1)))) == 0
    assert [s.state for s in t.manager.tracks] == [TrackState.TENTATIVE]
    assert t.manager.tracks[0].id == 0  # no id while tentative
    out = t.update(det(shifted(A, 2)))
    assert ids(out) == [1]
    np.testing.assert_allclose(out[0, :4], shifted(A, 2))


def test_sot_birth_rule_restarts_when_the_chain_breaks():
    t = tracker(birth_min_frames=3, birth_iou=0.3)
    t.update(det(A))
    t.update(det(A))
    # IoU(A, A shifted by 7 px) = 3/17 < 0.3: the chain breaks, a new candidate starts
    assert len(t.update(det(shifted(A, 7)))) == 0
    assert len(t.update(det())) == 0  # a miss drops the candidate
    assert t.manager.tracks == []
    t.update(det(FAR))
    t.update(det(FAR))
    out = t.update(det(FAR))
    assert ids(out) == [1]  # dropped candidates never took an id


def test_tracks_born_only_from_uncovered_detections():
    # IoU(A, A+4px) = 6/14 = 0.43 > 0.3: covered by track 1, which A verifies;
    # IoU(A, A+8px) = 2/18 = 0.11 and IoU(A+4px, A+8px) = 0.43 would suppress it too, so the
    # uncovered one is at A+12px (no overlap with A, 0.11 with A+4px)
    t = tracker(birth_min_frames=1)
    t.update(det(A))
    out = t.update(det(A, shifted(A, 4), shifted(A, 12)))
    assert ids(out) == [1, 2]
    np.testing.assert_allclose(out[1, :4], shifted(A, 12))


def test_nms_among_new_detections():
    t = tracker(birth_min_frames=1, detection_nms=0.3)
    out = t.update(det(A, shifted(A, 4), FAR))  # the first two overlap by 0.43
    assert ids(out) == [1, 2]
    np.testing.assert_allclose(out[:, :4], det(A, FAR)[:, :4])


def test_low_scores_are_kept_unless_min_score_is_set():
    assert len(tracker(birth_min_frames=1).update(det(A, score=-1.0))) == 1
    t = tracker(birth_min_frames=1, min_score=0.5)
    assert len(t.update(det(A, score=0.4))) == 0
    assert len(t.update(det(A, score=0.6))) == 1


# ----------------------------------------------------------------------------- verification


def test_unverified_track_turns_invisible_and_is_not_reported():
    t = tracker(birth_min_frames=1)
    t.update(det(A))
    assert len(t.update(NONE)) == 0
    (track,) = t.manager.tracks
    assert track.state is TrackState.INVISIBLE
    assert track.frames_invisible == 1


def test_verified_track_keeps_its_id_and_takes_the_detection_score():
    t = tracker(birth_min_frames=1)
    t.update(det(A, score=0.3))
    out = t.update(det(shifted(A, 4), score=0.9))  # IoU 0.43: verifies, not refined
    assert ids(out) == [1]
    np.testing.assert_allclose(out[0, :4], A)  # the prediction, unrefined
    assert out[0, 5] == pytest.approx(0.9)


def test_refinement_averages_with_a_detection_of_iou_above_0_6():
    t = tracker(birth_min_frames=1)  # paper defaults: refine_iou=0.6, refine_weight=0.5
    t.update(det(A))
    out = t.update(det(shifted(A, 1)))  # IoU 9/11 = 0.82 with the prediction A
    np.testing.assert_allclose(out[0, :4], shifted(A, 0.5))


def test_refinement_off_and_replace():
    t = tracker(birth_min_frames=1, refine_iou=None)
    t.update(det(A))
    np.testing.assert_allclose(t.update(det(shifted(A, 1)))[0, :4], A)
    t = tracker(birth_min_frames=1, refine_weight=1.0, refine_iou=0.0)
    t.update(det(A))
    np.testing.assert_allclose(t.update(det(shifted(A, 4)))[0, :4], shifted(A, 4))


# ----------------------------------------------------------------------------- death and revival


def test_death_after_k_invisible_frames():
    k = 5
    t = tracker(birth_min_frames=1, max_invisible=k)
    t.update(det(A))
    for _ in range(k):
        t.update(NONE)
    assert [s.state for s in t.manager.tracks] == [TrackState.INVISIBLE]
    t.update(NONE)  # the (K + 1)-th unverified frame
    assert t.manager.tracks == []
    assert ids(t.update(det(A))) == [2]  # a new track: id 1 is never reused


def test_revival_within_k_keeps_the_id():
    k = 5
    t = tracker(birth_min_frames=1, max_invisible=k)
    t.update(det(A))
    for _ in range(k):
        t.update(NONE)
    out = t.update(det(shifted(A, 2)))  # IoU 8/12 with the last box
    assert ids(out) == [1]
    np.testing.assert_allclose(out[0, :4], shifted(A, 2))  # restarts at the detection
    (track,) = t.manager.tracks
    assert track.state is TrackState.ACTIVE and track.frames_invisible == 0
    assert len(track.history) == 1  # history restarted


def test_revival_needs_revive_iou():
    t = tracker(birth_min_frames=1, revive_iou=0.5)
    t.update(det(A))
    t.update(NONE)
    assert ids(t.update(det(shifted(A, 4)))) == [2]  # IoU 0.43 < 0.5: a new track


def test_zero_patience_terminates_at_once():
    t = tracker(birth_min_frames=1, max_invisible=0)
    t.update(det(A))
    t.update(NONE)
    assert t.manager.tracks == []


def test_invisible_tracks_move_with_the_motion_model():
    t = tracker(ConstantVelocityModel(), birth_min_frames=1, refine_weight=1.0, refine_iou=0.0)
    for x in range(3):
        t.update(det(shifted(A, 2 * x)))  # 2 px per frame
    t.update(NONE)
    t.update(NONE)
    (track,) = t.manager.tracks
    np.testing.assert_allclose(track.box.numpy(), shifted(A, 8))
    t = tracker(
        ConstantVelocityModel(),
        birth_min_frames=1,
        refine_weight=1.0,
        refine_iou=0.0,
        predict_invisible=False,
    )
    for x in range(3):
        t.update(det(shifted(A, 2 * x)))
    t.update(NONE)
    t.update(NONE)
    np.testing.assert_allclose(t.manager.tracks[0].box.numpy(), shifted(A, 6))


def test_track_leaving_the_image_is_terminated():
    t = ManagedTracker(
        ConstantVelocityModel(),
        TrackManagementConfig(birth_min_frames=1, match_iou=0.1, refine_weight=1.0, refine_iou=0.0),
        image_size=(50, 50),
    )
    t.update(det((30.0, 0.0, 40.0, 20.0)))
    t.update(det((38.0, 0.0, 48.0, 20.0)))  # 8 px a frame to the right (IoU 0.11)
    t.update(NONE)  # predicted at 46..56, clipped to 46..50
    assert [s.state for s in t.manager.tracks] == [TrackState.INVISIBLE]
    np.testing.assert_allclose(t.manager.tracks[0].box.numpy(), (46.0, 0.0, 50.0, 20.0))
    t.update(NONE)  # predicted beyond x = 50: no area left
    assert t.manager.tracks == []


def test_boxes_are_clipped_to_the_image():
    t = ManagedTracker(
        ConstantVelocityModel(),
        TrackManagementConfig(birth_min_frames=1, refine_weight=1.0, refine_iou=0.0),
        image_size=(50, 50),
    )
    t.update(det((38.0, 0.0, 48.0, 20.0)))
    out = t.update(det((42.0, 0.0, 52.0, 20.0)))  # detections are clipped too
    assert ids(out) == [1]
    np.testing.assert_allclose(out[0, :4], (42.0, 0.0, 50.0, 20.0))
    assert len(t.update(det((60.0, 0.0, 70.0, 20.0)))) == 0  # outside: dropped


# ----------------------------------------------------------------------------- NMS between tracks


@pytest.mark.parametrize("track_nms, expected", [(0.6, [1]), (0.95, [1, 2])])
def test_nms_between_tracks_keeps_the_better_established_one(track_nms, expected):
    model = Scripted()
    t = tracker(model, birth_min_frames=1, track_nms=track_nms, refine_iou=None)
    t.update(det(A))
    t.update(det(A, FAR))  # track 1 has 2 verified frames, track 2 has 1
    # both tracks are regressed onto one person: IoU(A+1, A+1.5) = 9.5 / 10.5 = 0.90
    model.override = torch.tensor([shifted(A, 1), shifted(A, 1.5)])
    out = t.update(det(shifted(A, 1), shifted(A, 1.5)))  # both verified, one-to-one
    assert ids(out) == expected
    states = {s.id: s.state for s in t.manager.tracks}
    assert states[1] is TrackState.ACTIVE
    assert states[2] is (TrackState.ACTIVE if len(expected) == 2 else TrackState.INVISIBLE)


# ----------------------------------------------------------------------------- the manager itself


def test_reset_restarts_ids_and_state():
    manager = TrackManager(Scripted(), TrackManagementConfig(birth_min_frames=1))
    manager.update(torch.tensor(det(A, FAR)))
    manager.reset(image_size=(640, 480))
    assert manager.tracks == [] and manager.frame_count == 0 and manager.image_size == (640, 480)
    out = manager.update(torch.tensor(det(FAR)))
    assert out[:, 4].tolist() == [1.0]


def test_motion_model_is_not_called_without_tracks():
    model = Scripted()
    t = tracker(model)
    t.update(NONE)
    t.update(det(A))  # a tentative track is not moved
    assert model.calls == 0


def test_update_runs_without_gradients():
    class Learned(torch.nn.Module):
        history_len = 2

        def __init__(self) -> None:
            super().__init__()
            self.shift = torch.nn.Parameter(torch.zeros(4))

        def forward(self, history, mask, detections=None, image_size=None):
            return history[:, -1] + self.shift

    t = tracker(Learned(), birth_min_frames=1)
    t.update(det(A))
    t.update(det(A))
    assert not t.manager.tracks[0].history.requires_grad


@pytest.mark.parametrize(
    "bad",
    [
        {"max_invisible": -1},
        {"birth_min_frames": 0},
        {"match_iou": 1.5},
        {"refine_iou": -0.1},
        {"refine_weight": 2.0},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        TrackManagementConfig(**bad)


def test_config_round_trip_and_presets():
    config = TrackManagementConfig(max_invisible=7)
    assert TrackManagementConfig.from_dict(config.to_dict()) == config
    paper = TrackManagementConfig()
    assert (paper.max_invisible, paper.refine_iou, paper.birth_min_frames) == (60, 0.6, 3)
    assert (paper.detection_nms, paper.track_nms) == (0.3, 0.6)
    tracktor = TrackManagementConfig.tracktor()
    assert (tracktor.birth_min_frames, tracktor.refine_iou, tracktor.max_invisible) == (1, None, 10)


def test_stack_histories_pads_left_and_cuts_old_boxes():
    h1 = torch.tensor([[0.0, 0, 1, 1]])
    h2 = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    history, mask = stack_histories([h1, h2], length=2)
    assert history.shape == (2, 2, 4)
    assert mask.tolist() == [[False, True], [True, True]]
    torch.testing.assert_close(history[1], h2[1:])
    torch.testing.assert_close(history[0, 1], h1[0])
    with pytest.raises(ValueError):
        stack_histories([torch.zeros((0, 4))], length=2)


def test_sot_preset_births_refines_and_kills_on_one_scenario():
    """Supp. A.2's MOT-by-SOT rules together, with a predictor that keeps boxes in place."""
    t = ManagedTracker(Scripted(), TrackManagementConfig.sot(max_invisible=60))
    # frames 1-3: the same person, consecutive IoU 8/12 = 0.67 >= 0.3; born at frame 3
    assert ids(t.update(det(A))) == [] and ids(t.update(det(shifted(A, 2)))) == []
    assert ids(t.update(det(shifted(A, 4)))) == [1]
    # frame 4: IoU(prediction A+4, detection A+5) = 9/11 > 0.6 -> their average
    np.testing.assert_allclose(t.update(det(shifted(A, 5)))[0, :4], shifted(A, 4.5))
    # frame 5: IoU 5/15 = 0.33, verified (>= match_iou) but not refined (<= 0.6)
    np.testing.assert_allclose(t.update(det(shifted(A, 9.5)))[0, :4], shifted(A, 4.5))
    for _ in range(60):  # invisible for K = 60 frames: still kept
        assert ids(t.update(NONE)) == []
    assert [s.state for s in t.manager.tracks] == [TrackState.INVISIBLE]
    t.update(NONE)  # the 61st: terminated
    assert t.manager.tracks == []
    sot = TrackManagementConfig.sot(detection_nms=0.5)
    assert (sot.refine_iou, sot.birth_min_frames, sot.birth_iou, sot.max_invisible) == (
        0.6,
        3,
        0.3,
        60,
    )
    assert sot.detection_nms == 0.5


def test_sot_defaults_differ_from_the_papers_rules_in_refinement_alone():
    from dataclasses import replace

    from deepmot.trackers.management import PAPER_SOT_REFINEMENT, SOT_MANAGEMENT

    assert replace(SOT_MANAGEMENT, **PAPER_SOT_REFINEMENT) == TrackManagementConfig.sot()
    assert SOT_MANAGEMENT.refine_iou <= SOT_MANAGEMENT.match_iou  # every verified track
    # the tables pass these to every row: they must be the other trackers' defaults
    defaults = TrackManagementConfig()
    assert all(getattr(defaults, k) == v for k, v in PAPER_SOT_REFINEMENT.items())
