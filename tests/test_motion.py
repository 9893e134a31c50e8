"""Motion models: the box coder, constant velocity, the learned regressor, save/load."""

from __future__ import annotations

import json

import pytest
import torch

from deepmot.errors import DeepMOTError
from deepmot.trackers import (
    ConstantVelocityConfig,
    ConstantVelocityModel,
    LearnedMotionConfig,
    LearnedMotionModel,
    TrackBatch,
    create_tracker,
    load_motion_model,
    save_motion_model,
    stack_histories,
)
from deepmot.trackers.motion import decode_deltas, encode_boxes


def linear_track(start, velocity, steps: int) -> torch.Tensor:
    """``(steps, 4)`` xyxy boxes moving by ``velocity (4,)`` per frame."""
    start, velocity = torch.tensor(start), torch.tensor(velocity)
    return start + torch.arange(steps, dtype=torch.float32)[:, None] * velocity


def random_tracks(generator: torch.Generator, n: int, length: int) -> torch.Tensor:
    """``(n, length + 1, 4)`` jittered, roughly linear pedestrian-like tracks (px)."""
    x = torch.rand(n, 1, generator=generator) * 1500
    y = torch.rand(n, 1, generator=generator) * 600
    h = 80 + torch.rand(n, 1, generator=generator) * 200
    w = 0.4 * h
    v = torch.randn(n, 1, 2, generator=generator) * 5
    t = torch.arange(length + 1, dtype=torch.float32)[None, :, None]
    centre = torch.cat([x, y], 1)[:, None, :] + v * t
    centre = centre + torch.randn(n, length + 1, 2, generator=generator)
    size = torch.cat([w, h], 1)[:, None, :].expand(-1, length + 1, -1)
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


# ----------------------------------------------------------------------------- box coder


def test_encode_decode_round_trip():
    ref = torch.tensor([[10.0, 20.0, 30.0, 80.0], [0.0, 0.0, 5.0, 5.0]])
    boxes = torch.tensor([[12.0, 18.0, 35.0, 90.0], [1.0, -1.0, 4.0, 7.0]])
    deltas = encode_boxes(boxes, ref)
    torch.testing.assert_close(decode_deltas(deltas, ref), boxes)
    torch.testing.assert_close(encode_boxes(ref, ref), torch.zeros(2, 4))
    # dx is in units of the reference width: a shift of one width is 1
    shifted = ref + torch.tensor([20.0, 0.0, 20.0, 0.0])
    assert encode_boxes(shifted, ref)[0, 0].item() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- constant velocity


@pytest.mark.parametrize("steps", [1, 3])
def test_constant_velocity_predicts_a_linear_trajectory_exactly(steps):
    model = ConstantVelocityModel(ConstantVelocityConfig(velocity_steps=steps, center_only=False))
    track = linear_track([100.0, 50.0, 140.0, 150.0], [3.0, -2.0, 4.0, -1.0], steps + 2)
    history, mask = stack_histories([track[:-1]], model.history_len)
    torch.testing.assert_close(model(history, mask), track[-1:])


def test_constant_velocity_center_only_keeps_the_size():
    model = ConstantVelocityModel()  # Tracktor: n_steps 1, centre only
    track = linear_track([100.0, 50.0, 140.0, 150.0], [3.0, -2.0, 3.0, -2.0], 4)
    history, mask = stack_histories([track[:-1]], model.history_len)
    torch.testing.assert_close(model(history, mask), track[-1:])
    growing = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 12.0, 12.0]])
    history, mask = stack_histories([growing], 2)
    torch.testing.assert_close(model(history, mask), torch.tensor([[1.0, 1.0, 13.0, 13.0]]))


def test_constant_velocity_averages_over_valid_steps_only():
    model = ConstantVelocityModel(ConstantVelocityConfig(velocity_steps=4, center_only=False))
    single = torch.tensor([[5.0, 5.0, 15.0, 25.0]])
    short = linear_track([0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 2.0, 0.0], 2)
    history, mask = stack_histories([single, short], model.history_len)
    out = model(history, mask)
    torch.testing.assert_close(out[0], single[0])  # one box: stays
    torch.testing.assert_close(out[1], torch.tensor([4.0, 0.0, 14.0, 10.0]))


# ----------------------------------------------------------------------------- learned


def test_untrained_learned_model_is_constant_velocity():
    g = torch.Generator().manual_seed(0)
    tracks = random_tracks(g, 8, 5)
    history, mask = stack_histories(list(tracks[:, :-1]), 5)
    mask[0, :3] = False  # a young track
    dets = tracks[:, -1] + torch.randn(8, 4, generator=g)
    model = LearnedMotionModel()
    cv = ConstantVelocityModel()
    torch.testing.assert_close(model(history, mask, dets, (1920, 1080)), cv(history, mask))
    identity = LearnedMotionModel(LearnedMotionConfig(base="identity"))
    torch.testing.assert_close(identity(history, mask, dets), history[:, -1])


def test_learned_model_gradients_reach_parameters_and_inputs():
    g = torch.Generator().manual_seed(1)
    tracks = random_tracks(g, 6, 5)
    history, mask = stack_histories(list(tracks[:, :-1]), 5)
    history.requires_grad_(True)
    dets = (tracks[:, -1] + torch.randn(6, 4, generator=g)).requires_grad_(True)
    model = LearnedMotionModel()
    loss = torch.nn.functional.smooth_l1_loss(
        model(history, mask, dets, (1920, 1080)), tracks[:, -1]
    )
    loss.backward()
    # at initialisation the head is zero: the gradient reaches the head, and the inputs
    # through the constant-velocity base
    assert model.head.weight.grad.abs().sum() > 0 and model.head.bias.grad.abs().sum() > 0
    assert history.grad.abs().sum() > 0 and torch.isfinite(history.grad).all()
    # once the head is non-zero (after a training step), every parameter and the detections
    # receive a gradient
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1, generator=g)
    model.zero_grad()
    history.grad = None
    loss = torch.nn.functional.smooth_l1_loss(
        model(history, mask, dets, (1920, 1080)), tracks[:, -1]
    )
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert dets.grad.abs().sum() > 0 and torch.isfinite(dets.grad).all()


def test_learned_model_learns_to_use_detections():
    """A few hundred Adam steps teach it to snap to the nearby detection, which constant
    velocity cannot do: the loss falls well below the untrained (constant-velocity) loss."""
    g = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    model = LearnedMotionModel(LearnedMotionConfig(hidden=32))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def batch():
        tracks = random_tracks(g, 64, 5)
        history, mask = stack_histories(list(tracks[:, :-1]), 5)
        target = tracks[:, -1]
        # the truth moves off the constant-velocity path; a detection sees it (small noise)
        target = target + torch.randn(64, 1, generator=g) * 8 * torch.tensor([1.0, 0, 1, 0])
        dets = target + torch.randn(64, 4, generator=g)
        return history, mask, dets, target

    def loss_of(history, mask, dets, target):
        out = model(history, mask, dets, (1920, 1080))
        return torch.nn.functional.smooth_l1_loss(out, target)

    held_out = batch()
    with torch.no_grad():
        before = loss_of(*held_out).item()
    for _ in range(200):
        optimiser.zero_grad()
        loss_of(*batch()).backward()
        optimiser.step()
    with torch.no_grad():
        after = loss_of(*held_out).item()
    assert after < 0.5 * before, (before, after)


def test_learned_model_is_batched_per_track():
    g = torch.Generator().manual_seed(3)
    tracks = random_tracks(g, 5, 5)
    history, mask = stack_histories(list(tracks[:, :-1]), 5)
    dets = tracks[:, -1]
    model = LearnedMotionModel()
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1, generator=g)
        together = model(history, mask, dets, (1920, 1080))
        alone = torch.cat(
            [model(history[i : i + 1], mask[i : i + 1], dets, (1920, 1080)) for i in range(5)]
        )
    torch.testing.assert_close(together, alone)


def test_learned_model_handles_no_tracks_no_detections_and_short_histories():
    model = LearnedMotionModel()
    empty = model(torch.zeros(0, 5, 4), torch.zeros(0, 5, dtype=torch.bool), torch.zeros(0, 4))
    assert empty.shape == (0, 4)
    history, mask = stack_histories([torch.tensor([[0.0, 0.0, 10.0, 20.0]])], 2)
    out = model(history, mask, None, None)  # shorter than history_len; no detections
    torch.testing.assert_close(out, history[:, -1])
    with pytest.raises(ValueError):
        model(torch.zeros(2, 5, 3), torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError):
        model(torch.zeros(2, 5, 4), torch.ones(2, 4, dtype=torch.bool))


@pytest.mark.parametrize(
    "bad", [{"history_len": 1}, {"base": "kalman"}, {"hidden": 0}, {"base_velocity_steps": 5}]
)
def test_learned_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        LearnedMotionConfig(**bad)


# ----------------------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path):
    g = torch.Generator().manual_seed(4)
    model = LearnedMotionModel(LearnedMotionConfig(hidden=16, history_len=4))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1, generator=g)
    path = tmp_path / "motion.safetensors"
    save_motion_model(model, path, card={"trained_on": "unit test"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motion.json", "motion.safetensors"]
    card = json.loads((tmp_path / "motion.json").read_text())
    assert card["config"]["hidden"] == 16 and card["trained_on"] == "unit test"
    loaded = load_motion_model(path)
    assert loaded.config == model.config and not loaded.training
    tracks = random_tracks(g, 3, 4)
    history, mask = stack_histories(list(tracks[:, :-1]), 4)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(history, mask, tracks[:, -1], (1920, 1080)),
            model(history, mask, tracks[:, -1], (1920, 1080)),
        )
    tracker = create_tracker("motion", weights=str(path))
    assert tracker.predictor.model.config == model.config
    with pytest.raises(ValueError, match="fix the model"):
        create_tracker("motion", weights=str(path), hidden=8)


def test_load_errors(tmp_path):
    with pytest.raises(DeepMOTError, match="no such"):
        load_motion_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(DeepMOTError):
        load_motion_model(bad)
    path = tmp_path / "m.safetensors"
    save_motion_model(LearnedMotionModel(LearnedMotionConfig(hidden=16)), path)
    # a card that no longer fits the weights: the metadata in the file wins, so still loads
    (tmp_path / "m.json").write_text(json.dumps({"config": {"hidden": 99}}))
    assert load_motion_model(path).config.hidden == 16


def test_motion_predictor_is_the_differentiable_path():
    tracker = create_tracker("motion")
    track = linear_track([100.0, 50.0, 140.0, 150.0], [3.0, -2.0, 3.0, -2.0], 4)
    batch = TrackBatch.from_histories([track[:-1]], tracker.predictor.history_len)
    batch.history.requires_grad_(True)
    out = tracker.predictor.predict(None, batch, track[-1:], (1920, 1080))
    assert out.scores is None and out.embeddings is None
    torch.testing.assert_close(out.boxes, track[-1:])  # untrained: constant velocity
    out.boxes.sum().backward()
    assert batch.history.grad is not None and batch.history.grad.abs().sum() > 0


@pytest.mark.parametrize("correct_unverified", [True, False])
def test_unverified_tracks_move_by_constant_velocity_unless_corrected(correct_unverified):
    tracker = create_tracker("motion", correct_unverified=correct_unverified)
    model = tracker.predictor.model
    torch.nn.init.normal_(model.head.weight, std=0.5, generator=torch.Generator().manual_seed(0))
    # two tracks moving right by 2 px a frame: constant velocity puts both at x + 2 next
    tracks = [linear_track([0.0, 0.0, 10.0, 20.0], [2.0, 0.0, 2.0, 0.0], 3)] * 2
    batch = TrackBatch.from_histories(tracks, model.config.history_len, verified=[True, False])
    dets = torch.tensor([[5.0, 1.0, 15.0, 21.0, 1.0]])
    out = tracker.predictor.predict(None, batch, dets, (100, 100)).boxes
    learned = model(batch.history, batch.mask, dets, (100, 100))
    torch.testing.assert_close(out[0], learned[0])  # verified: the trained model
    assert not torch.allclose(learned[1], torch.tensor([6.0, 0.0, 16.0, 20.0]))
    expected = learned[1] if correct_unverified else torch.tensor([6.0, 0.0, 16.0, 20.0])
    torch.testing.assert_close(out[1], expected)
