"""The inference copy of a frozen backbone: BatchNorm folded into the convolutions, and the
OpenVINO runtime, equal the backbone itself; the copy is rebuilt when weights are loaded and
never enters a state dict."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from deepmot.detection.config import DetectorConfig
from deepmot.detection.inference import (
    InferenceBackbone,
    fold_frozen_batchnorm,
    inference_copy,
    resolve_runtime,
)
from deepmot.detection.model import build_detector
from deepmot.errors import DeepMOTError
from deepmot.trackers.tracktor import TracktorConfig, TracktorModel

TINY = DetectorConfig.ssdlite(min_size=96, max_size=128)


def _randomise_norms(module: nn.Module, seed: int) -> None:
    """Frozen norms away from identity, so that folding them is tested."""
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, FrozenBatchNorm2d):
            for buffer in (norm.weight, norm.bias, norm.running_mean):
                buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.2)
            norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=generator) + 0.5)


def test_a_folded_convolution_equals_convolution_then_norm_by_hand():
    torch.manual_seed(0)
    conv, norm = nn.Conv2d(3, 4, 3, padding=1, bias=False), FrozenBatchNorm2d(4, eps=1e-3)
    _randomise_norms(nn.Sequential(norm), seed=1)
    block = nn.Sequential(nn.Sequential(conv, norm, nn.ReLU6()))
    x = torch.randn(2, 3, 9, 11)
    scale = norm.weight / torch.sqrt(norm.running_var + 1e-3)
    by_hand = (conv(x) - norm.running_mean[:, None, None]) * scale[:, None, None]
    by_hand = (by_hand + norm.bias[:, None, None]).clamp(0, 6)
    assert fold_frozen_batchnorm(block) == 1
    assert isinstance(block[0][1], nn.Identity)
    torch.testing.assert_close(block(x), by_hand, rtol=1e-5, atol=1e-5)


def test_the_detector_backbone_folds_every_norm_and_gives_the_same_features():
    backbone = build_detector(TINY).backbone
    _randomise_norms(backbone, seed=2)
    fast = inference_copy(backbone)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in fast.modules())
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        expected, got = backbone(x), fast(x.contiguous(memory_format=torch.channels_last))
    assert list(got) == list(expected)
    for level in expected:
        torch.testing.assert_close(got[level], expected[level], rtol=1e-4, atol=1e-4)


def test_the_copy_follows_loaded_weights_and_stays_out_of_the_state_dict():
    model = TracktorModel(TracktorConfig(detector="untrained"), build_detector(TINY), TINY)
    keys = set(model.state_dict())
    x = torch.rand(1, 3, 96, 128)
    first = model.inference_backbone(x)["0"]
    other = build_detector(TINY)
    _randomise_norms(other.backbone, seed=3)
    model.detector.load_state_dict(other.state_dict())
    with torch.no_grad():
        expected = other.backbone(x)["0"]
    after = model.inference_backbone(x)["0"]
    assert not torch.allclose(after, first, atol=1e-4)
    torch.testing.assert_close(after, expected, rtol=1e-4, atol=1e-4)
    assert set(model.state_dict()) == keys


def test_tracking_features_equal_the_training_path():
    model = TracktorModel(TracktorConfig(detector="untrained"), build_detector(TINY), TINY)
    _randomise_norms(model.detector.backbone, seed=4)
    image = torch.rand(3, 120, 160)
    model.train()
    trained, size = model.features(image)
    model.eval()
    tracked, same_size = model.features(image)
    assert size == same_size
    for level in trained:
        torch.testing.assert_close(tracked[level], trained[level], rtol=1e-4, atol=1e-4)


def test_the_openvino_runtime_gives_the_torch_features_for_each_input_size():
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    backbone = build_detector(TINY).backbone
    _randomise_norms(backbone, seed=5)
    compiled = InferenceBackbone(backbone, runtime="openvino")
    for height, width in ((96, 128), (64, 96)):
        x = torch.rand(1, 3, height, width)
        with torch.no_grad():
            expected = backbone(x)
        first = compiled(x)
        again = compiled(x)  # the compiled request's buffers are reused: outputs are copies
        assert list(first) == list(expected)
        for level in expected:
            torch.testing.assert_close(first[level], expected[level], rtol=1e-4, atol=1e-4)
            assert first[level].data_ptr() != again[level].data_ptr()
    assert len(compiled._copy.compiled) == 2


def test_backbones_with_the_same_weights_share_one_compiled_model(monkeypatch):
    """A second backbone built with the same weights (another tracker of the same detector)
    reuses the process's compiled model; other weights compile their own, and the process
    keeps only the last ``COMPILED_KEPT``."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    from deepmot.detection import inference

    monkeypatch.setattr(inference, "_COMPILED", inference.OrderedDict())
    monkeypatch.setattr(inference, "COMPILED_KEPT", 2)
    first, same, other = (build_detector(TINY).backbone for _ in range(3))
    _randomise_norms(first, seed=5)
    same.load_state_dict(first.state_dict())
    _randomise_norms(other, seed=6)
    x = torch.rand(1, 3, 96, 128)
    features = [InferenceBackbone(b, runtime="openvino") for b in (first, same, other)]
    outputs = [f(x) for f in features]
    requests = [f._copy.compiled[tuple(x.shape)][0] for f in features]
    assert requests[0] is requests[1] and requests[2] is not requests[0]
    assert len(inference._COMPILED) == 2
    for level in outputs[0]:
        torch.testing.assert_close(outputs[1][level], outputs[0][level], rtol=0, atol=0)
        assert not torch.allclose(outputs[2][level], outputs[0][level])
    InferenceBackbone(first, runtime="openvino")(torch.rand(1, 3, 64, 96))  # a third model
    assert len(inference._COMPILED) == 2  # the oldest dropped


def test_runtimes_resolve_or_say_why_not(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_runtime("torch", cpu) == "torch"
    with pytest.raises(DeepMOTError, match="must be one of auto, torch, openvino"):
        resolve_runtime("onnx", cpu)
    with pytest.raises(ValueError, match="backbone_runtime must be one of"):
        TracktorConfig(backbone_runtime="onnx")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert resolve_runtime("auto", cpu) == "torch"
    with pytest.raises(DeepMOTError, match=r"pip install 'deepmot\[openvino\]'"):
        resolve_runtime("openvino", cpu)
