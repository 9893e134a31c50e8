"""Settings of the person detector (torch-free, so the CLI can take its defaults here).

The detector is torchvision's Faster R-CNN with a feature pyramid and two classes (background,
person), as Tracktor's (Bergmann et al., ICCV 2019; ``tracktor/frcnn_fpn.py``: ``FRCNN_FPN``
subclasses torchvision's ``FasterRCNN`` with ``num_classes=2``). ResNet-50-FPN is the paper's
backbone; the light backbones are there so that training and tracking fit a CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["BACKBONES", "MIN_DETECTION_SCORE", "NORMS", "DetectorConfig", "DetectorTrainConfig"]

BACKBONES = ("resnet50_fpn", "resnet18_fpn", "mobilenet_v3_fpn", "mobilenet_v2_fpn")
"""Backbones of :func:`deepmot.detection.model.build_detector` (the registry's names)."""

MIN_DETECTION_SCORE = 0.5
"""Least score of a detection the detector hands a tracker when it makes a video's detections
(:func:`deepmot.detection.detect.detect_sequence`): Tracktor's ``detection_person_thresh: 0.5``
(``cfgs/tracktor.yaml``), the score its own births need."""

NORMS = ("batch", "frozen")
"""Normalisation of a detector in training (:attr:`DetectorTrainConfig.norm`)."""


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture and pre-processing of the detector.

    Attributes:
        backbone: one of :data:`BACKBONES`. ``resnet50_fpn`` is Tracktor's (and the paper's)
            Faster R-CNN; ``resnet18_fpn`` and ``mobilenet_v3_fpn`` are light ones for a CPU;
            ``mobilenet_v2_fpn`` is the backbone of a TensorFlow SSDLite person detector, whose
            pretrained weights it can start from (:mod:`deepmot.detection.mobilenet_v2`).
        representation: width of the box head's two fully connected layers (torchvision's
            ``TwoMLPHead``: 1024, as Tracktor). The light preset uses 256, which cuts the head
            from 13.9M to 3.3M parameters.
        min_size, max_size: the shorter image side is resized to ``min_size`` unless the
            longer one would exceed ``max_size`` (torchvision's defaults 800 / 1333, which
            Tracktor keeps; a small ``min_size`` is what makes a CPU fast enough).
        box_score_thresh: detections scored below this are dropped by the detector's own
            post-processing (torchvision's 0.05; Tracktor filters at 0.5 later).
        box_nms_thresh: NMS of the detector's own detections (torchvision's 0.5).
        box_detections_per_img: most detections per image (torchvision's 100).
    """

    backbone: str = "resnet50_fpn"
    representation: int = 1024
    min_size: int = 800
    max_size: int = 1333
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"unknown backbone {self.backbone!r}; valid names: {', '.join(BACKBONES)}"
            )
        for name in ("representation", "min_size", "max_size", "box_detections_per_img"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) must be >= min_size ({self.min_size})")
        for name in ("box_score_thresh", "box_nms_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @classmethod
    def light(cls, **overrides: Any) -> DetectorConfig:
        """The CPU preset: MobileNetV3-FPN, a 256-wide box head, images resized to 320 px
        (the shorter side; torchvision's ``fasterrcnn_mobilenet_v3_large_320_fpn`` uses 320)."""
        base = {
            "backbone": "mobilenet_v3_fpn",
            "representation": 256,
            "min_size": 320,
            "max_size": 640,
        }
        return cls(**{**base, **overrides})

    @classmethod
    def ssdlite(cls, **overrides: Any) -> DetectorConfig:
        """MobileNetV2-FPN (pretrained as an SSDLite person detector), a 256-wide box head,
        images resized to 432 px (the shorter side; 768 px at most, so 1920x1080 frames become
        768x432): PETS09-S2L1's people stay about 58 px high. The shipped ``detector_real``."""
        base = {
            "backbone": "mobilenet_v2_fpn",
            "representation": 256,
            "min_size": 432,
            "max_size": 768,
        }
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown DetectorConfig keys {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class DetectorTrainConfig:
    """Settings of a detector training run (``deepmot detector train``).

    Attributes:
        detector: the architecture (:class:`DetectorConfig`).
        iterations: optimisation steps.
        batch_size: images per step.
        lr: learning rate of AdamW (not Tracktor's SGD 0.01 schedule of 30 epochs from
            ImageNet weights: from scratch and in minutes, Adam-type steps move faster).
        weight_decay: AdamW's decoupled weight decay (torchvision's detection reference: 1e-4).
        min_visibility: ground-truth boxes less visible than this are not targets (and are
            "crowd" regions in the evaluation, so detecting them is no false positive).
        flip: flip half the training images horizontally.
        checkpoint_every: steps between checkpoints.
        seed: seeds the initialisation and every step's images.
        norm: ``"batch"``: BatchNorm trains with batch statistics (what training from
            scratch needs); ``"frozen"``: torchvision's ``FrozenBatchNorm2d``, the statistics
            and scales stay as initialised (torchvision's detection fine-tuning default; with
            no normalisation to share, several processes train exactly as one, see
            :mod:`deepmot.detection.train`).
        device: where the detector trains (``cpu``, ``cuda``, ``cuda:N``).
        init_backbone: a converted backbone file (``scripts/convert_ssdlite_backbone.py``)
            loaded into ``mobilenet_v2_fpn``'s backbone before the first step, or None (an
            untrained start).
        init_detector: a detector weights file (e.g. a shipped ``detector_real.safetensors``)
            whose weights, all of them, start the training: fine-tuning a trained detector,
            e.g. at another image size. Its backbone must be ``detector.backbone``.
        frozen_layers: the first N modules of the backbone's body are not trained (with
            pretrained weights the early, generic layers are kept, as torchvision's
            ``trainable_backbone_layers`` does; MobileNetV2's body has 19).
        synthetic_share: None: each step draws every sequence equally often (then a frame of
            it); a share: synthetic scenes give that share of the frames (equally between
            them) and real sequences the rest, every real frame equally likely.
    """

    detector: DetectorConfig = DetectorConfig()
    iterations: int = 1000
    batch_size: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    min_visibility: float = 0.25
    flip: bool = True
    checkpoint_every: int = 50
    seed: int = 0
    norm: str = "batch"
    device: str = "cpu"
    init_backbone: str | None = None
    init_detector: str | None = None
    frozen_layers: int = 0
    synthetic_share: float | None = None

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        for name in ("iterations", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.min_visibility <= 1.0:
            raise ValueError(f"min_visibility must be in [0, 1], got {self.min_visibility}")
        if self.frozen_layers < 0:
            raise ValueError(f"frozen_layers must be >= 0, got {self.frozen_layers}")
        if self.synthetic_share is not None and not 0.0 <= self.synthetic_share <= 1.0:
            raise ValueError(f"synthetic_share must be in [0, 1], got {self.synthetic_share}")
        if self.init_backbone is not None and self.detector.backbone != "mobilenet_v2_fpn":
            raise ValueError(
                "init_backbone holds MobileNetV2 weights: it needs backbone mobilenet_v2_fpn, "
                f"not {self.detector.backbone}"
            )

        if self.init_backbone is not None and self.init_detector is not None:
            raise ValueError("init_backbone and init_detector exclude each other")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorTrainConfig:
        values = dict(values)
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown DetectorTrainConfig keys {sorted(unknown)}")
        values["detector"] = DetectorConfig.from_dict(values.get("detector", {}))
        return cls(**values)
