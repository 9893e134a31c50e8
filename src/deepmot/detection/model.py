"""The person detector: torchvision's Faster R-CNN (two classes) over a registry of backbones.

``build_detector(config)`` builds it untrained (``weights=None, weights_backbone=None``:
nothing can be downloaded here). BatchNorm is torchvision's ``FrozenBatchNorm2d`` (what Tracktor
tracks and trains with) unless ``trainable_norm`` (training a detector from scratch needs
batch statistics); both give the same state-dict layout, so a detector trained with BatchNorm
loads into a frozen one.

:func:`load_detector` reads our safetensors files (the config in their metadata), and plain
PyTorch state dicts: torchvision's ``FasterRCNN.state_dict()`` and Tracktor's checkpoints (the
state dict of a two-class ``FasterRCNN`` subclass, e.g. ``model_epoch_27.model``), whose
backbone and box-head width are read from the keys. A file that does not fit is a
:class:`~deepmot.errors.DeepMOTError` naming the missing and unexpected keys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import (
    BackboneWithFPN,
    mobilenet_backbone,
    resnet_fpn_backbone,
)
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from deepmot.detection.config import BACKBONES, DetectorConfig
from deepmot.detection.mobilenet_v2 import mobilenet_v2_features
from deepmot.errors import DeepMOTError
from deepmot.io.weights import read_weights, save_weights

__all__ = [
    "BACKBONE_BUILDERS",
    "INPUT_NORMALISATION",
    "WithoutBatchCounters",
    "build_detector",
    "infer_config",
    "init_detector",
    "load_detector",
    "load_detector_state",
    "save_detector",
]

NUM_CLASSES = 2  # background, person (Tracktor's FRCNN_FPN(num_classes=2))


def _resnet(name: str) -> Callable[[type[nn.Module]], tuple[nn.Module, Any]]:
    def build(norm: type[nn.Module]) -> tuple[nn.Module, Any]:
        # all five stages trainable: nothing is pretrained; torchvision's default anchors
        backbone = resnet_fpn_backbone(
            backbone_name=name, weights=None, norm_layer=norm, trainable_layers=5
        )
        return backbone, None

    return build


def _mobilenet_v3(norm: type[nn.Module]) -> tuple[nn.Module, Any]:
    backbone = mobilenet_backbone(
        backbone_name="mobilenet_v3_large",
        weights=None,
        fpn=True,
        trainable_layers=6,
        norm_layer=norm,
    )
    # torchvision's fasterrcnn_mobilenet_v3_large_fpn: every size at each of its 3 levels
    anchors = AnchorGenerator(((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3)
    return backbone, anchors


MOBILENET_V2_LEVELS = {"6": "0", "13": "1", "18": "2"}
"""``mobilenet_v2_fpn``'s pyramid inputs: the outputs of features 6, 13 and 18 (32, 96 and 1280
channels at strides 8, 16 and 32), plus a max-pooled level at stride 64. Stride 8 is there for
PETS09-S2L1's people, about 58 x 22 px at 432 px input."""

MOBILENET_V2_FPN_CHANNELS = 128
"""Width of ``mobilenet_v2_fpn``'s pyramid (torchvision's FPNs: 256; 128 cuts the cost of the
pyramid's and the RPN head's 3x3 convolutions about four-fold, and the box head's input
two-fold)."""

PEDESTRIAN_ANCHORS = (((16, 32), (48, 80), (128, 192), (256, 384)), ((1.0, 2.0, 3.0),) * 4)
"""``mobilenet_v2_fpn``'s anchors (sizes = sqrt(area) per pyramid level, height/width ratios):
upright boxes (MOTChallenge people are about 2.5 times as high as wide; 1.0 for the partly
occluded), two sizes per level from PETS09-S2L1's far people (about 15 x 40 px at 432 px
input) to MOT17's near ones."""


def _mobilenet_v2(norm: type[nn.Module]) -> tuple[nn.Module, Any]:
    body = mobilenet_v2_features(norm)
    backbone = BackboneWithFPN(
        body,
        MOBILENET_V2_LEVELS,
        [body[int(k)].out_channels for k in MOBILENET_V2_LEVELS],
        MOBILENET_V2_FPN_CHANNELS,
        extra_blocks=LastLevelMaxPool(),
    )
    return backbone, AnchorGenerator(*PEDESTRIAN_ANCHORS)


BACKBONE_BUILDERS: dict[str, Callable[[type[nn.Module]], tuple[nn.Module, Any]]] = {
    "resnet50_fpn": _resnet("resnet50"),
    "resnet18_fpn": _resnet("resnet18"),
    "mobilenet_v3_fpn": _mobilenet_v3,
    "mobilenet_v2_fpn": _mobilenet_v2,
}
"""Backbone registry: name -> ``norm_layer -> (backbone with FPN, anchor generator or None)``."""

INPUT_NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mobilenet_v2_fpn": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
"""``(image_mean, image_std)`` of the detector's transform where a backbone's differ from
torchvision's ImageNet ones: the SSDLite weights expect ``x * 2 - 1`` for ``x`` in [0, 1],
which is ``(x - 0.5) / 0.5``."""


def build_detector(
    config: DetectorConfig | None = None, trainable_norm: bool = False
) -> FasterRCNN:
    """An untrained two-class Faster R-CNN (see the module doc); in eval mode."""
    config = config if config is not None else DetectorConfig()
    norm = nn.BatchNorm2d if trainable_norm else FrozenBatchNorm2d
    backbone, anchors = BACKBONE_BUILDERS[config.backbone](norm)
    head = TwoMLPHead(backbone.out_channels * 7 * 7, config.representation)
    mean, std = INPUT_NORMALISATION.get(config.backbone, (None, None))
    model = FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        box_head=head,
        box_predictor=FastRCNNPredictor(config.representation, NUM_CLASSES),
        min_size=config.min_size,
        max_size=config.max_size,
        box_score_thresh=config.box_score_thresh,
        box_nms_thresh=config.box_nms_thresh,
        box_detections_per_img=config.box_detections_per_img,
        image_mean=mean,
        image_std=std,
    )
    return model.eval()


def infer_config(state: dict[str, torch.Tensor], where: str | Path) -> DetectorConfig:
    """The backbone and box-head width of a Faster R-CNN state dict (torchvision's or
    Tracktor's layout); the image sizes are torchvision's (and Tracktor's) defaults.

    Raises:
        DeepMOTError: not a Faster R-CNN state dict, or not a two-class one.
    """
    if "backbone.body.layer1.0.conv3.weight" in state:
        backbone = "resnet50_fpn"
    elif "backbone.body.layer1.0.conv1.weight" in state:
        backbone = "resnet18_fpn"
    elif "backbone.body.18.0.weight" in state:  # MobileNetV3-Large has 17 feature modules
        backbone = "mobilenet_v2_fpn"
    elif "backbone.body.0.0.weight" in state:
        backbone = "mobilenet_v3_fpn"
    else:
        raise DeepMOTError(
            f"{where}: not a Faster R-CNN state dict (no backbone.body.* keys of "
            f"{', '.join(BACKBONES)}); first keys: {', '.join(list(state)[:4])}"
        )
    head = state.get("roi_heads.box_head.fc6.weight")
    classes = state.get("roi_heads.box_predictor.cls_score.weight")
    if head is None or classes is None:
        raise DeepMOTError(f"{where}: no box head (roi_heads.box_head.fc6 / box_predictor)")
    if classes.shape[0] != NUM_CLASSES:
        raise DeepMOTError(
            f"{where}: a detector of {classes.shape[0]} classes; a person detector has "
            f"{NUM_CLASSES} (background, person)"
        )
    return DetectorConfig(backbone=backbone, representation=int(head.shape[0]))


def _names(keys: list[str], most: int = 6) -> str:
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def load_detector_state(
    model: nn.Module, state: dict[str, torch.Tensor], where: str | Path
) -> nn.Module:
    """``model.load_state_dict(state)``; a DeepMOTError naming the missing and unexpected
    keys (or the shapes that differ) if the state does not fit. Returns ``model``."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shapes that differ
        detail = " ".join(str(error).split())
        raise DeepMOTError(f"{where}: weights do not fit the detector ({detail})") from None
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise DeepMOTError(
            f"{where}: weights do not fit the detector: missing keys: "
            f"{_names(missing) or 'none'}; unexpected keys: "
            f"{_names(result.unexpected_keys) or 'none'}"
        )
    return model


def _torch_state(path: Path, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    """A state dict from a PyTorch file (bare, or under ``model`` / ``state_dict``)."""
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and torch errors alike
        raise DeepMOTError(
            f"{path}: not a PyTorch state dict (torch.load: {type(error).__name__}: {error})"
        ) from None
    for key in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise DeepMOTError(f"{path}: not a state dict (a mapping of names to tensors)")
    return data


def load_detector(
    path: str | Path,
    config: DetectorConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[FasterRCNN, DetectorConfig]:
    """Read a detector (see the module doc); returns it in eval mode, with its config.

    Args:
        path: a ``.safetensors`` file written by :func:`save_detector`, or a PyTorch file
            holding a Faster R-CNN state dict (torchvision's or Tracktor's layout).
        config: for a PyTorch file, the architecture and image sizes (default: read from the
            keys, with torchvision's image sizes); ignored for our files, which hold theirs.

    Raises:
        DeepMOTError: no such file, an unreadable one, or weights that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise DeepMOTError(f"{path}: no such detector weights file")
    if path.suffix == ".safetensors":
        stored, state = read_weights(path, "detector", map_location)
        if stored.get("kind") != "detector" or "detector" not in stored:
            raise DeepMOTError(
                f"{path}: not detector weights (its config is of kind {stored.get('kind')!r})"
            )
        config = DetectorConfig.from_dict(stored["detector"])
    else:
        state = _torch_state(path, map_location)
        config = config if config is not None else infer_config(state, path)
    model = build_detector(config).to(map_location)
    return load_detector_state(model, state, path).eval(), config


def init_detector(model: nn.Module, config: DetectorConfig, path: str | Path) -> None:
    """Start ``model`` (built from ``config``) from a detector file's weights, all of them:
    fine-tuning a trained detector, e.g. at other image sizes (``config``'s, not the file's).

    Raises:
        DeepMOTError: the file is unreadable, holds another backbone, or does not fit.
    """
    trained, stored = load_detector(path)
    if stored.backbone != config.backbone:
        raise DeepMOTError(f"{path}: a {stored.backbone} detector; this one is {config.backbone}")
    load_detector_state(model, trained.state_dict(), path)


def save_detector(
    model: nn.Module,
    config: DetectorConfig,
    path: str | Path,
    card: dict[str, Any] | None = None,
    half: bool = False,
) -> None:
    """Write the detector to ``path`` (safetensors, config in its metadata, BatchNorm's batch
    counters dropped) and a JSON card beside it, atomically; ``half`` stores float16."""
    stored = {"kind": "detector", "detector": config.to_dict()}
    save_weights(WithoutBatchCounters(model), stored, path, card, half=half)


class WithoutBatchCounters(nn.Module):
    """A view of a module whose state dict leaves out ``num_batches_tracked`` (absent from
    the frozen-BatchNorm layout every detector file uses)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        state = self.inner.state_dict()
        return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
