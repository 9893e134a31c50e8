"""Training a per-track confidence: the rollout's verification, the presence-weighted DeepMOT
loss and the BCE baseline, what reaches the confidence head."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepmot.assign.sinkhorn import Sinkhorn
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.errors import DeepMOTError
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.trackers import ConstantVelocityModel, MotionPredictor, create_tracker
from deepmot.trackers.motion import LearnedMotionConfig, LearnedMotionModel, LearnedMotionPredictor
from deepmot.train.clips import ClipSampler
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.diagnostics import confidence_gradients
from deepmot.train.losses import (
    ConfidenceBCE,
    DeepMOTTraining,
    confidence_labels,
    create_training_loss,
)
from deepmot.train.rollout import Rollout, _verified
from deepmot.train.tracker import train_tracker

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sequence():
    return generate_scene(SceneConfig(frames=40, people=6, seed=3, name="C")).to_sequence()


def test_labels_are_clear_true_positives() -> None:
    objects = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]])
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1 with object 0
            [1.0, 0.0, 11.0, 10.0],  # IoU 0.82 with object 0, which is taken
            [23.0, 0.0, 33.0, 10.0],  # IoU 7/13 = 0.54 with object 1
            [50.0, 0.0, 60.0, 10.0],  # nothing
        ]
    )
    assert confidence_labels(boxes, objects).tolist() == [1.0, 0.0, 1.0, 0.0]
    shifted = boxes.clone()
    shifted[2] += torch.tensor([1.0, 0.0, 1.0, 0.0])  # IoU 6/14 = 0.43
    assert confidence_labels(shifted, objects).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert confidence_labels(boxes[:0], objects).shape == (0,)


def test_rollout_verification_is_the_managements() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [40.0, 0, 50, 10]])
    dets = torch.tensor([[1.0, 0.0, 11.0, 10.0, 1.0]])  # one detection: verifies one track
    assert _verified(boxes, dets, 0.3).tolist() == [True, False, False]
    assert _verified(boxes, None, 0.3).tolist() == [False, False, False]
    far = torch.tensor([[7.0, 0.0, 17.0, 10.0, 1.0]])  # IoU 0.3 with box 0 and 0.54 with box 1
    assert _verified(boxes, far, 0.3).tolist() == [False, True, False]


def _rollout(config: TrackerTrainConfig, sequence, seed: int = 0):
    torch.manual_seed(seed)
    model = LearnedMotionModel(LearnedMotionConfig(confidence=True))
    predictor = LearnedMotionPredictor(model)
    rollout = Rollout(predictor, config, model.history_len, CPU)
    sampler = ClipSampler([sequence], config.clip_length, model.history_len, 1.0, config.augment)
    starts = sampler.sample(np.random.default_rng(seed), 4)
    return model, rollout, starts


def _config(**changes) -> TrackerTrainConfig:
    base = {
        "matcher": "sinkhorn",
        "sampling": "clips",
        "clip_length": 4,
        "augment": AugmentationConfig(jitter=0.05, false_tracks=1.0),
    }
    return TrackerTrainConfig(**{**base, **changes})


def test_presence_loss_trains_the_confidence_head(sequence) -> None:
    config = _config(confidence="presence")
    model, rollout, starts = _rollout(config, sequence)
    loss = create_training_loss(config, CPU)
    assert isinstance(loss, DeepMOTTraining) and loss.presence
    rngs = [np.random.default_rng(i) for i in range(len(starts))]
    result = loss.step(starts, rngs, rollout, scale=100.0, record=True)
    grads = confidence_gradients(result.records, loss.loss)
    assert all(math.isfinite(v) for part in grads.values() for v in part.values())
    assert grads["norm"]["fp"] > 0 and grads["norm"]["fn"] > 0
    # false tracks and misses: FP~ pushes confidences down, FN~ up (as they enter the loss)
    assert grads["mean"]["fp"] > 0 > grads["mean"]["fn"]
    result.loss.backward()
    head = [p.grad for p in model.confidence_mlp.parameters()]
    assert all(g is not None for g in head) and any(float(g.abs().sum()) > 0 for g in head)


def test_without_presence_the_confidence_gets_nothing(sequence) -> None:
    config = _config()
    model, rollout, starts = _rollout(config, sequence)
    rngs = [np.random.default_rng(i) for i in range(len(starts))]
    create_training_loss(config, CPU).step(starts, rngs, rollout, 100.0).loss.backward()
    assert all(p.grad is None for p in model.confidence_mlp.parameters())


def test_bce_baseline_trains_only_the_confidence_when_boxes_are_frozen(sequence) -> None:
    config = _config(loss="smoothl1", confidence="bce", confidence_weight=2.0)
    model, rollout, starts = _rollout(config, sequence)
    loss = create_training_loss(config, CPU)
    assert isinstance(loss, ConfidenceBCE) and loss.weight == 2.0
    rngs = [np.random.default_rng(i) for i in range(len(starts))]
    model.mlp.requires_grad_(False)
    model.head.requires_grad_(False)
    result = loss.step(starts, rngs, rollout, 100.0)
    result.loss.backward()
    assert any(float(p.grad.abs().sum()) > 0 for p in model.confidence_mlp.parameters())
    # the untrained head says 0.5 everywhere: the BCE is log 2 per track, times its weight,
    # plus a Smooth-L1 term of the same clips
    rngs = [np.random.default_rng(i) for i in range(len(starts))]
    plain = create_training_loss(_config(loss="smoothl1"), CPU).step(starts, rngs, rollout, 1.0)
    assert float((result.loss - plain.loss).detach()) == pytest.approx(2.0 * math.log(2), rel=1e-4)


def test_a_predictor_without_confidence_is_refused(sequence) -> None:
    config = _config(confidence="presence")
    rollout = Rollout(MotionPredictor(ConstantVelocityModel()), config, 2, CPU)
    sampler = ClipSampler([sequence], 4, 2, 1.0, config.augment)
    starts = sampler.sample(np.random.default_rng(0), 2)
    loss = DeepMOTTraining(DeepMOTLoss(Sinkhorn()), presence=True)
    with pytest.raises(DeepMOTError, match="predicts no confidence"):
        loss.step(starts, [np.random.default_rng(0)] * 2, rollout, 100.0)


def test_config_refuses_confidence_settings_that_cannot_train() -> None:
    with pytest.raises(ValueError, match="needs loss 'deepmot'"):
        TrackerTrainConfig(loss="smoothl1", confidence="presence")
    with pytest.raises(ValueError, match="not to vanilla"):
        TrackerTrainConfig(loss="vanilla", confidence="bce")
    with pytest.raises(ValueError, match="confidence must be"):
        TrackerTrainConfig(confidence="maybe")  # type: ignore[arg-type]


def test_trained_confidence_is_used_by_the_tracker(tmp_path, sequence) -> None:
    config = _config(confidence="presence", iterations=3, batch_size=2, model={"confidence": True})
    summary = train_tracker([sequence], tmp_path, config, progress=False)
    tracker = create_tracker("motion", weights=summary["weights"], report_confidence=0.5)
    assert tracker.predictor.model.config.confidence
    tracker.reset((sequence.im_width, sequence.im_height))
    for frame in range(1, 6):
        out = tracker.update(torch.from_numpy(sequence.detections_at(frame)))
        assert out.shape[1] == 6 and torch.isfinite(out).all()


def test_unverified_unmatched_track_lives_on_while_training_a_confidence(sequence) -> None:
    """Track 2 misses its object (IoU 0) and no detection verifies it: with a confidence to
    train it lives on (as the management keeps it invisible) beside the birth of its object;
    without, it ends."""
    from deepmot.data.sequence import FrameGT
    from deepmot.train.clips import ClipStart
    from deepmot.train.rollout import COUNTS, ClipState, _advance

    objects = np.array([[0, 0, 10, 20], [50, 0, 60, 20]], np.float32)
    predicted = torch.tensor([[0.0, 0.0, 10.0, 20.0], [80.0, 0.0, 90.0, 20.0]])
    ones = np.ones(2, np.int64)
    gt = FrameGT(np.array([10, 11]), objects, ones, ones, np.ones(2, np.float32))
    for verified, ids, flags in (
        (np.array([True, False]), [1, 2, 3], [True, False, True]),
        (None, [1, 3], [True, True]),
    ):
        start = ClipStart(
            sequence, 1, 3, [objects[:1], objects[1:]], np.array([1, 2]), np.array([10, 11]),
            {10: 1, 11: 2},
        )  # fmt: skip
        state = ClipState.begin(start, np.random.default_rng(0))
        counts = dict.fromkeys(COUNTS, 0.0)
        config = _config()
        _advance(state, predicted, predicted, gt, config, 5, counts, verified)
        assert state.track_ids == ids and state.verified == flags
        assert len(set(state.targets)) == len(state.targets)  # Smooth-L1 pairs by target
        assert counts["fp"] == 1 and counts["fn"] == 1


def test_train_command_maps_the_confidence_options(tmp_path) -> None:
    from deepmot.cli import build_parser
    from deepmot.commands.train import _config

    args = build_parser().parse_args(
        [
            "train",
            str(tmp_path),
            "--out",
            "y",
            "--confidence",
            "presence",
            "--confidence-lr",
            "0.02",
        ]
    )
    config = _config(args)
    assert config.confidence == "presence" and config.confidence_lr == 0.02
    assert config.model == {"confidence": True}  # the motion tracker's head, switched on
    plain = _config(build_parser().parse_args(["train", str(tmp_path), "--out", "y"]))
    assert plain.confidence == "none" and plain.model == {} and plain.confidence_lr is None
