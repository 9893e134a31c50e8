"""The predictor contract inside the track management: frames, scores, hooks, the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.errors import DeepMOTError
from deepmot.trackers import (
    ManagedTracker,
    Prediction,
    Predictor,
    TrackBatch,
    TrackManagementConfig,
    create_tracker,
    get_trainable,
    list_trackers,
    register_tracker,
    track_sequence,
)
from deepmot.trackers import registry as registry_module
from deepmot.trackers.registry import tracker_entry

A = (0.0, 0.0, 10.0, 20.0)
B = (100.0, 100.0, 110.0, 120.0)


def det(*boxes: tuple[float, ...]) -> np.ndarray:
    return np.asarray([[*b, 1.0] for b in boxes], dtype=np.float32).reshape(-1, 5)


def frame(score: float = 1.0) -> np.ndarray:
    """A 4x4 frame whose first pixel carries the score the test predictor reports."""
    image = np.zeros((4, 4, 3), np.uint8)
    image[0, 0, 0] = round(255 * score)
    return image


class ImagePredictor(Predictor):
    """Keeps boxes where they are; scores every track with the frame's first pixel; records
    what it was given."""

    history_len = 2
    needs_images = True

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.births: list[tuple[int, list[int]]] = []

    def predict(self, frame, tracks: TrackBatch, detections, image_size) -> Prediction:
        self.frames.append(frame)
        score = float(frame[0, 0, 0]) / 255
        return Prediction(tracks.last.clone(), torch.full((len(tracks),), score))

    def on_birth(self, frame, tracks: TrackBatch) -> None:
        self.births.append((int(frame[0, 0, 0]), tracks.ids.tolist()))
        for extra in tracks.extras:
            extra["template"] = int(frame[0, 0, 0])


class AppearancePredictor(ImagePredictor):
    """Adds an appearance similarity: 1 where the detection's x1 is even, else 0."""

    def appearance_similarity(self, frame, tracks: TrackBatch, boxes: torch.Tensor):
        similar = (boxes[:, 0] % 2 == 0).float()
        return similar[None, :].expand(len(tracks), -1)


def managed(predictor=None, **config) -> ManagedTracker:
    return ManagedTracker(predictor or ImagePredictor(), TrackManagementConfig(**config))


def test_a_predictor_that_needs_images_refuses_a_missing_frame():
    tracker = managed(birth_min_frames=1)
    assert tracker.needs_images and isinstance(tracker.predictor, Predictor)
    with pytest.raises(ValueError, match="pass frame"):
        tracker.update(det(A))
    assert tracker.update(det(), frame=frame()).shape == (0, 6)  # empty frame
    assert tracker.update(det(A), frame=frame()).shape == (1, 6)
    out = tracker.update(det(), frame=frame())  # no detections: the track is not verified
    assert out.shape == (0, 6)


def test_the_predictor_gets_the_frame_the_tracks_and_their_state():
    predictor = ImagePredictor()
    tracker = managed(predictor, birth_min_frames=1)
    tracker.update(det(A, B), frame=frame(0.2))
    assert predictor.births == [(51, [1, 2])]  # on_birth saw both new tracks and the frame
    tracker.update(det(A, B), frame=frame(0.9))
    assert len(predictor.frames) == 1 and predictor.frames[0][0, 0, 0] == 230
    assert [t.extra["template"] for t in tracker.manager.tracks] == [51, 51]
    assert predictor.births == [(51, [1, 2])]  # no second birth


def test_birth_hook_waits_for_the_sot_birth_rule():
    predictor = ImagePredictor()
    tracker = managed(predictor, birth_min_frames=3)
    for k in range(3):
        tracker.update(det(A), frame=frame(k / 10))
    assert predictor.births == [(round(255 * 0.2), [1])]


def test_tracks_scored_below_the_threshold_are_hidden():
    tracker = managed(birth_min_frames=1, min_track_score=0.5)
    assert tracker.update(det(A), frame=frame(1.0))[:, 4].tolist() == [1]
    assert tracker.update(det(A), frame=frame(1.0))[:, 4].tolist() == [1]
    assert len(tracker.manager.tracks[0].history) == 2  # verified: the history grows
    # scored 0.1: hidden before verification, so the detection does not verify it; it only
    # re-activates it (same id), and re-activation restarts the history at the detection
    out = tracker.update(det(A), frame=frame(0.1))
    assert out[:, 4].tolist() == [1]
    assert len(tracker.manager.tracks[0].history) == 1
    # without a threshold the scores are ignored: verified, the history grows
    plain = managed(birth_min_frames=1)
    for score in (1.0, 1.0, 0.0):
        assert plain.update(det(A), frame=frame(score))[:, 4].tolist() == [1]
    assert len(plain.manager.tracks[0].history) == 2  # history_len 2 keeps the last two
    assert plain.manager.tracks[0].hits == 3


def test_appearance_similarity_gates_revival():
    tracker = managed(AppearancePredictor(), birth_min_frames=1, max_invisible=5)
    tracker.update(det(A), frame=frame())
    tracker.update(det(), frame=frame())  # invisible now
    odd = (1.0, 0.0, 11.0, 20.0)  # overlaps A (IoU 0.82) but its appearance differs
    out = tracker.update(det(odd), frame=frame())
    assert out[:, 4].tolist() == [2]  # a new track, not the old one revived
    tracker2 = managed(AppearancePredictor(), birth_min_frames=1, max_invisible=5)
    tracker2.update(det(A), frame=frame())
    tracker2.update(det(), frame=frame())
    even = (2.0, 0.0, 12.0, 20.0)
    assert tracker2.update(det(even), frame=frame())[:, 4].tolist() == [1]


def test_track_sequence_feeds_frames_and_refuses_sequences_without_them():
    scene = generate_scene(SceneConfig(frames=6, width=160, height=120, people=3, seed=1))
    predictor = ImagePredictor()
    track_sequence(managed(predictor, birth_min_frames=1), scene.to_sequence(), progress=False)
    assert predictor.frames and all(f.shape == (120, 160, 3) for f in predictor.frames)
    without = scene.to_sequence()
    without.frame_source = None
    with pytest.raises(DeepMOTError, match="no frames"):
        track_sequence(managed(), without, progress=False)


def test_register_tracker_decorator(monkeypatch):
    from dataclasses import dataclass

    monkeypatch.setattr(registry_module, "_TRACKERS", dict(registry_module._TRACKERS))

    @dataclass(frozen=True)
    class StillConfig:
        jitter: float = 0.0

    @register_tracker("still", config=StillConfig)
    def still(config: StillConfig) -> ImagePredictor:
        predictor = ImagePredictor()
        predictor.jitter = config.jitter
        return predictor

    assert "still" in list_trackers()
    tracker = create_tracker("still", jitter=0.5, max_invisible=3)
    assert tracker.needs_images and tracker.predictor.jitter == 0.5
    assert tracker.config.max_invisible == 3
    with pytest.raises(ValueError, match="registered already"):
        register_tracker("still", config=StillConfig)(still)
    with pytest.raises(ValueError, match="no trained weights"):
        create_tracker("still", weights="w.safetensors")
    with pytest.raises(
        ValueError, match="nothing to train; trainable: goturn, motion, siamrpn, tracktor"
    ):
        get_trainable("still")
    with pytest.raises(ValueError, match="unknown settings"):
        create_tracker("still", nope=1)


class Still(Predictor):
    """Only ``predict``: every hook is the contract's default."""

    def predict(self, frame, tracks: TrackBatch, detections, image_size) -> Prediction:
        return Prediction(tracks.last.clone())


def test_the_contract_needs_predict_and_defaults_every_hook():
    with pytest.raises(TypeError, match="abstract"):
        Predictor()  # type: ignore[abstract]
    still = Still()
    assert (still.history_len, still.needs_images) == (1, False)
    assert not still.has_reid_head and not still.has_single_object_loss
    tracks = TrackBatch.from_histories([torch.tensor([A])], 1)
    dets = torch.tensor([[*A, 0.9]])
    assert still.prepare_detections(None, dets, (100, 100)) is dets
    assert still.appearance_similarity(None, tracks, dets[:, :4]) is None
    assert still.on_birth(None, tracks) is None and still.use_frame_cache(None) is None
    for call in (
        lambda: still.embed(None, dets[:, :4]),
        lambda: still.track_embeddings(tracks),
        lambda: still.single_object_loss(None, None, dets[:, :4], dets[:, :4]),
    ):
        with pytest.raises(NotImplementedError, match="Still has no"):
            call()
    # in the management: revival by IoU alone, births without a hook
    tracker = managed(still, birth_min_frames=1, max_invisible=5)
    assert tracker.update(det(A), frame=frame()).tolist() == [[*A, 1.0, 1.0]]
    assert tracker.update(det(), frame=frame()).shape == (0, 6)
    assert tracker.update(det(A), frame=frame())[:, 4].tolist() == [1]  # revived, same id


def test_registered_predictors_declare_their_capabilities():
    managed_names = [n for n in list_trackers() if tracker_entry(n).standalone is None]
    untrained = {"tracktor": {"detector": "untrained", "reid": "head"}}
    declared = {}
    for name in managed_names:
        predictor = create_tracker(name, **untrained.get(name, {})).predictor
        assert isinstance(predictor, Predictor), name
        declared[name] = (predictor.has_reid_head, predictor.has_single_object_loss)
    assert declared == {
        "constant_velocity": (False, False),
        "goturn": (False, True),
        "kalman": (False, False),
        "motion": (False, False),
        "siamrpn": (False, True),
        "tracktor": (True, False),
    }
    without = create_tracker("tracktor", detector="untrained", reid="none").predictor
    assert not without.has_reid_head
    # no appearance hook without embeddings: revival falls back to IoU alone
    tracks = TrackBatch.from_histories([torch.tensor([A])], 1)
    image = np.zeros((64, 64, 3), np.uint8)
    assert without.appearance_similarity(image, tracks, torch.tensor([A])) is None
