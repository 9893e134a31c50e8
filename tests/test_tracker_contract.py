"""The tracker contract over every registered tracker, and ``track_sequence``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmot import WEIGHTS_DIR
from deepmot.boxes import box_iou
from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.errors import DeepMOTError
from deepmot.io import mot
from deepmot.trackers import (
    Tracker,
    check_detections,
    create_tracker,
    list_trackers,
    track_sequence,
)
from deepmot.trackers.registry import get_trainable, shipped_weights, tracker_entry

# Tracktor regresses through a detector and runs its contract on rendered frames in its own test
# module (tests/test_tracktor.py)
NAMES = [name for name in list_trackers() if name != "tracktor"]
# trackers inside the shared track management, and whole trackers with their own (SORT...)
MANAGED = [n for n in NAMES if tracker_entry(n).standalone is None]
STANDALONE = [n for n in NAMES if tracker_entry(n).standalone is not None]
# managed trackers that follow boxes without the image (the SOT trackers need frames, and
# untrained they keep each box where it was, so the motion tests below are not theirs); the
# contract tests build every tracker untrained (pretrained=False), shipped weights aside
BOX_ONLY = [n for n in MANAGED if not create_tracker(n, pretrained=False).needs_images]
FRAME = np.zeros((600, 800, 3), np.uint8)  # a blank frame for the trackers that need one


def at_once(name: str, lifetime: int | None = None) -> dict:
    """Overrides that report a track from its first detection (ByteTrack: in a sequence's
    first frame, else from its second) and, with ``lifetime``, drop it after that many frames
    without one: each tracker's own settings for it."""
    if name in ("sort", "ocsort"):
        return {"min_hits": 0} | ({"max_age": lifetime} if lifetime is not None else {})
    if name == "bytetrack":
        return {"track_buffer": lifetime} if lifetime is not None else {}
    return {"birth_min_frames": 1} | ({"max_invisible": lifetime} if lifetime is not None else {})


def walkers(frame: int) -> np.ndarray:
    """Two people walking towards each other in parallel lanes, ``(2, 5)`` xyxy + score -1."""
    left = [100.0 + 4 * frame, 100.0, 140.0 + 4 * frame, 200.0]
    right = [600.0 - 3 * frame, 300.0, 640.0 - 3 * frame, 400.0]
    return np.array([[*left, -1.0], [*right, -1.0]], dtype=np.float32)


def test_registry_names_and_unknown_name():
    assert {"motion", "constant_velocity"} <= set(NAMES)
    assert STANDALONE == ["bytetrack", "ocsort", "sort"]
    with pytest.raises(
        ValueError,
        match="valid names: bytetrack, constant_velocity, goturn, kalman, motion, ocsort, "
        "siamrpn, sort, tracktor",
    ):
        create_tracker("deepsort")
    with pytest.raises(ValueError, match="unknown settings"):
        create_tracker("constant_velocity", patience=3)


def _state(tracker: Tracker) -> dict[str, torch.Tensor]:
    return tracker.predictor.model.state_dict()


def test_shipped_weights_are_those_in_the_weights_folder():
    shipped = {n: shipped_weights(n) for n in list_trackers()}
    assert shipped == {
        n: WEIGHTS_DIR / f"{n}.safetensors" if n in ("goturn", "siamrpn") else None
        for n in list_trackers()
    }
    with pytest.raises(ValueError, match="valid names"):
        shipped_weights("deepsort")


@pytest.mark.parametrize("name", ["goturn", "siamrpn"])
def test_create_tracker_loads_shipped_weights_unless_told_not_to(name, caplog):
    path = WEIGHTS_DIR / f"{name}.safetensors"
    stored = get_trainable(name).load(path).state_dict()
    with caplog.at_level("INFO", logger="deepmot.trackers.registry"):
        shipped = _state(create_tracker(name))
    assert str(path) in caplog.text
    assert shipped.keys() == stored.keys()
    assert all(torch.equal(shipped[k], stored[k]) for k in stored)
    untrained = _state(create_tracker(name, pretrained=False))
    assert not all(torch.equal(untrained[k], stored[k]) for k in stored)
    # the shipped weights fix the model's config, as given ones do
    model_field = next(iter(tracker_entry(name).config.__dataclass_fields__))
    with pytest.raises(ValueError, match="fix the model's config"):
        create_tracker(name, **{model_field: getattr(tracker_entry(name).config(), model_field)})


@pytest.mark.parametrize("name", STANDALONE)
def test_standalone_tracker_takes_its_own_settings_only(name):
    tracker = create_tracker(name, image_size=(640, 480), **at_once(name, lifetime=7))
    assert isinstance(tracker, Tracker)
    assert tracker.image_size == (640, 480)
    with pytest.raises(ValueError, match="own track management"):
        create_tracker(name, max_invisible=7)
    with pytest.raises(ValueError, match="no trained weights"):
        create_tracker(name, weights="x.safetensors")


@pytest.mark.parametrize("name", MANAGED)
def test_is_a_tracker_with_overridable_management(name):
    tracker = create_tracker(name, pretrained=False, max_invisible=7, image_size=(640, 480))
    assert isinstance(tracker, Tracker)
    assert tracker.config.max_invisible == 7


@pytest.mark.parametrize("name", NAMES)
def test_empty_frames(name):
    tracker = create_tracker(name, pretrained=False)
    for empty in (np.empty((0, 5), np.float32), np.empty((0, 6)), np.empty(0)):
        out = tracker.update(empty, FRAME)
        assert isinstance(out, np.ndarray) and out.shape == (0, 6) and out.dtype == np.float32
    out = tracker.update(torch.empty((0, 5)), FRAME)
    assert isinstance(out, torch.Tensor) and out.shape == (0, 6)


@pytest.mark.parametrize("name", NAMES)
def test_frames_without_detections_between_frames_with_them(name):
    tracker = create_tracker(name, pretrained=False, **at_once(name, lifetime=3))
    assert tracker.update(walkers(0), FRAME).shape == (2, 6)
    for _ in range(3):
        assert tracker.update(np.empty((0, 5), np.float32), FRAME).shape == (0, 6)
    out = tracker.update(walkers(4), FRAME)
    assert out[:, 4].tolist() == [1.0, 2.0]  # both re-found, same ids


@pytest.mark.parametrize("name", BOX_ONLY)
def test_stable_ids_on_a_simple_moving_scene(name):
    tracker = create_tracker(name, pretrained=False)  # paper defaults: born after 3 frames
    seen = []
    for frame in range(40):
        out = tracker.update(walkers(frame))
        seen.append(out[:, 4].astype(int).tolist())
        if frame >= 2:
            # tracks follow the people: within a few pixels at once (a Kalman filter first
            # learns the velocity), within a pixel once settled
            atol = 1.0 if frame >= 15 else 4.0
            np.testing.assert_allclose(out[:, :4], walkers(frame)[:, :4], atol=atol)
            assert out.dtype == np.float32
    assert seen[:2] == [[], []]
    assert all(ids == [1, 2] for ids in seen[2:])


@pytest.mark.parametrize("name", NAMES)
def test_ids_never_reused_and_reset_restarts_at_1(name):
    tracker = create_tracker(name, pretrained=False, **at_once(name, lifetime=2))
    assert tracker.update(walkers(0), FRAME)[:, 4].tolist() == [1.0, 2.0]
    for _ in range(3):
        tracker.update(np.empty((0, 5), np.float32), FRAME)  # both terminated after K = 2
    tracker.update(walkers(4), FRAME)  # ByteTrack reports a new track from its second frame
    assert tracker.update(walkers(5), FRAME)[:, 4].tolist() == [3.0, 4.0]
    tracker.reset()
    assert tracker.update(walkers(0), FRAME)[:, 4].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name", NAMES)
def test_torch_in_torch_out_and_six_columns(name):
    tracker = create_tracker(name, pretrained=False, **at_once(name))
    dets = torch.from_numpy(np.concatenate([walkers(0), np.ones((2, 1), np.float32)], axis=1))
    out = tracker.update(dets, FRAME)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 6)


@pytest.mark.parametrize("name", NAMES)
def test_input_validation(name):
    tracker = create_tracker(name, pretrained=False, **at_once(name))
    with pytest.raises(ValueError, match=r"shape \(K, 5\)"):
        tracker.update(np.zeros((3, 4), np.float32), FRAME)
    with pytest.raises(ValueError, match=r"shape \(K, 5\)"):
        tracker.update(np.zeros(5, np.float32), FRAME)
    nan = walkers(0)
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="row 1 holds NaN"):
        tracker.update(nan, FRAME)
    with pytest.raises(TypeError):
        tracker.update([[0, 0, 1, 1, 1]], FRAME)
    # zero-area and inverted boxes are dropped, not fatal
    degenerate = np.array([[10, 10, 10, 50, 1], [10, 10, 5, 50, 1]], np.float32)
    assert tracker.update(degenerate, FRAME).shape == (0, 6)


def test_check_detections_keeps_negative_scores_and_adds_a_class():
    dets = check_detections(np.array([[0, 0, 10, 10, -1]], np.float32))
    assert dets.tolist() == [[0, 0, 10, 10, -1, -1]]
    assert dets.dtype == torch.float32


def _synthetic_sequence() -> Sequence:
    frames = np.repeat(np.arange(1, 31), 2)
    rows = np.concatenate([walkers(f) for f in range(30)])
    boxes = rows[:, :4].astype(np.float64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    dets = mot.Detections(frames=frames, boxes_xywh=xywh, scores=rows[:, 4].astype(np.float64))
    # frames 31..35 have no detections at all
    return Sequence("walkers", 35, 800, 600, detections=dets)


@pytest.mark.parametrize("name", BOX_ONLY)
def test_track_sequence_on_a_synthetic_sequence(name, tmp_path):
    results = track_sequence(
        create_tracker(name, pretrained=False), _synthetic_sequence(), progress=False
    )
    assert len(results) == 2 * 28  # born at frame 3 (SOT birth rule), 2 people to frame 30
    assert set(results.ids.tolist()) == {1, 2}
    assert results.frames.min() == 3 and results.frames.max() == 30
    np.testing.assert_allclose(
        results.boxes_xywh[:, 2:], np.tile([40.0, 100.0], (56, 1)), atol=0.05
    )
    mot.write_results(tmp_path / "walkers.txt", results)
    assert len(mot.read_results(tmp_path / "walkers.txt")) == 56


@pytest.fixture(scope="module")
def rendered() -> Sequence:
    scene = generate_scene(SceneConfig(frames=15, width=320, height=240, people=4, seed=5))
    return scene.to_sequence()


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_rendered_synthetic_frames(name, rendered):
    tracker = create_tracker(name, pretrained=False)
    tracker.reset(image_size=(rendered.im_width, rendered.im_height))
    for frame in rendered.frames:
        image = rendered.read_image(frame)
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8
        out = tracker.update(rendered.detections_at(frame), frame=image)
        assert len(np.unique(out[:, 4])) == len(out)
        assert (out[:, :2] >= 0).all() and (out[:, 2] <= 320).all() and (out[:, 3] <= 240).all()
    results = track_sequence(tracker, rendered, progress=False)
    assert len(results) > 0 and results.frames.max() <= 15


def test_track_sequence_needs_detections():
    with pytest.raises(DeepMOTError, match="no detections"):
        track_sequence(create_tracker("constant_velocity"), Sequence("x", 3, 10, 10))


@pytest.mark.data
def test_constant_velocity_on_mot17_09(mot_root, tmp_path):
    path = mot_root / "MOT17-09"
    if not (path / "det" / "deepmot_clean_FRCNN.txt").is_file():
        pytest.skip(f"{path}/det/deepmot_clean_FRCNN.txt not found")
    sequence = Sequence.from_dir(path, det_file="deepmot_clean_FRCNN.txt")
    results = track_sequence(create_tracker("constant_velocity"), sequence, progress=False)
    pairs = set(zip(results.frames.tolist(), results.ids.tolist(), strict=True))
    assert len(pairs) == len(results) > 1000  # no duplicate (frame, id)
    assert results.frames.min() >= 1 and results.frames.max() <= sequence.seq_length
    assert np.isfinite(results.boxes_xywh).all() and (results.boxes_xywh[:, 2:] > 0).all()
    assert (results.boxes_xywh[:, :2] >= 0).all()
    right = results.boxes_xywh[:, 0] + results.boxes_xywh[:, 2]
    assert (right <= sequence.im_width + 1e-3).all()  # clipped to the image
    # every reported box was verified by a detection of its frame (IoU >= match_iou = 0.3;
    # refinement and births only raise that overlap)
    size = np.array([sequence.im_width, sequence.im_height] * 2, np.float32)
    for frame in np.unique(results.frames):
        rows = results.frames == frame
        boxes = results.boxes_xywh[rows].astype(np.float32)
        boxes[:, 2:] += boxes[:, :2]
        dets = np.clip(sequence.detections_at(int(frame))[:, :4], 0, size)
        assert (box_iou(boxes, dets).max(axis=1) >= 0.3 - 1e-4).all(), frame
    mot.write_results(tmp_path / "MOT17-09.txt", results)
    assert len(mot.read_results(tmp_path / "MOT17-09.txt")) == len(results)
