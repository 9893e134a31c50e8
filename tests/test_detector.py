"""The person detector: backbone registry, loading and its errors, a tiny training run."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.detection.config import BACKBONES, DetectorConfig, DetectorTrainConfig
from deepmot.detection.data import StepFrames, frame_targets, read_frame
from deepmot.detection.model import (
    BACKBONE_BUILDERS,
    build_detector,
    infer_config,
    init_detector,
    load_detector,
    save_detector,
)
from deepmot.detection.train import (
    SeededSampler,
    share_of_loss,
    train_detector,
    use_seeded_samplers,
)
from deepmot.errors import DeepMOTError

TINY = DetectorConfig.light(min_size=96, max_size=128)


def _outputs(model, image):
    with torch.no_grad():
        features = model.backbone(model.transform([image])[0].tensors)
    return torch.cat([f.flatten() for f in features.values()])


def test_registry_matches_the_torch_free_list():
    assert set(BACKBONE_BUILDERS) == set(BACKBONES)
    with pytest.raises(ValueError, match="valid names: resnet50_fpn, resnet18_fpn"):
        DetectorConfig(backbone="vgg16")


@pytest.mark.parametrize("backbone", ["mobilenet_v3_fpn", "resnet18_fpn"])
def test_light_detectors_have_the_smaller_box_head_and_frozen_norm(backbone):
    model = build_detector(DetectorConfig.light(backbone=backbone))
    head = sum(p.numel() for p in model.roi_heads.box_head.parameters())
    assert head == 256 * 7 * 7 * 256 + 256 + 256 * 256 + 256  # TwoMLPHead(12544, 256)
    norms = {type(m).__name__ for m in model.modules() if type(m).__name__.endswith("Norm2d")}
    assert norms == {"FrozenBatchNorm2d"}
    assert infer_config(model.state_dict(), "x") == DetectorConfig(
        backbone=backbone, representation=256
    )


def test_safetensors_round_trip_and_float16(tmp_path):
    torch.manual_seed(0)
    model = build_detector(TINY, trainable_norm=True)
    model.train()
    model(
        [torch.rand(3, 96, 128)],
        [{"boxes": torch.tensor([[10.0, 10.0, 40.0, 80.0]]), "labels": torch.tensor([1])}],
    )  # moves BatchNorm's running statistics away from their start
    model.eval()
    image = torch.rand(3, 96, 128)
    save_detector(model, TINY, tmp_path / "d.safetensors", {"note": "test"})
    loaded, config = load_detector(tmp_path / "d.safetensors")
    assert config == TINY
    # loaded with frozen BatchNorm: the same statistics, computed in another order
    torch.testing.assert_close(_outputs(loaded, image), _outputs(model, image))
    save_detector(model, TINY, tmp_path / "h.safetensors", half=True)
    half, _ = load_detector(tmp_path / "h.safetensors")
    size, half_size = ((tmp_path / n).stat().st_size for n in ("d.safetensors", "h.safetensors"))
    assert half_size < 0.55 * size
    torch.testing.assert_close(_outputs(half, image), _outputs(model, image), atol=0.05, rtol=0.02)


def test_torchvision_and_tracktor_state_dicts_load(tmp_path):
    """A bare state dict (torchvision's ``state_dict()``, Tracktor's ``.model`` files) and one
    under ``"model"``; the architecture is read from the keys."""
    torch.manual_seed(1)
    model = build_detector(DetectorConfig(backbone="resnet18_fpn", min_size=96, max_size=128))
    image = torch.rand(3, 96, 128)
    torch.save(model.state_dict(), tmp_path / "model_epoch_27.model")
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    for name in ("model_epoch_27.model", "ckpt.pth"):
        loaded, config = load_detector(tmp_path / name)
        assert (config.backbone, config.representation) == ("resnet18_fpn", 1024)
        assert config.min_size == 800  # torchvision's (and Tracktor's) default
        loaded.transform.min_size, loaded.transform.max_size = (96,), 128
        assert torch.equal(_outputs(model, image), _outputs(loaded, image))


def test_a_wrong_file_is_a_clear_error(tmp_path):
    state = build_detector(TINY).state_dict()
    broken = dict(state)
    broken.pop("roi_heads.box_predictor.bbox_pred.bias")
    broken["roi_heads.extra.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(DeepMOTError) as error:
        load_detector(tmp_path / "broken.pth", config=TINY)
    message = str(error.value)
    assert "missing keys: roi_heads.box_predictor.bbox_pred.bias" in message
    assert "unexpected keys: roi_heads.extra.weight" in message

    coco = dict(state)
    coco["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(91, 256)
    torch.save(coco, tmp_path / "coco.pth")
    with pytest.raises(DeepMOTError, match="91 classes; a person detector has 2"):
        load_detector(tmp_path / "coco.pth")

    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(DeepMOTError, match="not a Faster R-CNN state dict"):
        load_detector(tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DeepMOTError, match="not a PyTorch state dict"):
        load_detector(tmp_path / "junk.pth")
    with pytest.raises(DeepMOTError, match="no such detector weights file"):
        load_detector(tmp_path / "absent.safetensors")


def test_targets_clip_to_the_image_and_mark_low_visibility_as_crowd():
    seq = generate_scene(SceneConfig(frames=3, seed=2)).to_sequence()
    boxes, crowd = frame_targets(seq, 2, min_visibility=0.25)
    gt = seq.gt_at(2).active_pedestrians()
    assert len(boxes) <= len(gt.ids) and boxes.shape[1] == 4
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= seq.im_width).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= seq.im_height).all()
    inside = (np.minimum(gt.boxes[:, 2], seq.im_width) - np.maximum(gt.boxes[:, 0], 0) >= 1) & (
        np.minimum(gt.boxes[:, 3], seq.im_height) - np.maximum(gt.boxes[:, 1], 0) >= 1
    )
    assert len(boxes) == inside.sum()
    assert crowd.sum() == (inside & (gt.visibility < 0.25)).sum()


def _losses(path):
    with path.open(newline="") as handle:
        return [float(r["loss"]) for r in csv.DictReader(handle)]


def _tiny_run(tmp_path, iterations):
    scene = generate_scene(SceneConfig(frames=2, width=128, height=96, people=4, seed=5))
    sequences = [scene.to_sequence()]
    config = DetectorTrainConfig(
        detector=TINY, iterations=iterations, batch_size=1, lr=2e-3, checkpoint_every=6,
        flip=False,
    )  # fmt: skip
    result = train_detector(sequences, tmp_path / "run", config, progress=False)
    return sequences, config, result, _losses(tmp_path / "run" / "log.csv")


def test_a_tiny_training_run_reduces_the_loss(tmp_path):
    _, _, result, losses = _tiny_run(tmp_path, 16)
    assert len(losses) == 16 and result["iterations"] == 16
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    model, loaded = load_detector(tmp_path / "run" / "detector.safetensors")
    assert loaded == TINY and not model.training


def test_a_trained_detector_starts_a_run_at_another_image_size(tmp_path):
    trained = build_detector(TINY)
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    save_detector(trained, TINY, tmp_path / "trained.safetensors")
    smaller = DetectorConfig.light(min_size=64, max_size=96)
    model = build_detector(smaller)
    init_detector(model, smaller, tmp_path / "trained.safetensors")
    for (name, got), expected in zip(
        model.state_dict().items(), trained.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(got, expected, msg=name)
    assert model.transform.min_size == (64,)
    other = DetectorConfig.light(backbone="resnet18_fpn", min_size=64, max_size=96)
    with pytest.raises(DeepMOTError, match="mobilenet_v3_fpn detector; this one is resnet18_fpn"):
        init_detector(build_detector(other), other, tmp_path / "trained.safetensors")
    with pytest.raises(ValueError, match="exclude each other"):
        DetectorTrainConfig(detector=DetectorConfig.ssdlite(), init_backbone="a", init_detector="b")


@pytest.mark.slow
def test_a_resumed_run_continues_exactly(tmp_path):
    sequences, config, _, losses = _tiny_run(tmp_path, 24)
    # stop at 12 and resume to 24: the same losses as the uninterrupted run
    half = DetectorTrainConfig(**{**config.__dict__, "iterations": 12})
    train_detector(sequences, tmp_path / "split", half, progress=False)
    train_detector(sequences, tmp_path / "split", config, resume=True, progress=False)
    np.testing.assert_allclose(_losses(tmp_path / "split" / "log.csv"), losses, rtol=1e-4)


# ------------------------------------------------- the pieces that let processes share a batch


def test_each_process_reads_its_share_of_the_batch_one_process_draws():
    scene = generate_scene(SceneConfig(frames=6, width=64, height=64, people=3, seed=2))
    sequences = [scene.to_sequence()]
    whole = StepFrames(sequences, 4, seed=7)
    images, targets, seeds = whole[3]
    assert len(images) == 4 and seeds.shape == (4, 2)
    for world in (2, 4):
        for rank in range(world):
            share = StepFrames(sequences, 4, 7, rank=rank, world_size=world)[3]
            for got, i in zip(range(len(share[0])), range(rank, 4, world), strict=True):
                torch.testing.assert_close(share[0][got], images[i], rtol=0, atol=0)
                torch.testing.assert_close(share[1][got]["boxes"], targets[i]["boxes"])
                assert share[2][got].tolist() == seeds[i].tolist()
    index, frame, flipped, _ = whole.draw(3)[0]
    image, target = read_frame(sequences[index], frame, flipped, 0.25)
    torch.testing.assert_close(image, images[0], rtol=0, atol=0)
    assert StepFrames(sequences, 4, seed=8).draw(3) != whole.draw(3)


def test_an_images_samples_do_not_depend_on_the_rest_of_the_batch():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.integers(-1, 3, 500))
    b = torch.from_numpy(rng.integers(-1, 3, 300))
    sampler = SeededSampler(64, 0.25)
    sampler.seeds = [11, 12]
    (_, pos_b), (_, neg_b) = sampler([a, b])
    assert sampler.drawn == 128
    alone = SeededSampler(64, 0.25)
    alone.seeds = [12]
    (pos,), (neg,) = alone([b])
    assert torch.equal(pos, pos_b) and torch.equal(neg, neg_b) and alone.drawn == 64
    # what torchvision's sampler draws for b alone from the same seed
    torch.manual_seed(12)
    (ref_pos,), (ref_neg,) = BalancedPositiveNegativeSampler(64, 0.25)([b])
    assert torch.equal(pos, ref_pos) and torch.equal(neg, ref_neg)


def test_the_shares_of_two_processes_average_to_the_whole_batchs_loss():
    """torchvision's loss of a batch of two frames = the mean of the two frames' shares
    (each loss a mean over its samples, the frames holding different numbers of them)."""
    torch.manual_seed(0)
    model = build_detector(TINY).train()  # frozen BatchNorm: no statistics shared
    rpn, head = use_seeded_samplers(model)
    scene = generate_scene(SceneConfig(frames=4, width=128, height=96, people=4, seed=5))
    sequence = scene.to_sequence()
    frames = [read_frame(sequence, f, False, 0.25) for f in (1, 4)]
    seeds = [(1, 2), (3, 4)]

    def forward(indices):
        rpn.seeds = [seeds[i][0] for i in indices]
        head.seeds = [seeds[i][1] for i in indices]
        losses = model([frames[i][0] for i in indices], [frames[i][1] for i in indices])
        return losses, (rpn.drawn,) * 2 + (head.drawn,) * 2

    whole, _ = forward([0, 1])
    shares = [forward([i]) for i in (0, 1)]
    totals = tuple(a + b for a, b in zip(shares[0][1], shares[1][1], strict=True))
    assert shares[0][1][2] != shares[1][1][2]  # unequal proposals: the weights matter
    mean = sum(share_of_loss(losses, counts, totals, 2) for losses, counts in shares) / 2
    torch.testing.assert_close(mean, sum(whole.values()), rtol=1e-5, atol=1e-6)
