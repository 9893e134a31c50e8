"""Tracktor: camera motion, the tracker contract on frames, gradients, training, the CLI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from deepmot.boxes import box_iou
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.trackers import create_tracker, track_sequence
from deepmot.trackers.camera_motion import ecc_warp, warp_boxes
from deepmot.trackers.predictor import TrackBatch
from deepmot.trackers.tracktor import (
    TracktorConfig,
    TracktorPredictor,
    build_tracktor,
    load_tracktor,
    save_tracktor,
)

UNTRAINED = {"detector": "untrained"}


@pytest.fixture(scope="module")
def rendered():
    scene = generate_scene(SceneConfig(frames=8, width=320, height=240, people=4, seed=5))
    return scene.to_sequence()


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (240, 320, 3)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 3).clip(0, 255).astype(np.uint8)


def test_ecc_recovers_a_known_translation():
    previous = _texture()
    shift = np.float32([[1, 0, 4.0], [0, 1, -3.0]])  # content moves right 4 px, up 3 px
    current = cv2.warpAffine(previous, shift, (320, 240), borderMode=cv2.BORDER_REFLECT)
    warp = ecc_warp(previous, current)
    np.testing.assert_allclose(warp, shift, atol=0.05)
    box = torch.tensor([[100.0, 50.0, 140.0, 130.0]])
    torch.testing.assert_close(
        warp_boxes(box, warp), torch.tensor([[104.0, 47.0, 144.0, 127.0]]), atol=0.1, rtol=0
    )
    flat = np.full((240, 320, 3), 128, np.uint8)
    np.testing.assert_array_equal(ecc_warp(flat, flat), np.eye(2, 3))  # no texture: identity


@pytest.mark.parametrize("scale", [0.5, 0.25])
def test_ecc_on_shrunk_frames_gives_the_full_size_warp(scale):
    """A known rotation and shift, estimated on frames shrunk by ``scale``: the warp comes back
    in full-size pixels (the shift is not shrunk with the frames)."""
    previous = cv2.resize(_texture(1), (640, 480), interpolation=cv2.INTER_LINEAR)
    angle = np.deg2rad(0.8)
    rotation = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    truth = np.hstack([rotation, np.float32([[9.0], [-6.0]])])
    current = cv2.warpAffine(previous, truth, (640, 480), borderMode=cv2.BORDER_REFLECT)
    warp = ecc_warp(previous, current, scale=scale)
    corners = np.float32([[0, 0, 1], [639, 0, 1], [0, 479, 1], [639, 479, 1]])
    moved, expected = corners @ warp.T, corners @ truth.T
    assert np.abs(moved - expected).max() < 0.5, (warp, truth)  # within half a pixel
    with pytest.raises(ValueError, match="scale"):
        ecc_warp(previous, current, scale=0.0)


def test_empty_frames_and_frames_without_detections(rendered):
    tracker = create_tracker(
        "tracktor",
        **UNTRAINED,
        detection_thresh=0.0,
        min_track_score=None,
        birth_min_frames=1,  # births at once, as published
        image_size=(320, 240),
    )
    image = rendered.read_image(1)
    for empty in (np.empty((0, 5), np.float32), np.empty((0, 6))):
        out = tracker.update(empty, frame=image)
        assert out.shape == (0, 6) and out.dtype == np.float32
    with pytest.raises(ValueError, match="pass frame"):
        tracker.update(np.empty((0, 5), np.float32))
    tracker.reset(image_size=(320, 240))
    dets = rendered.detections_at(1)
    first = tracker.update(dets, frame=image)
    assert len(first) > 0 and first[:, 4].tolist() == list(range(1, len(first) + 1))
    for frame in (2, 3):  # no detections: the tracks live on by regression (Tracktor)
        out = tracker.update(np.empty((0, 5), np.float32), frame=rendered.read_image(frame))
        assert sorted(out[:, 4].tolist()) == first[:, 4].tolist()
        assert (out[:, 2:4] > out[:, :2]).all() and (out[:, 2] <= 320).all()


def test_tracks_a_rendered_sequence_with_private_detections(rendered):
    tracker = create_tracker("tracktor", **UNTRAINED, private=True, detection_thresh=0.0)
    results = track_sequence(tracker, rendered, progress=False)
    assert results.frames.max() <= 8
    for frame in np.unique(results.frames):
        ids = results.ids[results.frames == frame]
        assert len(np.unique(ids)) == len(ids)


def _person(sequence, frame):
    gt = sequence.gt_at(frame).active_pedestrians()
    best = int(np.argmax(gt.visibility * (gt.boxes[:, 3] - gt.boxes[:, 1])))
    return torch.from_numpy(gt.boxes[best : best + 1])


def test_gradients_reach_the_box_predictor_not_the_frozen_detector(rendered):
    torch.manual_seed(0)
    model = build_tracktor(TracktorConfig(**UNTRAINED)).train()
    predictor = TracktorPredictor(model)
    batch = TrackBatch.from_histories([_person(rendered, 1)], 1)
    out = predictor.predict(rendered.read_image(2), batch, None, (320, 240))
    (out.boxes.sum() + out.embeddings.sum()).backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == {
        "detector.roi_heads.box_predictor.bbox_pred.weight",
        "detector.roi_heads.box_predictor.bbox_pred.bias",
        "reid.weight",
        "reid.bias",
    }
    assert all(not p.requires_grad for p in model.detector.backbone.parameters())
    assert not model.detector.training  # BatchNorm frozen, heads in eval mode
    assert sum(p.numel() for p in model.reid.parameters()) == 256 * 128 + 128


def test_a_few_iterations_move_a_shifted_box_toward_its_object(rendered):
    torch.manual_seed(0)
    model = build_tracktor(TracktorConfig(**UNTRAINED)).train()
    predictor = TracktorPredictor(model)
    target = _person(rendered, 2)
    size = target[:, 2:] - target[:, :2]
    shifted = target + torch.cat([size * 0.2, size * 0.2], dim=1)  # 20% right and down
    batch = TrackBatch.from_histories([shifted], 1)
    image = rendered.read_image(2)
    # untrained detector: its box features are small, so a larger step than DeepMOT's 1e-4
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)

    def iou() -> float:
        with torch.no_grad():
            return float(box_iou(predictor.predict(image, batch, None, None).boxes, target))

    before = iou()
    for _ in range(15):
        loss = torch.nn.functional.smooth_l1_loss(
            predictor.predict(image, batch, None, None).boxes, target
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = iou()
    assert after > before + 0.1 and after > float(box_iou(shifted, target)) + 0.1


def test_weights_round_trip_and_track_then_eval_on_the_command_line(tmp_path, rendered):
    from deepmot.cli import main

    torch.manual_seed(0)
    model = build_tracktor(TracktorConfig(**UNTRAINED, detection_thresh=0.0))
    torch.nn.init.normal_(model.reid.weight)
    save_tracktor(model, tmp_path / "tracktor.safetensors", {"note": "untrained"})
    loaded = load_tracktor(tmp_path / "tracktor.safetensors")
    assert loaded.config == model.config and loaded.detector_config == model.detector_config
    assert torch.equal(loaded.reid.weight, model.reid.weight)

    root = tmp_path / "data"
    args = ["--sequences", "1", "--frames", "5", "--width", "320", "--height", "240"]
    assert main(["synth", str(root), *args, "--people", "4", "--no-preview"]) == 0
    weights = str(tmp_path / "tracktor.safetensors")
    results = tmp_path / "results"
    argv = ["track", str(root), "--out", str(results), "--tracker", "tracktor"]
    assert main([*argv, "--weights", weights, "--no-progress"]) == 0
    assert (results / "SYNTH-01.txt").is_file()
    assert main(["eval", str(root), str(results)]) == 0


def _occluded_run(sequence, revive_similarity):
    """Track frames 1-12 with the tallest person hidden in frames 6-8 (their pixels covered by
    the background beside them, their detection removed); returns the id that follows them
    at frame 5 and at frame 12 (None where no track does)."""
    tracker = create_tracker(  # the shipped detector; a still camera: no ECC needed
        "tracktor",
        reid="head",
        revive_similarity=revive_similarity,
        camera_motion=False,
        image_size=(640, 480),
    )
    follow = {}
    for frame in range(1, 13):
        image = sequence.read_image(frame).copy()
        dets = sequence.detections_at(frame)
        gt = sequence.gt_at(frame).active_pedestrians()
        person = gt.boxes[np.argmax(gt.boxes[:, 3] - gt.boxes[:, 1])]
        if 6 <= frame <= 8:
            x1, y1, x2, y2 = person.astype(int)
            width = x2 - x1 + 5
            image[y1:y2, x1:x2] = image[y1:y2, x1 - width : x2 - width]
            dets = dets[np.abs(dets[:, :4] - person).max(axis=1) > 30]
        out = tracker.update(dets, frame=image)
        if frame in (5, 12) and len(out):
            iou = box_iou(torch.from_numpy(out[:, :4]), torch.from_numpy(person[None]))[:, 0]
            follow[frame] = int(out[int(iou.argmax()), 4]) if float(iou.max()) > 0.5 else None
    return follow.get(5), follow.get(12)


def test_reid_revives_a_track_after_a_short_occlusion_with_its_old_id():
    scene = generate_scene(SceneConfig(frames=12, people=2, seed=11, fp_rate=0.0, miss_rate=0.0))
    sequence = scene.to_sequence()
    before, after = _occluded_run(sequence, revive_similarity=0.5)
    assert before is not None and after == before
    # the appearance gate decides: demanding a near-perfect match gives the person a new id
    before, after = _occluded_run(sequence, revive_similarity=0.999)
    assert before is not None and after is not None and after != before


@pytest.mark.slow
def test_the_tracktor_demo_writes_its_table(tmp_path):
    from deepmot.demos.tracktor import run_tracktor_demo

    rows = run_tracktor_demo(
        tmp_path, iterations=2, sequences=1, frames=24, matcher="sinkhorn", progress=False
    )
    assert [r["variant"] for r in rows] == ["Vanilla", "Smooth L1", "DeepMOT"]
    assert (tmp_path / "table.md").is_file() and (tmp_path / "training_curves.png").is_file()
    assert (tmp_path / "deepmot" / "tracktor.safetensors").is_file()


def test_an_untrained_reid_head_is_the_same_in_every_build():
    torch.manual_seed(1)
    first = build_tracktor(TracktorConfig(**UNTRAINED)).reid.weight
    torch.manual_seed(2)
    second = build_tracktor(TracktorConfig(**UNTRAINED)).reid.weight
    assert torch.equal(first, second)
