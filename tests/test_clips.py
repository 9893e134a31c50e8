"""Training clips: the evaluator's matching, the rollout's ids and memory, each augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmot.assign.sinkhorn import Sinkhorn
from deepmot.boxes import box_iou
from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.io import mot
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.metrics.clear import clear_matches
from deepmot.metrics.frame_pair import clear_frame_pair
from deepmot.trackers import (
    ConstantVelocityModel,
    MotionPredictor,
    Prediction,
    Predictor,
    Track,
    TrackBatch,
    TrackManagementConfig,
    TrackManager,
    TrackState,
)
from deepmot.trackers.management import match_and_refine
from deepmot.train.clips import ClipSampler
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.losses import DeepMOTTraining, SmoothL1Training
from deepmot.train.rollout import run_clips

NO_AUG = AugmentationConfig(perturb=0.0, jitter=0.0)
CPU = torch.device("cpu")


def walkers(frames: int = 8, speed: float = 10.0) -> Sequence:
    """Two people walking right at ``speed`` px/frame in separate lanes, ids 1 and 2."""
    rows = []
    for f in range(1, frames + 1):
        for gid, y in ((1, 10.0), (2, 60.0)):
            rows.append((f, gid, 20.0 + speed * (f - 1), y, 20.0, 30.0))
    return from_rows("WALK", frames, rows)


def from_rows(name: str, frames: int, rows: list[tuple[float, ...]]) -> Sequence:
    """A 400x200 sequence of ``frames`` frames whose ground truth is ``rows`` of (frame, id,
    x, y, w, h)."""
    table = np.asarray(rows, dtype=np.float64)
    n = len(rows)
    gt = mot.GroundTruth(
        frames=table[:, 0].astype(np.int64),
        ids=table[:, 1].astype(np.int64),
        boxes_xywh=table[:, 2:6],
        flags=np.ones(n, np.int64),
        classes=np.ones(n, np.int64),
        visibility=np.ones(n),
    )
    return Sequence(name, frames, 400, 200, 30.0, gt)


def run(starts, predictor, loss=None, config=None):
    config = config or TrackerTrainConfig(augment=NO_AUG)
    return run_clips(
        starts,
        predictor,
        loss or DeepMOTTraining(DeepMOTLoss(Sinkhorn())),
        config,
        np.random.default_rng(0),
        2,
        torch.device("cpu"),
    )


def test_clear_matches_equals_the_evaluator_on_random_frames():
    rng = np.random.default_rng(7)
    for _ in range(200):
        m, n = rng.integers(0, 7, size=2)
        gt = rng.uniform(0, 200, (m, 2))
        gt_boxes = np.concatenate([gt, gt + rng.uniform(10, 40, (m, 2))], 1).astype(np.float32)
        picks = rng.integers(0, max(m, 1), n)
        tracks = np.zeros((n, 4), np.float32)
        if m:
            tracks = gt_boxes[picks] + rng.normal(0, 6, (n, 4)).astype(np.float32)
        tracks[:, 2:] = np.maximum(tracks[:, 2:], tracks[:, :2] + 1)
        gt_ids = rng.choice(50, m, replace=False) + 1
        track_ids = rng.choice(50, n, replace=False) + 1
        k = int(rng.integers(0, min(m, n) + 1))
        prev_objects = rng.choice(gt_ids, k, replace=False)
        prev_tracks = rng.choice(track_ids, k, replace=False)
        memory = {int(g): int(t) for g, t in zip(prev_objects, prev_tracks, strict=False)}
        expected = clear_frame_pair(gt_boxes, gt_ids, tracks, track_ids, memory)
        iou = (
            box_iou(torch.from_numpy(tracks), torch.from_numpy(gt_boxes)).numpy()
            if n and m
            else np.zeros((n, m))
        )
        matches, switches = clear_matches(iou.astype(np.float64), track_ids, gt_ids, dict(memory))
        assert len(matches) == expected.tp and switches == expected.idsw


def test_a_perfect_tracker_keeps_ids_and_memory_through_the_clip():
    seq = walkers()
    sampler = ClipSampler([seq], 5, 2, 1.0, NO_AUG)
    starts = [s for s in (sampler._start(0, f, np.random.default_rng(0)) for f in (2, 3))]
    assert [s.track_ids.tolist() for s in starts] == [[1, 2], [1, 2]]
    assert starts[0].memory == {1: 1, 2: 2} and starts[0].targets.tolist() == [1, 2]
    result = run(starts, MotionPredictor(ConstantVelocityModel()))
    assert result.counts == {
        "tp": 16, "fp": 0, "fn": 0, "idsw": 0, "objects": 16,
        "iou_sum": pytest.approx(16.0, abs=1e-4),
    }  # fmt: skip
    assert result.true_mota == 1.0
    assert result.soft["ids"] < 1e-3 and result.soft["fp"] < 1e-3


def test_swapped_ids_are_switches_at_the_next_frame_only():
    seq = walkers()
    sampler = ClipSampler([seq], 4, 2, 1.0, AugmentationConfig(perturb=0.0, jitter=0.0, swap=1.0))
    start = sampler._start(0, 2, np.random.default_rng(0))
    assert start.track_ids.tolist() == [2, 1] and start.memory == {1: 1, 2: 2}
    result = run([start], MotionPredictor(ConstantVelocityModel()))
    assert result.counts["idsw"] == 2 and result.counts["tp"] == 6
    assert result.counts["fp"] == result.counts["fn"] == 0
    assert result.soft["ids"] > 0.5  # the loss's IDS~ sees them too (averaged over 3 frames)


class FailsOnce(Predictor):
    """Predicts each track onto the nearest ground-truth box, except at its first call, where
    it sends every track far away."""

    history_len = 2
    needs_images = False

    def __init__(self, seq: Sequence, start: int) -> None:
        self.seq, self.frame = seq, start

    def predict(self, frame, tracks: TrackBatch, detections, image_size) -> Prediction:
        self.frame += 1
        gt = torch.from_numpy(self.seq.gt_at(self.frame).boxes)
        if self.frame == 3:
            return Prediction(tracks.last + 150.0)
        nearest = box_iou(tracks.last, gt).argmax(1)
        return Prediction(gt[nearest] + 0 * tracks.last)


def test_lost_tracks_end_objects_are_born_and_the_rebirth_is_a_switch():
    seq = walkers()
    start = ClipSampler([seq], 5, 2, 1.0, NO_AUG)._start(0, 2, np.random.default_rng(0))
    result = run([start], FailsOnce(seq, 2))
    # frame 3: both tracks miss (2 FP, 2 FN), end, and both objects are born as tracks 3, 4;
    # frame 4: the new tracks match: an ID switch each; frames 5 and 6: nothing new
    assert result.counts["fp"] == 2 and result.counts["fn"] == 2
    assert result.counts["idsw"] == 2 and result.counts["tp"] == 6


def test_smooth_l1_regresses_each_track_to_the_object_it_follows():
    seq = walkers()
    start = ClipSampler([seq], 3, 2, 1.0, NO_AUG)._start(0, 2, np.random.default_rng(0))
    config = TrackerTrainConfig(loss="smoothl1", augment=NO_AUG)
    perfect = run([start], MotionPredictor(ConstantVelocityModel()), SmoothL1Training(), config)
    assert float(perfect.loss) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(perfect.soft["fp"])


def test_perturbation_moves_only_the_last_box_within_its_bounds():
    seq = walkers()
    aug = AugmentationConfig(perturb=1.0, jitter=0.0)
    start = ClipSampler([seq], 2, 3, 1.0, aug)._start(0, 4, np.random.default_rng(3))
    plain = ClipSampler([seq], 2, 3, 1.0, NO_AUG)._start(0, 4, np.random.default_rng(3))
    for moved, exact in zip(start.histories, plain.histories, strict=True):
        assert moved.shape == exact.shape == (3, 4)
        np.testing.assert_array_equal(moved[:-1], exact[:-1])
        size = exact[-1, 2:] - exact[-1, :2]
        ratio = (moved[-1, 2:] - moved[-1, :2]) / size
        shift = (moved[-1, :2] + moved[-1, 2:]) / 2 - (exact[-1, :2] + exact[-1, 2:]) / 2
        assert np.all((ratio >= 0.8 - 1e-5) & (ratio <= 1.2 + 1e-5))
        assert np.all(np.abs(shift) <= 0.25 * size + 1e-4)
        assert not np.allclose(moved[-1], exact[-1])


def test_drop_and_false_tracks():
    scene = generate_scene(SceneConfig(frames=40, people=10, seed=2))
    seq = scene.to_sequence()
    rng = np.random.default_rng(0)
    none = ClipSampler([seq], 2, 2, 1.0, AugmentationConfig(perturb=0.0, jitter=0.0, drop=1.0))
    assert all(len(s.histories) == 0 for s in none.sample(rng, 20))
    half = ClipSampler([seq], 2, 2, 1.0, AugmentationConfig(perturb=0.0, jitter=0.0, drop=0.5))
    kept = total = 0
    for s in half.sample(rng, 100):
        kept += len(s.histories)
        total += len(seq.gt_at(s.start).active_pedestrians().ids)
    assert 0.4 < kept / total < 0.6
    fake = ClipSampler(
        [seq], 2, 2, 1.0, AugmentationConfig(perturb=0.0, jitter=0.0, false_tracks=3.0)
    )
    counts = []
    for s in fake.sample(rng, 200):
        false = s.targets < 0
        counts.append(int(false.sum()))
        assert len(np.unique(s.track_ids)) == len(s.track_ids)
        for h in (h for h, f in zip(s.histories, false, strict=True) if f):
            box = h[-1]
            assert 0 <= box[0] < box[2] <= seq.im_width and 0 <= box[1] < box[3] <= seq.im_height
        assert all(int(g) not in s.memory for g in s.targets[false])
    assert 2.6 < np.mean(counts) < 3.4


def test_swap_exchanges_ids_in_pairs():
    scene = generate_scene(SceneConfig(frames=40, people=10, seed=2))
    sampler = ClipSampler(
        [scene.to_sequence()], 2, 2, 1.0, AugmentationConfig(perturb=0.0, jitter=0.0, swap=1.0)
    )
    for s in sampler.sample(np.random.default_rng(1), 20):
        original = np.arange(1, len(s.track_ids) + 1)
        assert sorted(s.track_ids.tolist()) == original.tolist()
        assert (s.track_ids != original).sum() >= len(original) - 1
        assert s.memory == {int(g): i + 1 for i, g in enumerate(s.targets)}


def test_augmentation_config_checks():
    with pytest.raises(ValueError, match="drop"):
        AugmentationConfig(drop=1.5)
    with pytest.raises(ValueError, match="false_tracks"):
        AugmentationConfig(false_tracks=-1)
    with pytest.raises(ValueError, match="scale_range"):
        AugmentationConfig(scale_range=(1.2, 0.8))
    with pytest.raises(ValueError, match="matcher"):
        TrackerTrainConfig(matcher="dhn:")
    with pytest.raises(ValueError, match="clip_length"):
        TrackerTrainConfig(clip_length=1)
    assert TrackerTrainConfig(matcher="dhn:w.safetensors").matcher_path.name == "w.safetensors"
    assert TrackerTrainConfig(matcher="dhn:seq_gru").matcher_path is None  # a shipped DHN
    assert TrackerTrainConfig(matcher="dhn:no_such_dhn").matcher_path.name == "no_such_dhn"
    config = TrackerTrainConfig(sampling="clips", augment=AugmentationConfig(swap=0.3))
    assert TrackerTrainConfig.from_dict(config.to_dict()) == config


def test_jitter_moves_every_box_of_the_history_a_little():
    seq = walkers()
    aug = AugmentationConfig(perturb=0.0, jitter=0.05)
    moved = ClipSampler([seq], 2, 3, 1.0, aug)._start(0, 4, np.random.default_rng(3))
    exact = ClipSampler([seq], 2, 3, 1.0, NO_AUG)._start(0, 4, np.random.default_rng(3))
    for a, b in zip(moved.histories, exact.histories, strict=True):
        size = np.tile(b[:, 2:] - b[:, :2], 2)
        assert (a != b).all(axis=1).all()  # every box moved
        assert np.all(np.abs(a - b) < 5 * 0.05 * size)  # by a few standard deviations at most
    with pytest.raises(ValueError, match="jitter"):
        AugmentationConfig(jitter=-0.1)


class Offset(Predictor):
    """Constant velocity moved right by ``dx`` pixels: the box the refinement reports for an
    exact prediction averaged with a detection ``2 dx`` to its right."""

    history_len = 2
    needs_images = False

    def __init__(self, dx: float) -> None:
        self.cv, self.dx = MotionPredictor(ConstantVelocityModel()), dx

    def predict(self, frame, tracks: TrackBatch, detections, image_size) -> Prediction:
        boxes = self.cv.predict(frame, tracks, detections, image_size).boxes
        return Prediction(boxes + torch.tensor([self.dx, 0.0, self.dx, 0.0]))


def with_detections(seq: Sequence, dx: float) -> Sequence:
    """``seq`` with one detection per object, its ground-truth box moved right by ``dx``."""
    gt = seq.gt
    shifted = gt.boxes_xywh + np.array([dx, 0.0, 0.0, 0.0])
    dets = mot.Detections(gt.frames, shifted, -np.ones(len(gt.frames)))
    return Sequence(seq.name, seq.seq_length, seq.im_width, seq.im_height, 30.0, gt, dets)


@pytest.mark.parametrize(
    "loss", [SmoothL1Training(), DeepMOTTraining(DeepMOTLoss(Sinkhorn()))], ids=["l1", "deepmot"]
)
def test_score_refined_scores_the_average_with_the_detection(loss):
    name = loss.name
    exact = MotionPredictor(ConstantVelocityModel())  # predicts the walkers exactly

    def loss_of(predictor, dx: float, **settings) -> float:
        seq = with_detections(walkers(), dx)
        start = ClipSampler([seq], 2, 2, 1.0, NO_AUG)._start(0, 2, np.random.default_rng(0))
        config = TrackerTrainConfig(loss=name, augment=NO_AUG, **settings)
        return float(run([start], predictor, loss, config).loss)

    refined = {"refine_iou": 0.6, "score_refined": True}
    # detections 4 px right of 20 px wide boxes: IoU 0.67 > 0.6, refined to 2 px right
    assert loss_of(exact, 4.0, **refined) == pytest.approx(loss_of(Offset(2.0), 4.0))
    assert loss_of(exact, 4.0, **refined) > loss_of(exact, 4.0) + 1e-4
    # the raw prediction is scored without score_refined, refinement or not
    assert loss_of(exact, 4.0, refine_iou=0.6) == pytest.approx(loss_of(exact, 4.0))
    # 8 px: IoU 0.43 <= 0.6, nothing is refined
    assert loss_of(exact, 8.0, **refined) == pytest.approx(loss_of(exact, 8.0))


def test_score_refined_needs_refine_iou():
    with pytest.raises(ValueError, match="refine_iou"):
        TrackerTrainConfig(score_refined=True)


class RecordingL1(SmoothL1Training):
    """The Smooth-L1 loss, keeping the boxes of every frame it scores."""

    def __init__(self) -> None:
        super().__init__()
        self.scored: list[torch.Tensor] = []

    def score(self, frame, scale, record):
        self.scored.extend(b.detach().clone() for b in frame.boxes)
        return super().score(frame, scale, record)


def standing(boxes: list[tuple[float, float, float, float]], frames: int = 2) -> Sequence:
    """People standing still at ``boxes`` (xyxy; ids 1, 2, ...), no detections."""
    rows = [
        (f, gid, x0, y0, x1 - x0, y1 - y0)
        for f in range(1, frames + 1)
        for gid, (x0, y0, x1, y1) in enumerate(boxes, start=1)
    ]
    return from_rows("STAND", frames, rows)


@pytest.mark.parametrize(
    "management",
    [TrackManagementConfig(), TrackManagementConfig(refine_weight=0.8, match_iou=0.5)],
    ids=["paper", "weight-0.8"],
)
def test_the_rollout_refines_as_the_track_manager_does(management):
    # two tracks near one detection (IoU 0.90 and 0.74, 0.67 with each other), one far
    detection = (50.0, 10.0, 70.0, 50.0)
    tracks = [(51.0, 10.0, 71.0, 50.0), (47.0, 10.0, 67.0, 50.0), (250.0, 100.0, 270.0, 140.0)]
    seq = standing(tracks)
    dets = mot.Detections(np.array([2]), np.array([[50.0, 10.0, 20.0, 40.0]]), -np.ones(1))
    seq = Sequence(seq.name, 2, 400, 200, 30.0, seq.gt, dets)
    start = ClipSampler([seq], 2, 2, 1.0, NO_AUG)._start(0, 1, np.random.default_rng(0))
    config = TrackerTrainConfig(loss="smoothl1", augment=NO_AUG, refine_iou=0.6, score_refined=True)
    loss = RecordingL1()
    predictor = MotionPredictor(ConstantVelocityModel())  # still people: boxes stay
    run_clips(
        [start], predictor, loss, config, np.random.default_rng(0), 2, CPU, management=management
    )
    (rolled,) = loss.scored

    manager = TrackManager(ConstantVelocityModel(), management)
    manager.tracks = [
        Track(i + 1, TrackState.ACTIVE, torch.tensor([box]), 1.0, 1) for i, box in enumerate(tracks)
    ]
    manager.next_id = len(tracks) + 1
    out = manager.update(torch.tensor([[*detection, -1.0]]))
    managed = torch.stack([t.box for t in manager.tracks])
    torch.testing.assert_close(rolled, managed, rtol=0, atol=0)
    # the first track takes the detection (refined), the second and the far one keep their box
    w = management.refine_weight
    expected = torch.tensor(tracks)
    expected[0] = (1 - w) * expected[0] + w * torch.tensor(detection)
    torch.testing.assert_close(rolled, expected)
    torch.testing.assert_close(out[0, :4], expected[0])  # what the tracker reports


def test_refinement_is_differentiable_in_the_boxes():
    boxes = torch.tensor([[51.0, 10.0, 71.0, 50.0], [250.0, 100.0, 270.0, 140.0]])
    boxes.requires_grad_()
    config = TrackManagementConfig(refine_weight=0.8)
    matches, refined = match_and_refine(
        boxes, torch.tensor([[50.0, 10.0, 70.0, 50.0, 1.0]]), config
    )
    assert matches.tolist() == [[0, 0]]
    refined.sum().backward()
    # d refined / d box: 1 - w for the refined box, 1 for the one left alone
    torch.testing.assert_close(boxes.grad[:, 0], torch.tensor([0.2, 1.0]))
