"""The focal classification term of the authors' SiamRPN training: labels and loss against
hand-computed cases, and that through the training rollout it (and only it) trains SiamRPN's
classification branch."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from deepmot.assign.sinkhorn import Sinkhorn
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.errors import DeepMOTError
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.trackers.goturn import GoturnModel, GoturnPredictor
from deepmot.trackers.siamrpn import SiamRPNConfig, SiamRPNModel, SiamRPNPredictor
from deepmot.train.clips import ClipSampler
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.focal import anchor_labels, focal_classification_loss
from deepmot.train.losses import DeepMOTTraining
from deepmot.train.rollout import run_clips

NAN = float("nan")


def test_anchor_labels_hand_computed():
    target = torch.tensor([[0.0, 0.0, 10.0, 10.0], [NAN, NAN, NAN, NAN]])
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1: positive
            [0.0, 0.0, 10.0, 7.0],  # IoU 0.7: positive
            [0.0, 0.0, 10.0, 5.0],  # IoU 0.5: ignored
            [0.0, 0.0, 10.0, 2.0],  # IoU 0.2: negative
            [50.0, 50.0, 60.0, 60.0],  # IoU 0: negative
        ]
    )
    labels = anchor_labels(torch.stack([anchors, anchors]), target)
    assert labels.tolist() == [[1, 1, -1, 0, 0], [0, 0, 0, 0, 0]]


def test_focal_loss_hand_computed():
    # track 0: one positive with p = 0.8, one negative with p = 0.2, one ignored anchor;
    # 1 positive of 2 labelled -> w_neg = w_pos = 0.5
    # track 1: no positive (object absent) -> w_neg = 1; two negatives with p = 0.5 and 0.2
    logit = math.log(4.0)
    logits = torch.tensor(
        [
            [[0.0, logit], [logit, 0.0], [5.0, -5.0]],
            [[0.0, 0.0], [logit, 0.0], [0.0, 0.0]],
        ]
    )
    labels = torch.tensor([[1, 0, -1], [0, 0, -1]])
    gamma = 2.0
    track0 = -(0.5 * 0.2**gamma * math.log(0.8) + 0.5 * 0.2**gamma * math.log(0.8)) / 2
    track1 = -(0.5**gamma * math.log(0.5) + 0.2**gamma * math.log(0.8)) / 2
    loss = focal_classification_loss(logits, labels, gamma)
    torch.testing.assert_close(loss, torch.tensor([track0, track1]))
    # gamma 0 and balanced weights: half the mean cross-entropy
    ce = -(math.log(0.8) + math.log(0.8)) / 2
    torch.testing.assert_close(
        focal_classification_loss(logits[:1], labels[:1], 0.0), torch.tensor([0.5 * ce])
    )


def test_all_positive_anchors_weigh_fully():
    # every labelled anchor positive: w_neg = 0, w_pos = 1 (the authors' special case)
    logits = torch.tensor([[[0.0, math.log(4.0)], [0.0, math.log(4.0)]]])
    loss = focal_classification_loss(logits, torch.tensor([[1, 1]]), 1.0)
    torch.testing.assert_close(loss, torch.tensor([-0.2 * math.log(0.8)]))


@pytest.fixture(scope="module")
def sequence():
    return generate_scene(
        SceneConfig(frames=12, width=320, height=240, people=4, seed=3)
    ).to_sequence()


def _classification_grad(sequence, focal_weight: float) -> float:
    torch.manual_seed(0)
    model = SiamRPNModel(SiamRPNConfig(channels=16)).train()
    config = TrackerTrainConfig(
        tracker="siamrpn",
        augment=AugmentationConfig(jitter=0.0),
        focal_weight=focal_weight,
    )
    starts = ClipSampler([sequence], 2, 2, 1.0, config.augment).sample(np.random.default_rng(0), 2)
    result = run_clips(
        starts,
        SiamRPNPredictor(model),
        DeepMOTTraining(DeepMOTLoss(Sinkhorn())),
        config,
        np.random.default_rng(0),
        2,
        torch.device("cpu"),
    )
    result.loss.backward()
    assert np.isnan(result.soft["focal"]) == (focal_weight == 0)
    grads = [p.grad for p in model.cls.parameters()]
    return sum(float(g.abs().sum()) for g in grads if g is not None)


def test_focal_term_trains_the_classification_branch(sequence):
    # the DeepMOT loss alone cannot reach it (the anchor choice is an argmax)
    assert _classification_grad(sequence, 0.0) == 0.0
    assert _classification_grad(sequence, 10.0) > 0.0


def test_focal_term_needs_anchor_scores(sequence):
    config = replace(TrackerTrainConfig(tracker="goturn"), focal_weight=10.0)
    starts = ClipSampler([sequence], 2, 2, 1.0, config.augment).sample(np.random.default_rng(0), 1)
    with pytest.raises(DeepMOTError, match="scores no anchors"):
        run_clips(
            starts,
            GoturnPredictor(GoturnModel()),
            DeepMOTTraining(DeepMOTLoss(Sinkhorn())),
            config,
            np.random.default_rng(0),
            2,
            torch.device("cpu"),
        )


def test_focal_weight_is_not_for_the_vanilla_objective():
    with pytest.raises(ValueError, match="not to vanilla"):
        TrackerTrainConfig(tracker="siamrpn", loss="vanilla", focal_weight=10.0)
