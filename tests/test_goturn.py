"""GOTURN as MOT-by-SOT: residual start, batched = one at a time, frame memory, weights;
and, for GOTURN and SiamRPN, a short training run that improves single-object IoU on rendered
frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmot.boxes import box_iou
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.trackers import TrackBatch, create_tracker
from deepmot.trackers.crops import context_regions, crop
from deepmot.trackers.goturn import GoturnConfig, GoturnModel, GoturnPredictor, load_goturn
from deepmot.trackers.sot import as_image

BOXES = torch.tensor(
    [[10.0, 20.0, 50.0, 120.0], [200.0, 50.0, 230.0, 130.0], [-5.0, 150.0, 25.0, 235.0]]
)


def _frames(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(2))


def _random_head(seed: int = 0) -> GoturnPredictor:
    torch.manual_seed(seed)
    model = GoturnModel(GoturnConfig(hidden=32)).eval()
    torch.nn.init.normal_(model.regressor[-1].weight, std=0.05)  # not the zero start
    return GoturnPredictor(model)


def _batch(boxes: torch.Tensor) -> TrackBatch:
    return TrackBatch.from_histories([b[None] for b in boxes], 1)


def test_untrained_model_keeps_boxes_in_place():
    predictor = GoturnPredictor(GoturnModel().eval())
    before, after = _frames()
    tracks = _batch(BOXES)
    predictor.on_birth(before, tracks)
    with torch.no_grad():
        out = predictor.predict(after, tracks, None, (320, 240)).boxes
    torch.testing.assert_close(out, BOXES, atol=1e-4, rtol=0)


def test_batched_prediction_equals_one_track_at_a_time():
    predictor = _random_head()
    before, after = _frames()
    with torch.no_grad():
        tracks = _batch(BOXES)
        predictor.on_birth(before, tracks)
        batched = predictor.predict(after, tracks, None, (320, 240)).boxes
        for i in range(len(BOXES)):
            one = _batch(BOXES[i : i + 1])
            predictor.on_birth(before, one)
            single = predictor.predict(after, one, None, (320, 240)).boxes
            torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batched, BOXES, atol=0.5)  # the head did move them


def test_previous_crop_comes_from_the_birth_frame_then_the_last_prediction():
    predictor = _random_head()
    before, after = _frames()
    tracks = _batch(BOXES)
    predictor.on_birth(before, tracks)
    _, regions, previous, search = predictor.crops(after, tracks)
    torch.testing.assert_close(regions, context_regions(BOXES))
    torch.testing.assert_close(previous, crop(as_image(before, "cpu"), regions, 64))
    torch.testing.assert_close(search, crop(as_image(after, "cpu"), regions, 64))
    with torch.no_grad():
        predictor.predict(after, tracks, None, (320, 240))
    _, _, previous, _ = predictor.crops(before, tracks)  # `after` is now the previous frame
    torch.testing.assert_close(previous, crop(as_image(after, "cpu"), regions, 64))


def test_gradients_reach_the_parameters():
    predictor = _random_head()
    predictor.model.train()
    before, after = _frames()
    tracks = _batch(BOXES)
    predictor.on_birth(before, tracks)
    predictor.predict(after, tracks, None, (320, 240)).boxes.sum().backward()
    assert predictor.model.regressor[0].weight.grad.abs().sum() > 0


def test_weights_round_trip_and_create_tracker(tmp_path):
    predictor = _random_head()
    path = tmp_path / "goturn.safetensors"
    from deepmot.trackers.goturn import save_goturn

    save_goturn(predictor.model, path, {"note": "test"})
    loaded = load_goturn(path)
    assert loaded.config == predictor.model.config
    for name, value in predictor.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)
    tracker = create_tracker("goturn", weights=path)
    assert tracker.needs_images and tracker.config.birth_min_frames == 3
    assert GoturnConfig.from_dict(GoturnConfig.alexnet().to_dict()).crop_size == 227


def single_object_iou(predictor, sequence, frames, shift: float, seed: int) -> float:
    """Mean IoU of the next frame's prediction with the same object's box, each track started
    at its ground truth at t - 1 shifted by up to ``shift`` of its size (seeded)."""
    rng = np.random.default_rng(seed)
    ious = []
    for t in frames:
        prev = sequence.gt_at(t).active_pedestrians()
        nxt = sequence.gt_at(t + 1).active_pedestrians()
        common, i, j = np.intersect1d(prev.ids, nxt.ids, return_indices=True)
        if len(common) == 0:
            continue
        boxes = prev.boxes[i].copy()
        wh = boxes[:, 2:] - boxes[:, :2]
        offset = rng.uniform(-shift, shift, (len(boxes), 2)) * wh
        boxes += np.concatenate([offset, offset], axis=1)
        tracks = _batch(torch.from_numpy(boxes.astype(np.float32)))
        predictor.on_birth(sequence.read_image(t), tracks)
        with torch.no_grad():
            out = predictor.predict(sequence.read_image(t + 1), tracks, None, None).boxes
        ious.append(box_iou(out, torch.from_numpy(nxt.boxes[j])).diagonal())
    return float(torch.cat(ious).mean())


@pytest.mark.slow
@pytest.mark.parametrize("tracker,loss", [("goturn", "smoothl1"), ("siamrpn", "vanilla")])
def test_short_training_improves_single_object_iou(tmp_path, tracker, loss):
    from deepmot.trackers.registry import get_trainable
    from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
    from deepmot.train.tracker import train_tracker

    scene = generate_scene(SceneConfig(frames=80, width=320, height=240, people=6, seed=3))
    sequence = scene.to_sequence()
    config = TrackerTrainConfig(
        tracker=tracker,
        loss=loss,
        iterations=60,
        batch_size=4,
        augment=AugmentationConfig(perturb=1.0, max_offset=0.25),
        train_fraction=1.0,
        seed=0,
    )
    result = train_tracker([sequence], tmp_path, config, progress=False)
    trainable = get_trainable(tracker)
    torch.manual_seed(0)
    untrained = trainable.predictor(trainable.build(trainable.config()).eval())
    trained = trainable.predictor(trainable.load(result["weights"]))
    frames = range(1, 79, 3)
    before = single_object_iou(untrained, sequence, frames, 0.2, 1)
    after = single_object_iou(trained, sequence, frames, 0.2, 1)
    assert after > before + 0.02, (before, after)
