"""SiamRPN: anchors and decoding against hand-computed cases, proposal selection, batched =
one at a time, templates cut at birth, weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepmot.trackers import TrackBatch, create_tracker
from deepmot.trackers.siamrpn import (
    TEMPLATE_KEY,
    SiamRPNConfig,
    SiamRPNModel,
    SiamRPNPredictor,
    decode_anchors,
    generate_anchors,
    load_siamrpn,
    save_siamrpn,
    select_anchor,
)

BOXES = torch.tensor(
    [[10.0, 20.0, 50.0, 120.0], [200.0, 50.0, 230.0, 130.0], [-5.0, 150.0, 25.0, 235.0]]
)


def test_anchors_hand_computed():
    anchors = generate_anchors((1.0, 4.0), (2.0,), stride=8, score_size=3)
    assert anchors.shape == (2 * 9, 4)
    # shape 0: ratio 1, side 16; positions row-major from (-8, -8) to (8, 8)
    torch.testing.assert_close(anchors[0], torch.tensor([-8.0, -8.0, 16.0, 16.0]))
    torch.testing.assert_close(anchors[5], torch.tensor([8.0, 0.0, 16.0, 16.0]))  # row 1, col 2
    # shape 1: ratio 4 (h/w), area 16^2 -> w 8, h 32; the centre cell is index 9 + 4
    torch.testing.assert_close(anchors[13], torch.tensor([0.0, 0.0, 8.0, 32.0]))
    assert (anchors[:, 2] * anchors[:, 3]).allclose(torch.tensor(256.0))


def test_decoding_hand_computed():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 20.0], [8.0, -8.0, 16.0, 16.0]])
    deltas = torch.tensor([[0.5, -0.25, 0.0, math.log(2.0)], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(
        decode_anchors(deltas, anchors),
        torch.tensor([[5.0, -5.0, 10.0, 40.0], [8.0, -8.0, 16.0, 16.0]]),
    )


def test_selection_prefers_the_centre_and_unchanged_shapes():
    config = SiamRPNConfig(penalty_k=0.055, window_influence=0.42)
    window = torch.tensor([0.5, 1.0, 0.5])
    previous = torch.tensor([[10.0, 20.0]])
    same = torch.tensor([10.0, 20.0])
    boxes = torch.tensor([[[-8.0, 0.0, *same], [0.0, 0.0, *same], [8.0, 0.0, *same]]])
    # equal scores: the window picks the centre
    best, penalty = select_anchor(torch.full((1, 3), 0.5), boxes, previous, window, config)
    assert best.tolist() == [1] and penalty.allclose(torch.ones(1, 3))
    # a much higher score off-centre wins over the window: 0.58 * 0.9 + 0.21 > 0.58 * 0.3 + 0.42
    best, _ = select_anchor(torch.tensor([[0.9, 0.3, 0.1]]), boxes, previous, window, config)
    assert best.tolist() == [0]
    # doubling the size: r_c = 1, s_c = 2 -> penalty exp(-0.055)
    grown = torch.tensor([[[0.0, 0.0, 20.0, 40.0]]])
    _, penalty = select_anchor(torch.ones(1, 1), grown, previous, torch.ones(1), config)
    torch.testing.assert_close(penalty, torch.tensor([[math.exp(-0.055)]]))


def _frames(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(2))


def _random_heads(seed: int = 0) -> SiamRPNPredictor:
    torch.manual_seed(seed)
    model = SiamRPNModel(SiamRPNConfig(channels=16)).eval()
    for branch in (model.cls, model.reg):
        torch.nn.init.normal_(branch.head[-1].weight, std=0.05)
    return SiamRPNPredictor(model)


def _batch(boxes: torch.Tensor) -> TrackBatch:
    return TrackBatch.from_histories([b[None] for b in boxes], 1)


def test_untrained_model_keeps_centres():
    predictor = SiamRPNPredictor(SiamRPNModel().eval())
    before, after = _frames()
    tracks = _batch(BOXES)
    with torch.no_grad():
        predictor.on_birth(before, tracks)
        out = predictor.predict(after, tracks, None, None).boxes
    torch.testing.assert_close((out[:, :2] + out[:, 2:]) / 2, (BOXES[:, :2] + BOXES[:, 2:]) / 2)


def test_batched_prediction_equals_one_track_at_a_time_and_templates_are_kept():
    predictor = _random_heads()
    before, after = _frames()
    with torch.no_grad():
        tracks = _batch(BOXES)
        predictor.on_birth(before, tracks)
        templates = [e[TEMPLATE_KEY][0].clone() for e in tracks.extras]
        batched = predictor.predict(after, tracks, None, None)
        for i in range(len(BOXES)):
            one = _batch(BOXES[i : i + 1])
            predictor.on_birth(before, one)
            torch.testing.assert_close(one.extras[0][TEMPLATE_KEY][0], templates[i])
            single = predictor.predict(after, one, None, None)
            torch.testing.assert_close(batched.boxes[i : i + 1], single.boxes, atol=1e-4, rtol=0)
            torch.testing.assert_close(batched.scores[i : i + 1], single.scores)
    # predicting does not replace the templates cut at birth
    for extra, template in zip(tracks.extras, templates, strict=True):
        torch.testing.assert_close(extra[TEMPLATE_KEY][0], template)


def test_gradients_reach_backbone_and_regression():
    predictor = _random_heads()
    predictor.model.train()
    before, after = _frames()
    tracks = _batch(BOXES)
    predictor.on_birth(before, tracks)
    predictor.predict(after, tracks, None, None).boxes.sum().backward()
    assert predictor.model.features[0].weight.grad.abs().sum() > 0
    assert predictor.model.reg.head[-1].weight.grad.abs().sum() > 0


def test_score_map_sizes_and_weights_round_trip(tmp_path):
    assert SiamRPNModel().score_size == 9  # 128 search over 64 exemplar, stride 8
    predictor = _random_heads()
    path = tmp_path / "siamrpn.safetensors"
    save_siamrpn(predictor.model, path)
    loaded = load_siamrpn(path)
    assert loaded.config == predictor.model.config
    for name, value in predictor.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)
    assert create_tracker("siamrpn", weights=path).config.max_invisible == 60
    assert SiamRPNConfig.from_dict(SiamRPNConfig.alexnet().to_dict()).anchor_scales == (8.0,)


@pytest.mark.slow
def test_paper_sized_alexnet_score_map():
    assert SiamRPNModel(SiamRPNConfig.alexnet()).score_size == 17  # SiamRPN's 17 x 17
