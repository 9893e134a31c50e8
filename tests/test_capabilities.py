"""What a tracker declares it needs or can do, and the commands that read it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deepmot.cli import main
from deepmot.trackers import create_tracker, get_trainable, list_trainable
from deepmot.trackers.goturn import GoturnConfig
from deepmot.trackers.motion import LearnedMotionConfig
from deepmot.trackers.siamrpn import SiamRPNConfig


def test_trainables_declare_images_detections_and_backbones():
    declared = {
        name: (t.needs_images, t.detections_switch, sorted(t.backbones))
        for name in list_trainable()
        for t in [get_trainable(name)]
    }
    assert declared == {
        "goturn": (True, None, ["alexnet", "light"]),
        "motion": (False, "use_detections", []),
        "siamrpn": (True, None, ["alexnet", "light"]),
        "tracktor": (True, None, []),
    }
    motion = get_trainable("motion")
    assert motion.uses_detections(LearnedMotionConfig(use_detections=True))
    assert not motion.uses_detections(LearnedMotionConfig(use_detections=False))
    assert not get_trainable("goturn").uses_detections(GoturnConfig())
    assert get_trainable("goturn").backbones["alexnet"]() == GoturnConfig.alexnet()
    assert get_trainable("siamrpn").backbones["light"]() == SiamRPNConfig()


def test_a_detections_switch_names_a_field_of_the_model_config():
    with pytest.raises(ValueError, match="no field 'use_dets'"):
        replace(get_trainable("motion"), detections_switch="use_dets")


def test_only_tracktor_has_a_detector_of_its_own():
    for name in ("constant_velocity", "kalman", "motion", "sort"):
        tracker = create_tracker(name)
        assert not tracker.has_detector, name
        with pytest.raises(NotImplementedError, match="no detector of its own"):
            tracker.use_own_detector()
    tracktor = create_tracker("tracktor")
    assert tracktor.has_detector and not tracktor.predictor.config.private
    threshold = tracktor.predictor.config.detection_thresh
    tracktor.use_own_detector()
    assert tracktor.predictor.config.private
    assert tracktor.predictor.config.detection_thresh == threshold
    tracktor.use_own_detector(0.7)
    assert tracktor.predictor.config.detection_thresh == 0.7


def test_training_an_image_tracker_needs_frames(tmp_path: Path, capsys):
    root = tmp_path / "data"
    synth = ["synth", str(root), "--sequences", "1", "--frames", "8", "--people", "3"]
    assert main([*synth, "--no-images", "--no-progress", "--no-preview"]) == 0
    train = ["train", str(root), "--out", str(tmp_path / "run"), "--tracker", "goturn"]
    assert main([*train, "--iterations", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "tracker 'goturn' regresses from the image" in err and "SYNTH-01" in err
