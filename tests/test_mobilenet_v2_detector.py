"""The MobileNetV2 backbone of TensorFlow's SSDLite person detector: the TF -> torchvision
mapping, TF-SAME padding, the ``mobilenet_v2_fpn`` detector, its initialisation from a
converted file, the training data's mix and parts, and the shipped real-frame detector."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.ops.misc import FrozenBatchNorm2d

from deepmot.commands.detector import part_frames
from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.detection.config import DetectorConfig, DetectorTrainConfig
from deepmot.detection.data import StepFrames, sampling_weights
from deepmot.detection.mobilenet_v2 import (
    TF_PREFIX,
    Conv2dSame,
    init_backbone,
    mobilenet_v2_features,
    save_backbone,
    tf_to_torchvision,
)
from deepmot.detection.model import build_detector, infer_config, load_detector, save_detector
from deepmot.detection.train import freeze_layers, train_detector
from deepmot.errors import DeepMOTError

TINY = DetectorConfig.ssdlite(min_size=96, max_size=128)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # as conftest.py


def _tf_variables(features: torch.nn.Module) -> dict[str, np.ndarray]:
    """A torchvision ``mobilenet_v2().features``'s weights under the SSDLite graph's names and
    in TensorFlow's layouts (written from the graph's listing, independently of the mapping)."""
    state = {k: v.numpy() for k, v in features.state_dict().items()}
    out: dict[str, np.ndarray] = {}

    def conv(scope: str, key: str) -> None:  # OIHW -> HWIO
        out[f"{TF_PREFIX}{scope}/weights"] = state[key].transpose(2, 3, 1, 0)

    def depthwise(scope: str, key: str) -> None:  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        out[f"{TF_PREFIX}{scope}/depthwise_weights"] = state[key].transpose(2, 3, 0, 1)

    def bn(scope: str, key: str) -> None:
        for tf, tv in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean")):
            out[f"{TF_PREFIX}{scope}/BatchNorm/{tf}"] = state[f"{key}.{tv}"]
        out[f"{TF_PREFIX}{scope}/BatchNorm/moving_variance"] = state[f"{key}.running_var"]

    conv("Conv", "0.0.weight")
    bn("Conv", "0.1")
    depthwise("expanded_conv/depthwise", "1.conv.0.0.weight")
    bn("expanded_conv/depthwise", "1.conv.0.1")
    conv("expanded_conv/project", "1.conv.1.weight")
    bn("expanded_conv/project", "1.conv.2")
    for block in range(1, 17):
        scope, i = f"expanded_conv_{block}", block + 1
        conv(f"{scope}/expand", f"{i}.conv.0.0.weight")
        bn(f"{scope}/expand", f"{i}.conv.0.1")
        depthwise(f"{scope}/depthwise", f"{i}.conv.1.0.weight")
        bn(f"{scope}/depthwise", f"{i}.conv.1.1")
        conv(f"{scope}/project", f"{i}.conv.2.weight")
        bn(f"{scope}/project", f"{i}.conv.3")
    conv("Conv_1", "18.0.weight")
    bn("Conv_1", "18.1")
    return out


def _random_features(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    features = torchvision.models.mobilenet_v2().features
    for name, buffer in features.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            buffer.copy_(torch.rand_like(buffer) + 0.1)
    return features


# ------------------------------------------------------------------- TF -> torchvision mapping


def test_a_hand_made_convolution_is_permuted_element_by_element():
    features = _random_features(0)
    arrays = _tf_variables(features)
    hwio = np.arange(3 * 3 * 3 * 32, dtype=np.float32).reshape(3, 3, 3, 32)
    arrays[f"{TF_PREFIX}Conv/weights"] = hwio
    dw = np.arange(3 * 3 * 96, dtype=np.float32).reshape(3, 3, 96, 1)
    arrays[f"{TF_PREFIX}expanded_conv_1/depthwise/depthwise_weights"] = dw
    state = tf_to_torchvision(arrays)
    conv, depth = state["0.0.weight"], state["2.conv.1.0.weight"]
    assert conv.shape == (32, 3, 3, 3) and depth.shape == (96, 1, 3, 3)
    for o, i, h, w in [(0, 0, 0, 0), (31, 2, 1, 0), (5, 1, 2, 2), (17, 0, 0, 1)]:
        assert conv[o, i, h, w] == hwio[h, w, i, o]
    for c, h, w in [(0, 0, 0), (95, 2, 1), (40, 1, 2)]:
        assert depth[c, 0, h, w] == dw[h, w, c, 0]


def test_the_mapping_inverts_the_tf_layout_and_loads_strictly():
    features = _random_features(1)
    arrays = _tf_variables(features)
    arrays[f"{TF_PREFIX}layer_19_1_Conv2d_2_1x1_256/weights"] = np.zeros((1, 1, 1280, 256))
    state = tf_to_torchvision(arrays)  # the SSD's extra layers are ignored
    assert len(state) == 260
    expected = {k: v for k, v in features.state_dict().items() if "num_batches" not in k}
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    target = torchvision.models.mobilenet_v2().features
    missing, unexpected = target.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    frozen = mobilenet_v2_features(FrozenBatchNorm2d)
    frozen.load_state_dict(state, strict=True)  # FrozenBatchNorm2d has no batch counter


def test_a_missing_or_misshapen_variable_is_named():
    arrays = _tf_variables(_random_features(2))
    del arrays[f"{TF_PREFIX}expanded_conv_7/project/BatchNorm/beta"]
    with pytest.raises(ValueError, match="1 MobileNetV2 variables missing: expanded_conv_7"):
        tf_to_torchvision(arrays)
    arrays = _tf_variables(_random_features(2))
    arrays[f"{TF_PREFIX}Conv_1/weights"] = np.zeros((320, 1280))
    with pytest.raises(ValueError, match="Conv_1/weights: shape"):
        tf_to_torchvision(arrays)


# ------------------------------------------------------------------------- TF-SAME padding


@pytest.mark.parametrize(("height", "width"), [(8, 8), (9, 7), (10, 13), (5, 6)])
def test_same_padding_equals_a_hand_padded_convolution(height, width):
    """TF's SAME, stride 2, 3x3: an even side gets 0 pixels before and 1 after, an odd side 1
    and 1; the output is ceil(n / 2)."""
    torch.manual_seed(height * width)
    conv = Conv2dSame(4, 6, 3, stride=2, bias=True)
    x = torch.randn(2, 4, height, width)
    left, right = (0, 1) if width % 2 == 0 else (1, 1)
    top, bottom = (0, 1) if height % 2 == 0 else (1, 1)
    expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, stride=2)
    got = conv(x)
    assert got.shape[-2:] == (-(-height // 2), -(-width // 2))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    if height % 2 == 0 and width % 2 == 0:  # torchvision's symmetric padding differs here
        symmetric = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)
        assert not torch.allclose(symmetric, got)


def test_depthwise_same_padding_keeps_groups():
    torch.manual_seed(0)
    conv = Conv2dSame(8, 8, 3, stride=2, groups=8, bias=False)
    x = torch.randn(1, 8, 6, 6)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, None, stride=2, groups=8)
    torch.testing.assert_close(conv(x), expected, rtol=0, atol=0)


def test_the_features_have_tf_padding_and_eps():
    features = mobilenet_v2_features()
    strided = [m for m in features.modules() if isinstance(m, torch.nn.Conv2d) and m.stride[0] > 1]
    assert len(strided) == 5 and all(isinstance(m, Conv2dSame) for m in strided)
    norms = [m for m in features.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 52 and {m.eps for m in norms} == {1e-3}
    assert features(torch.rand(1, 3, 64, 96)).shape == (1, 1280, 2, 3)


# ---------------------------------------------------------------------- the detector itself


def test_the_detector_sees_the_input_ssd_was_trained_on():
    model = build_detector(TINY)
    image = torch.rand(3, 96, 128)
    normalised = model.transform.normalize(image)
    torch.testing.assert_close(normalised, image * 2 - 1)
    assert infer_config(model.state_dict(), "x") == DetectorConfig(
        backbone="mobilenet_v2_fpn", representation=256
    )
    ratios = model.rpn.anchor_generator.aspect_ratios
    assert all(min(r) >= 1.0 for r in ratios)  # upright boxes: height >= width


def test_the_backbone_file_initialises_the_detector(tmp_path):
    features = _random_features(3)
    state = tf_to_torchvision(_tf_variables(features))
    save_backbone(state, tmp_path / "b.safetensors", {"source": "test"})
    model = build_detector(TINY)
    init_backbone(model, tmp_path / "b.safetensors")
    body = model.backbone.body.state_dict()
    for key, value in state.items():
        assert torch.equal(body[key], value), key
    assert json.loads((tmp_path / "b.json").read_text())["source"] == "test"


def test_a_backbone_file_that_does_not_fit_is_a_clear_error(tmp_path):
    state = tf_to_torchvision(_tf_variables(_random_features(4)))
    model = build_detector(TINY)
    short = dict(state)
    short.pop("18.1.running_var")
    save_backbone(short, tmp_path / "short.safetensors", {})
    with pytest.raises(DeepMOTError, match=r"short.safetensors: .*missing keys: 18.1.running_var"):
        init_backbone(model, tmp_path / "short.safetensors")
    wide = dict(state, **{"18.0.weight": torch.zeros(1000, 320, 1, 1)})
    save_backbone(wide, tmp_path / "wide.safetensors", {})
    with pytest.raises(DeepMOTError, match="wide.safetensors: the backbone does not fit"):
        init_backbone(model, tmp_path / "wide.safetensors")
    save_detector(model, TINY, tmp_path / "detector.safetensors")
    with pytest.raises(DeepMOTError, match="not a converted MobileNetV2 backbone"):
        init_backbone(model, tmp_path / "detector.safetensors")
    with pytest.raises(ValueError, match="needs backbone mobilenet_v2_fpn"):
        DetectorTrainConfig(detector=DetectorConfig.light(), init_backbone="b.safetensors")


def test_the_cli_refuses_a_backbone_file_that_does_not_fit(tmp_path, capsys):
    from deepmot.cli import main

    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    argv = ["detector", "train", "--out", str(tmp_path / "run"), "--frames", "2"]
    argv += ["--sequences", "1", "--backbone", "mobilenet_v2_fpn", "--min-size", "64"]
    argv += ["--init-backbone", str(tmp_path / "junk.safetensors"), "--no-progress"]
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "junk.safetensors: not a safetensors file" in err.strip().splitlines()[-1]


def test_a_pretrained_detector_trains_a_step_and_round_trips(tmp_path):
    state = tf_to_torchvision(_tf_variables(_random_features(5)))
    save_backbone(state, tmp_path / "b.safetensors", {})
    scene = generate_scene(SceneConfig(frames=2, width=128, height=96, people=4, seed=5))
    config = DetectorTrainConfig(
        detector=TINY, iterations=2, batch_size=1, lr=1e-3, norm="frozen", flip=False,
        init_backbone=str(tmp_path / "b.safetensors"), frozen_layers=7,
    )  # fmt: skip
    train_detector([scene.to_sequence()], tmp_path / "run", config, progress=False, half=True)
    model, loaded = load_detector(tmp_path / "run" / "detector.safetensors")
    assert loaded == TINY
    body = model.backbone.body.state_dict()
    for key in ("0.0.weight", "6.conv.1.0.weight", "3.conv.3.running_var"):  # frozen layers
        torch.testing.assert_close(body[key], state[key].half().float())
    assert not torch.equal(body["18.0.weight"], state["18.0.weight"].half().float())
    with torch.no_grad():
        out = model([torch.rand(3, 96, 128)])[0]
    assert set(out) == {"boxes", "scores", "labels"}


def test_freezing_more_layers_than_the_body_has_is_an_error():
    model = build_detector(TINY)
    freeze_layers(model, 19)
    assert not any(p.requires_grad for p in model.backbone.body.parameters())
    with pytest.raises(ValueError, match="has 19 modules"):
        freeze_layers(model, 20)


# ------------------------------------------------------------------ the training data's mix


def test_synthetic_share_and_real_frames_weights():
    synthetic = [generate_scene(SceneConfig(frames=3, seed=s)).to_sequence() for s in (1, 2)]
    real = [Sequence("A", 30, 64, 64), Sequence("B", 10, 64, 64)]
    weights = sampling_weights(real + synthetic, 0.2)
    np.testing.assert_allclose(weights, [0.6, 0.2, 0.1, 0.1])
    assert sampling_weights(real, 0.2) == pytest.approx([0.75, 0.25])  # no scene: all real
    assert sampling_weights(synthetic, 0.2) == pytest.approx([0.5, 0.5])
    assert sampling_weights(real, None) is None
    steps = StepFrames(synthetic, 4, seed=0, weights=[1.0, 0.0])
    assert {index for s in range(20) for index, *_ in steps.draw(s)} == {0}


def test_parts_are_the_papers_split_or_fractions():
    assert part_frames(795, "train") == range(1, 398)
    assert part_frames(795, "val") == range(598, 796)
    assert part_frames(795, "0.35:0.5") == range(279, 398)
    assert part_frames(795, "0:0.35") == range(1, 279)


# ------------------------------------------------------------- the shipped detector, real frames

PETS_VIDEO = SHARED_DATA / "video" / "PETS09-S2L1.avi"
PETS_GT = SHARED_DATA / "mot" / "PETS09-S2L1"
PETS_FRAMES = (620, 660, 700, 740, 780)  # of the validation quarter (598-795)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("which", ["REAL_DETECTOR", "FAST_DETECTOR"])
def test_the_shipped_real_detectors_find_people_in_pets09_validation_frames(tmp_path, which):
    import cv2

    from deepmot.detection.evaluate import evaluate_detector
    from deepmot.trackers import tracktor

    if not PETS_VIDEO.is_file() or not (PETS_GT / "gt" / "gt.txt").is_file():
        pytest.skip(f"PETS09-S2L1 video or gt not found under {SHARED_DATA}")
    folder = tmp_path / "PETS09-S2L1"
    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    capture = cv2.VideoCapture(str(PETS_VIDEO))
    for frame in range(1, max(PETS_FRAMES) + 1):
        ok, image = capture.read()
        assert ok, f"frame {frame} of {PETS_VIDEO}"
        if frame in PETS_FRAMES:  # renumbered 1..5 with their ground truth
            number = PETS_FRAMES.index(frame) + 1
            cv2.imwrite(str(folder / "img1" / f"{number:06d}.jpg"), image)
    capture.release()
    rows = []
    for line in (PETS_GT / "gt" / "gt.txt").read_text().splitlines():
        fields = line.split(",")
        if int(fields[0]) in PETS_FRAMES:
            rows.append(",".join([str(PETS_FRAMES.index(int(fields[0])) + 1), *fields[1:]]))
    (folder / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    info = configparser.ConfigParser()
    info.optionxform = str
    info.read(PETS_GT / "seqinfo.ini")
    info["Sequence"]["seqLength"] = str(len(PETS_FRAMES))
    with (folder / "seqinfo.ini").open("w") as handle:
        info.write(handle)
    model, _ = load_detector(getattr(tracktor, which))
    result = evaluate_detector(model, [Sequence.from_dir(folder)], stride=1, progress=False)
    assert result["frames"] == 5 and result["objects"] > 20
    # the whole quarter (stride 5): 0.967 at 432 px, 0.941 at 352 px (docs/detector.md)
    assert result["ap50"] > 0.7
