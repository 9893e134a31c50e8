"""The trainer's losses: the registry by ``config.loss``, the step's scale as an argument, what
each loss refuses to train."""

from __future__ import annotations

import math
from typing import get_args, get_type_hints

import numpy as np
import pytest
import torch

from deepmot.assign.sinkhorn import Sinkhorn
from deepmot.boxes import distance_matrix
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.errors import DeepMOTError
from deepmot.loss.config import DeepMOTLossConfig
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.trackers import ConstantVelocityModel, MotionPredictor
from deepmot.trackers.goturn import GoturnModel, GoturnPredictor
from deepmot.train.clips import ClipSampler
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.losses import (
    DeepMOTTraining,
    SmoothL1Training,
    VanillaTraining,
    create_training_loss,
    list_training_losses,
)
from deepmot.train.rollout import SOFT_TERMS, Rollout

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sequence():
    return generate_scene(SceneConfig(frames=30, people=5, seed=4, name="L")).to_sequence()


def test_every_loss_choice_is_registered_under_its_name():
    choices = get_args(get_type_hints(TrackerTrainConfig)["loss"])
    assert sorted(choices) == list_training_losses()
    kinds = {"deepmot": DeepMOTTraining, "smoothl1": SmoothL1Training, "vanilla": VanillaTraining}
    for name in choices:
        built = create_training_loss(TrackerTrainConfig(loss=name, matcher="sinkhorn"), CPU)
        assert isinstance(built, kinds[name]) and built.name == name
    unknown = TrackerTrainConfig()
    object.__setattr__(unknown, "loss", "l2")  # past the config's own check
    with pytest.raises(ValueError, match="deepmot, smoothl1, vanilla"):
        create_training_loss(unknown, CPU)


def test_the_deepmot_loss_is_built_from_the_run_settings():
    settings = DeepMOTLossConfig(delta=0.4, lam=2.0, scale=30.0, gate="hard")
    config = TrackerTrainConfig(deepmot=settings, matcher="sinkhorn", appearance="none")
    built = create_training_loss(config, CPU)
    assert built.loss.config == settings and isinstance(built.loss.matcher, Sinkhorn)
    assert not built.uses_appearance


def test_a_scale_given_per_call_equals_a_loss_configured_with_it():
    # the scale is an argument: the same as a loss built with that scale, config untouched
    rng = np.random.default_rng(0)
    tracks = torch.tensor(rng.uniform(0, 200, (4, 2)), dtype=torch.float32)
    tracks = torch.cat([tracks, tracks + 40], dim=1).requires_grad_()
    objects = tracks.detach()[[0, 2, 3]] + torch.tensor([3.0, -2.0, 3.0, -2.0])
    distance = distance_matrix(tracks, objects, 320, 240)
    ids, gt_ids, memory = [1, 2, 3, 4], [1, 3, 4], [{1: 1, 3: 2}]
    base = DeepMOTLoss(Sinkhorn())
    passed, _ = base.forward_batch([distance], [ids], [gt_ids], memory, scale=7.0)
    built, _ = DeepMOTLoss(Sinkhorn(), scale=7.0).forward_batch([distance], [ids], [gt_ids], memory)
    assert base.config.scale == 100.0
    for name in ("loss", *SOFT_TERMS):
        assert torch.equal(getattr(passed, name), getattr(built, name)), name
    default, _ = base.forward_batch([distance], [ids], [gt_ids], memory)
    assert not torch.equal(default.fp, passed.fp)  # 100 is another scale


def test_a_deepmot_step_reports_its_scale_and_smoothl1_none(sequence):
    config = TrackerTrainConfig(matcher="sinkhorn", augment=AugmentationConfig(jitter=0.0))
    rollout = Rollout(MotionPredictor(ConstantVelocityModel()), config, 2, CPU)
    sampler = ClipSampler([sequence], 2, 2, 1.0, config.augment)
    starts = sampler.sample(np.random.default_rng(0), 3)
    rngs = [np.random.default_rng(i) for i in range(3)]
    deepmot = create_training_loss(config, CPU)
    result = deepmot.step(starts, rngs, rollout, scale=12.5, record=True)
    assert result.scale == 12.5 and deepmot.loss.config.scale == config.deepmot.scale
    assert len(result.records) == 1  # one frame of the pairs, recorded for the diagnostics
    assert all(math.isfinite(v) for v in deepmot.gradient_norms(result, 12.5).values())
    rngs = [np.random.default_rng(i) for i in range(3)]
    smooth = SmoothL1Training().step(starts, rngs, rollout, scale=12.5, record=True)
    assert smooth.scale == 0.0 and not smooth.records
    assert all(math.isnan(smooth.soft[k]) for k in SOFT_TERMS)
    assert all(math.isnan(v) for v in SmoothL1Training().gradient_norms(smooth, 1.0).values())
    # the same clips: the evaluator's counts do not depend on the loss
    assert smooth.counts == result.counts


def test_each_loss_refuses_a_predictor_without_what_it_trains():
    motion = MotionPredictor(ConstantVelocityModel())
    with pytest.raises(DeepMOTError, match="single-object objective"):
        VanillaTraining().check(motion, "motion")
    VanillaTraining().check(GoturnPredictor(GoturnModel()), "goturn")
    with pytest.raises(DeepMOTError, match="ReID head"):
        DeepMOTTraining(DeepMOTLoss(Sinkhorn()), appearance="joint").check(motion, "motion")
    DeepMOTTraining(DeepMOTLoss(Sinkhorn())).check(motion, "motion")
    SmoothL1Training().check(motion, "motion")
    with pytest.raises(ValueError, match="appearance"):
        DeepMOTTraining(DeepMOTLoss(Sinkhorn()), appearance="both")  # type: ignore[arg-type]
