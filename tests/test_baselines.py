"""SORT, ByteTrack and OC-SORT on hand-made frames whose ids can be stated in advance: a
crossing, missed frames, SORT's ``min_hits``, ByteTrack's low-score second stage, OC-SORT's
recovery by last observation and its re-update along a virtual trajectory."""

from __future__ import annotations

import numpy as np
import pytest

from deepmot.trackers import create_tracker
from deepmot.trackers.kalman import KalmanBoxFilter, xyah_to_xyxy, xyxy_to_xyah
from deepmot.trackers.ocsort import OCSortConfig, OCSortTracker, directions
from deepmot.trackers.sort import SortConfig, SortTracker

BASELINES = ["sort", "bytetrack", "ocsort"]
EMPTY = np.empty((0, 5), np.float32)


def person(x: float, y: float = 100.0, score: float = 0.9) -> list[float]:
    """A 40 x 100 box with its left edge at ``x``, top at ``y``."""
    return [x, y, x + 40.0, y + 100.0, score]


def frame(*people: list[float]) -> np.ndarray:
    return np.array(people, np.float32).reshape(-1, 5)


def ids_of(out: np.ndarray) -> list[int]:
    return out[:, 4].astype(int).tolist()


def test_directions_by_hand():
    origin = np.array([[0.0, 0.0, 2.0, 2.0]])  # centre (1, 1)
    targets = np.array([[3.0, 0.0, 5.0, 2.0], [0.0, 4.0, 2.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    np.testing.assert_allclose(
        directions(origin, targets)[0], [[0, 1], [1, 0], [0, 0]], atol=1e-6
    )  # (dy, dx): right, down, no move


@pytest.mark.parametrize("name", BASELINES)
def test_stable_ids_and_boxes_on_two_walkers(name):
    tracker = create_tracker(name)
    for t in range(40):
        dets = frame(person(100 + 4 * t), person(600 - 3 * t, 300))
        out = tracker.update(dets)
        if t >= 3:  # every baseline reports both by then
            assert ids_of(out) == [1, 2]
            np.testing.assert_allclose(out[:, :4], dets[:, :4], atol=4.0 if t < 15 else 1.0)


@pytest.mark.parametrize("name", BASELINES)
def test_crossing_keeps_ids(name):
    """Two people cross, one walking right at y = 100, one left at y = 130 (boxes overlap by
    IoU 0.54 where they meet); the filters' velocities keep each id on its walker."""
    tracker = create_tracker(name)
    for t in range(30):
        right, left = person(100 + 8 * t), person(332 - 8 * t, 130)
        out = tracker.update(frame(right, left))
        if t >= 3:
            by_id = {int(r[4]): r[:4] for r in out}
            assert sorted(by_id) == [1, 2]
            np.testing.assert_allclose(by_id[1], right[:4], atol=3.0)
            np.testing.assert_allclose(by_id[2], left[:4], atol=3.0)


def test_sort_min_hits_delays_output():
    """Opened at frame 4 (after the sequence's first min_hits = 3 frames), a track is matched in
    frames 5, 6, 7: reported from frame 7 on. In the first 3 frames every track is reported."""
    tracker = SortTracker(SortConfig())
    shown = []
    for t in range(1, 11):
        dets = frame(person(100 + 2 * t)) if t >= 4 else EMPTY
        shown.append(ids_of(tracker.update(dets)))
    assert shown == [[], [], [], [], [], [], [1], [1], [1], [1]]
    early = SortTracker(SortConfig())
    assert [ids_of(early.update(frame(person(100 + 2 * t)))) for t in range(5)] == [[1]] * 5


def test_sort_one_missed_frame_keeps_the_track_two_drop_it():
    """max_age = 1: after one missed frame the track is matched again and keeps id 1, reported
    once it has 3 new consecutive matches; after two missed frames it is gone and id 2 starts."""
    tracker = SortTracker(SortConfig())
    shown = []
    for t in range(12):
        missed = t in (4, 9, 10)
        shown.append(ids_of(tracker.update(EMPTY if missed else frame(person(100 + 2 * t)))))
    # frames 0-3 reported (start of sequence), 4 missed, 5-7 re-matched (hit streak 1, 2, 3),
    # 8 reported, 9-10 missed (dropped), 11 opens a new, not yet reported track
    assert shown == [[1], [1], [1], [1], [], [], [], [1], [1], [], [], []]
    assert tracker.next_id == 2 and len(tracker.tracks) == 1


def test_bytetrack_second_stage_recovers_a_low_score_track():
    """Scored 0.9, then 0.3 for frames 5-7 (an occlusion), then 0.9 again. The low-score
    detections are matched in the second stage: id 1 is reported in every frame. Without a low
    band (low_thresh = track_thresh) the track is lost in frames 5-7, then re-found as id 1.
    A lone low-score detection never opens a track."""
    scores = [0.9] * 5 + [0.3] * 3 + [0.9] * 4

    def run(**overrides):
        tracker = create_tracker("bytetrack", **overrides)
        out = []
        for t, score in enumerate(scores):
            dets = frame(person(100 + 3 * t, score=score), person(500, 300, score=0.3))
            out.append(ids_of(tracker.update(dets)))
        return out

    assert run() == [[1]] * 12
    without_low = run(low_thresh=0.5)
    assert without_low == [[1]] * 5 + [[]] * 3 + [[1]] * 4


def test_bytetrack_new_track_needs_a_second_frame_after_the_first():
    tracker = create_tracker("bytetrack")
    assert ids_of(tracker.update(frame(person(100)))) == [1]  # the first frame confirms at once
    assert ids_of(tracker.update(frame(person(102), person(400)))) == [1]  # tentative
    assert ids_of(tracker.update(frame(person(104), person(401)))) == [1, 2]
    # scored 0.55: high (> 0.5) but below new_track_thresh (0.6): never opens a track
    for t in range(3):
        assert ids_of(tracker.update(frame(person(106 + 2 * t), person(700, score=0.55)))) == [1]


def _stop_after_running(tracker_name: str, **overrides) -> list[list[int]]:
    """A walker at 16 px a frame for 10 frames stops, is missed for 2 frames, and is seen
    standing where it was last seen for 8 frames; the filter's prediction has moved on by
    about 3 x 16 px, beyond any overlap with the 40 px wide box."""
    tracker = create_tracker(tracker_name, **overrides)
    shown = []
    for t in range(20):
        if t < 10:
            dets = frame(person(100 + 16 * t))
        elif t < 12:
            dets = EMPTY
        else:
            dets = frame(person(100 + 16 * 9))
        shown.append(ids_of(tracker.update(dets)))
    return shown


def test_ocsort_recovers_a_stopped_walker_by_its_last_observation():
    ocsort = _stop_after_running("ocsort")
    assert {i for ids in ocsort for i in ids} == {1}
    assert ocsort[-1] == [1]
    sort = _stop_after_running("sort", max_age=30)  # the same lifetime, matching predictions
    assert sort[-1] == [2]


def test_ocsort_re_updates_along_the_virtual_trajectory():
    """A standing track missed for 3 frames, then seen 12 px to the right: its filter state is
    the prediction of its first missed frame updated with boxes 3, 6, 9 and 12 px on (predicted
    between them), computed here with the filter by hand."""
    tracker = OCSortTracker(OCSortConfig(min_hits=0))
    kf = KalmanBoxFilter()
    start = np.array(person(100)[:4])
    for _ in range(3):
        tracker.update(frame(person(100)))
    saved = tracker.bank.filter.predict(tracker.bank.mean.copy(), tracker.bank.cov.copy())
    for _ in range(3):
        tracker.update(EMPTY)
    out = tracker.update(frame(person(112)))
    assert ids_of(out) == [1]
    np.testing.assert_allclose(out[0, :4], person(112)[:4])  # reported at its observation
    mean, cov = saved
    for step in range(1, 5):
        mean, cov = kf.update(mean, cov, xyxy_to_xyah((start + [3 * step, 0, 3 * step, 0])[None]))
        if step < 4:
            mean, cov = kf.predict(mean, cov)
    np.testing.assert_allclose(tracker.bank.mean, mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(tracker.bank.cov, cov, rtol=1e-9, atol=1e-9)
    # the velocity it learned is about the 3 px a frame of the virtual trajectory
    assert 1.5 < tracker.bank.mean[0, 4] < 4.5
    np.testing.assert_allclose(xyah_to_xyxy(mean[:, :4])[0], tracker.bank.boxes[0])


def test_ocsort_drops_detections_below_det_thresh():
    tracker = create_tracker("ocsort", min_hits=0)
    assert ids_of(tracker.update(frame(person(100, score=0.55), person(300, score=0.65)))) == [1]


def test_missing_score_counts_as_certain():
    """MOTChallenge's score -1 (the cleaned detection files) reads as 1: tracked by all."""
    for name in BASELINES:
        tracker = create_tracker(name)
        for t in range(4):
            out = tracker.update(frame(person(100 + 2 * t, score=-1.0)))
        assert ids_of(out) == [1], name
