"""Tracktor (Bergmann et al., "Tracking without bells and whistles", ICCV 2019), the paper's
headline tracker, as a trainable predictor.

Per frame, the backbone's features are computed once (:meth:`TracktorModel.features`); each
active track's previous box — moved by the camera motion (OpenCV ECC) and, optionally, a
constant-velocity step — is regressed to the current frame through the detector's RoI heads,
``box_roi_pool → box_head → box_predictor → box_coder.decode`` (:meth:`TracktorModel.regress`),
and scored by its classification head; the track management hides tracks scored below the
regression threshold (``min_track_score``), suppresses overlapping tracks, and gives births to
the detections left. Those are the public detections re-scored and refined by the same head,
or the detector's own (``private``), through the predictor's ``prepare_detections`` hook.

The ReID head (a fully connected layer from the box head's representation to a 128-d
embedding; 131K parameters on the 1024-wide head of ResNet-50-FPN, as in the paper's
supplementary) gives each regressed box an embedding; a track keeps its last
``max_features`` ones and ``appearance_similarity`` (cosine, clamped to [0, 1]) lets the
management revive invisible tracks with their old id. ``reid`` picks where embeddings come
from: the head (``"head"``), an external network (``"external:PATH"``, the paper's +ReIDext,
:mod:`deepmot.trackers.reid`) or nowhere (``"none"``: revival by IoU alone). DeepMOT trains the
head through the appearance term of D (:func:`~deepmot.train.rollout.run_clips`, with the
trainer's ``appearance``), using :meth:`TracktorPredictor.embed` and
:meth:`TracktorPredictor.track_embeddings`.

DeepMOT trains the box regression layer (``box_predictor.bbox_pred``) and the ReID head; the
backbone and the rest of the detector are frozen (``requires_grad`` off, BatchNorm frozen as
torchvision's ``FrozenBatchNorm2d``), so nothing on the trained path is detached.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.transform import resize_boxes

from deepmot import WEIGHTS_DIR
from deepmot.data.frames import image_to_tensor
from deepmot.detection.config import DetectorConfig
from deepmot.detection.inference import RUNTIMES, InferenceBackbone
from deepmot.detection.model import (
    WithoutBatchCounters,
    build_detector,
    load_detector,
    load_detector_state,
)
from deepmot.errors import DeepMOTError
from deepmot.io.weights import read_weights, save_weights
from deepmot.trackers.camera_motion import ecc_warp, warp_boxes
from deepmot.trackers.frame_cache import FrameCache
from deepmot.trackers.management import TrackManagementConfig
from deepmot.trackers.motion import ConstantVelocityConfig, ConstantVelocityModel
from deepmot.trackers.predictor import Frame, Prediction, Predictor, TrackBatch, module_device
from deepmot.trackers.registry import Trainable, register_trainable

__all__ = [
    "FAST_DETECTOR",
    "LIGHT_DETECTOR",
    "REAL_DETECTOR",
    "SHIPPED_DETECTOR",
    "TracktorConfig",
    "TracktorModel",
    "TracktorPredictor",
    "build_tracktor",
    "load_tracktor",
    "save_tracktor",
]

log = logging.getLogger(__name__)

LIGHT_DETECTOR = WEIGHTS_DIR / "detector_light.safetensors"
"""The light MobileNetV3-FPN detector trained from scratch on synthetic scenes (see its card);
the synthetic-scene Tracktor tables use it (``detector="light"``)."""

REAL_DETECTOR = WEIGHTS_DIR / "detector_real.safetensors"
"""The MobileNetV2-FPN detector fine-tuned on real frames from the pretrained weights of an
SSDLite person detector (see its card and docs/detector.md)."""

FAST_DETECTOR = WEIGHTS_DIR / "detector_real_fast.safetensors"
""":data:`REAL_DETECTOR` fine-tuned at 352 px instead of 432 (see its card): its backbone costs
about two thirds as much, which lets Tracktor track 768x576 video at 10 frames/s on a 2-core
CPU (``docs/tracktor.md``)."""

SHIPPED_DETECTOR = FAST_DETECTOR
"""Tracktor's default detector (``detector="shipped"``)."""


REID_INIT_SEED = 0
"""Seed of the ReID head's initialisation: Tracktor without trained ReID weights (the shipped
detector alone) revives tracks with the same embeddings in every run."""


@dataclass(frozen=True)
class TracktorConfig:
    """Settings of the Tracktor predictor; defaults from Tracktor's ``cfgs/tracktor.yaml``.

    The regression threshold (``regression_person_thresh: 0.5``) and the NMS thresholds
    (``detection_nms_thresh: 0.3``, ``regression_nms_thresh: 0.6``) are the track
    management's ``min_track_score``, ``detection_nms`` and ``track_nms`` (see
    :data:`TRACKTOR_MANAGEMENT`).

    Attributes:
        detector: ``"shipped"`` (:data:`SHIPPED_DETECTOR`, the real-frame detector at 352 px
            in the package), ``"real"`` (:data:`REAL_DETECTOR`, the same at 432 px: slower,
            more accurate), ``"light"`` (:data:`LIGHT_DETECTOR`, trained on synthetic scenes),
            ``"untrained"`` (a random ``backbone``, for tests), or a path to detector weights
            (ours, or a torchvision / Tracktor Faster R-CNN state dict).
        backbone: the backbone of an ``"untrained"`` detector (light preset).
        private: births from the detector's own detections instead of the public ones
            (Tracktor's ``public_detections: True`` is the default).
        detection_thresh: least person score of a (re-scored) detection to give a birth
            (``detection_person_thresh: 0.5``).
        camera_motion: align tracks with the previous frame by ECC (``do_align: True``).
        ecc_iterations, ecc_eps: ECC's stopping rule (``number_of_iterations: 100``,
            ``termination_eps: 0.00001``).
        ecc_scale: ECC runs on the frames shrunk by this factor, the warp brought back to
            full size (see :mod:`deepmot.trackers.camera_motion`). Tracktor: full size, 1.0;
            0.25 is 14x faster on PETS09-S2L1's 768x576 frames, its warps within 0.43 px
            (median) of full size's, and tracked its tuning frames as well
            (``benchmarks/bench_ecc.py``, ``docs/tracktor.md``).
        motion_model: a constant-velocity step before regressing (Tracktor's
            ``motion_model.enabled``, off as published). On by default: on the training halves of
            PETS09-S2L1 and TUD-Campus with ``detector_real`` it raised MOTA 85.5 -> 87.2 and IDF1
            59.4 -> 68.0 (``docs/tracktor.md``).
        velocity_steps: its steps (``motion_model.n_steps: 1``; centre only, as
            ``center_only: True``).
        reid_dim: size of the ReID head's embedding (the paper's supplementary: 128).
        max_features: embeddings kept per track for re-identification
            (``max_features_num: 10``).
        feature_cache: frames whose backbone features are kept (a training speed-up when
            frames repeat; 0 keeps only the current frame's).
        reid: the embeddings revival compares: ``"none"`` (revival by IoU alone: Tracktor
            with ``do_reid: False``, the paper's Tracktor rows), ``"head"`` (the ReID head, the
            paper's +ReIDhead: what DeepMOT training fits) or ``"external:PATH"`` (a network
            :func:`deepmot.trackers.reid.save_reid` wrote, the paper's +ReIDext). ``"none"`` by
            default: the shipped detector comes without a trained head, and the untrained one
            (random projections of the box features) never revived better than IoU alone on
            PETS09-S2L1's and TUD-Campus's training halves (IDF1 68.55 both with the shipped
            detector, 59.7 against 64.2 with one at 288 px; ``docs/tracktor.md``).
        backbone_runtime: what the frozen backbone tracks with (training uses the module
            itself): ``"auto"`` (OpenVINO where the ``openvino`` extra is installed and the
            model is on the CPU, else torch), ``"torch"`` or ``"openvino"``; the features are
            the same up to float rounding (:mod:`deepmot.detection.inference`).
    """

    detector: str = "shipped"
    backbone: str = "mobilenet_v3_fpn"
    private: bool = False
    detection_thresh: float = 0.5
    camera_motion: bool = True
    ecc_iterations: int = 100
    ecc_eps: float = 1e-5
    ecc_scale: float = 0.25
    motion_model: bool = True
    velocity_steps: int = 1
    reid_dim: int = 128
    max_features: int = 10
    feature_cache: int = 0
    reid: str = "none"
    backbone_runtime: str = "auto"

    def __post_init__(self) -> None:
        kind, colon, path = self.reid.partition(":")
        if (
            kind not in ("head", "external", "none")
            or bool(colon) != (kind == "external")
            or (colon and not path)
        ):
            raise ValueError(f"reid must be 'head', 'none' or 'external:PATH', got {self.reid!r}")
        if not 0.0 <= self.detection_thresh <= 1.0:
            raise ValueError(f"detection_thresh must be in [0, 1], got {self.detection_thresh}")
        for name in ("ecc_iterations", "velocity_steps", "reid_dim", "max_features"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.feature_cache < 0:
            raise ValueError(f"feature_cache must be >= 0, got {self.feature_cache}")
        if not self.ecc_eps > 0:
            raise ValueError(f"ecc_eps must be > 0, got {self.ecc_eps}")
        if not 0.0 < self.ecc_scale <= 1.0:
            raise ValueError(f"ecc_scale must be in (0, 1], got {self.ecc_scale}")
        if self.backbone_runtime not in RUNTIMES:
            raise ValueError(
                f"backbone_runtime must be one of {', '.join(RUNTIMES)}, "
                f"got {self.backbone_runtime!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TracktorConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TracktorConfig keys {sorted(unknown)}")
        return cls(**values)


TRACKTOR_PAPER_MANAGEMENT = TrackManagementConfig.tracktor(
    min_track_score=0.5,  # regression_person_thresh
    require_verification=False,  # a track lives on its regression score
    predict_invisible=True,  # inactive tracks move with the camera (and the motion model)
    revive_iou=0.2,  # reid_iou_threshold
)
"""Tracktor's management as published: births at once, no refinement, ``inactive_patience:
10``, the NMS thresholds 0.3 / 0.6, the regression threshold 0.5, tracks kept without
detections. The synthetic-scene tables (``deepmot reproduce tracktor``, the loss ablation, the
demo) keep it."""

TRACKTOR_MANAGEMENT = replace(TRACKTOR_PAPER_MANAGEMENT, min_track_score=0.9, revive_iou=0.1)
"""The default of ``create_tracker("tracktor")`` and ``deepmot track``: the published
management with two settings chosen with the shipped detector on the training halves of
PETS09-S2L1 and TUD-Campus (``docs/tracktor.md``): the regression threshold at 0.9 instead of
0.5, and revival at IoU 0.1 instead of 0.2. Births at once, verification off and the
patience stay as published, which measured as well or better there."""


class TracktorModel(nn.Module):
    """The detector and the ReID head; only ``bbox_pred`` and the ReID head train.

    Args:
        config: :class:`TracktorConfig`.
        detector: a two-class torchvision ``FasterRCNN`` (frozen BatchNorm).
        detector_config: its :class:`~deepmot.detection.config.DetectorConfig`.
    """

    def __init__(
        self, config: TracktorConfig, detector: nn.Module, detector_config: DetectorConfig
    ) -> None:
        super().__init__()
        self.config = config
        self.detector_config = detector_config
        self.detector = detector
        with torch.random.fork_rng(devices=[]):  # an untrained head is the same in every build
            torch.manual_seed(REID_INIT_SEED)
            self.reid = nn.Linear(detector_config.representation, config.reid_dim)
        for name, parameter in self.detector.named_parameters():
            parameter.requires_grad_(name.startswith("roi_heads.box_predictor.bbox_pred."))
        self.detector.eval()
        self.inference_backbone = InferenceBackbone(self.detector.backbone, config.backbone_runtime)

    def train(self, mode: bool = True) -> TracktorModel:
        """Only the ReID head changes mode; the detector stays in eval mode (frozen)."""
        super().train(mode)
        self.detector.eval()
        return self

    @torch.no_grad()
    def features(self, image: Tensor) -> tuple[dict[str, Tensor], tuple[int, int]]:
        """The frozen backbone's feature maps of ``image (3, H, W)`` in [0, 1], and the
        resized image's ``(h, w)`` (the detector's transform normalises and resizes).

        In eval mode (tracking) the backbone runs as its inference copy (BatchNorm folded,
        channels-last, compiled by OpenVINO where installed: :mod:`deepmot.detection.inference`),
        equal up to float rounding and faster; in training mode as itself, so that a seeded
        training run repeats exactly."""
        images, _ = self.detector.transform([image])
        backbone = self.detector.backbone if self.training else self.inference_backbone
        return backbone(images.tensors), images.image_sizes[0]

    def regress(
        self,
        features: dict[str, Tensor],
        resized: tuple[int, int],
        original: tuple[int, int],
        boxes: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Regress ``boxes (T, 4)`` xyxy (original image ``(h, w)``) through the RoI heads.

        Returns the person-class boxes ``(T, 4)`` (original coordinates, clipped to the
        image), their person scores ``(T,)`` and their ReID embeddings ``(T, reid_dim)``;
        differentiable with respect to ``bbox_pred``, the ReID head and ``boxes``.
        """
        heads = self.detector.roi_heads
        proposals = resize_boxes(boxes, original, resized)
        pooled = heads.box_roi_pool(features, [proposals], [resized])
        representation = heads.box_head(pooled)
        logits, deltas = heads.box_predictor(representation)
        decoded = heads.box_coder.decode(deltas, [proposals])[:, 1]  # (T, 4): class person
        out = resize_boxes(decoded, resized, original)
        height, width = original
        x = out[:, 0::2].clamp(0, width)
        y = out[:, 1::2].clamp(0, height)
        out = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)
        return out, F.softmax(logits, -1)[:, 1], self.reid(representation)

    def forward(
        self,
        features: dict[str, Tensor],
        resized: tuple[int, int],
        original: tuple[int, int],
        boxes: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`regress`, the trained path: the call DistributedDataParallel wraps."""
        return self.regress(features, resized, original, boxes)

    @torch.no_grad()
    def detect(self, features: dict[str, Tensor], resized: tuple[int, int], image: Tensor):
        """The detector's own detections: ``(K, 5)`` xyxy + score in original coordinates."""
        from torchvision.models.detection.image_list import ImageList

        original = tuple(image.shape[-2:])
        images = ImageList(image[None], [resized])
        proposals, _ = self.detector.rpn(images, features)
        found, _ = self.detector.roi_heads(features, proposals, [resized])
        boxes = resize_boxes(found[0]["boxes"], resized, original)
        return torch.cat([boxes, found[0]["scores"][:, None]], dim=1)


class TracktorPredictor(Predictor):
    """:class:`TracktorModel` behind the predictor contract (see the module doc). The trained
    path (``predict``) calls the model (its ``forward``, so that DDP sees it); the paths
    without gradients call :attr:`inner`'s methods.

    It keeps per-sequence memos only: the last frames' backbone features (keyed by the frame
    object, held so that its id stays its own) and the previous frame for ECC; both are
    correct whatever the call order, as they depend on the frame alone. With
    :meth:`use_frame_cache`, what depends on the frames alone is also shared with other
    predictors of the same model through a :class:`~deepmot.trackers.frame_cache.FrameCache`.
    """

    needs_images = True
    has_detector = True

    def __init__(self, model: nn.Module) -> None:
        self.model = model  # the TracktorModel, or it in DDP (training on several processes)
        self.inner = _inner(model)
        self.config: TracktorConfig = self.inner.config
        self._features: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._previous: Frame = None
        self._align: tuple[Frame, Frame] | None = None
        self._warp: tuple[Frame, np.ndarray] | None = None
        self._external: nn.Module | None = None
        self._shared: FrameCache | None = None

    def use_own_detector(self, min_score: float | None = None) -> None:
        """Births from the detector's own detections (``private``), scored at least
        ``min_score`` (None: ``detection_thresh``)."""
        threshold = self.config.detection_thresh if min_score is None else min_score
        self.config = replace(self.config, private=True, detection_thresh=threshold)

    def use_frame_cache(self, cache: FrameCache) -> None:
        """Read and keep in ``cache`` what depends on the frames alone: the backbone
        features, the ECC warps and the birth material (re-scored detections). Predictors of
        the same model may share one cache (the trials of ``deepmot tune``)."""
        cache.claim(self.model)
        self._shared = cache

    @property
    def history_len(self) -> int:
        return self.config.velocity_steps + 1 if self.config.motion_model else 1

    # ------------------------------------------------------------------ per frame

    def frame_features(self, frame: Frame) -> tuple[dict[str, Tensor], tuple[int, int], Tensor]:
        """The frame as a tensor and its backbone features (computed once per frame)."""
        key = id(frame)
        hit = self._features.get(key)
        if hit is not None and hit[0] is frame:
            self._features.move_to_end(key)
            return hit[1]
        image = frame if isinstance(frame, Tensor) else image_to_tensor(np.asarray(frame))
        if image.ndim == 3 and image.shape[-1] == 3 and image.shape[0] != 3:
            image = image.permute(2, 0, 1).float() / 255.0  # an (H, W, 3) tensor
        image = image.to(module_device(self.model))
        if self._shared is None:
            features, resized = self.inner.features(image)
        else:
            digest = ("features", self._shared.digest(frame))
            features, resized = self._shared.lookup(digest, lambda: self.inner.features(image))
        self._features[key] = (frame, (features, resized, image))
        while len(self._features) > max(1, self.config.feature_cache):
            self._features.popitem(last=False)
        return features, resized, image

    def _camera_warp(self, frame: Frame) -> np.ndarray | None:
        """The ECC warp from the previous frame to ``frame`` (tracking only: the previous
        frame is the one ``prepare_detections`` saw before)."""
        if not self.config.camera_motion or self._align is None or self._align[1] is not frame:
            return None
        if self._warp is None or self._warp[0] is not frame:
            previous = np.asarray(self._align[0])
            current = np.asarray(frame)
            if previous.shape != current.shape:
                return None
            settings = (self.config.ecc_iterations, self.config.ecc_eps, self.config.ecc_scale)
            if self._shared is None:
                warp = ecc_warp(previous, current, *settings)
            else:
                digests = (self._shared.digest(self._align[0]), self._shared.digest(frame))
                warp = self._shared.lookup(
                    ("ecc", *digests, *settings), lambda: ecc_warp(previous, current, *settings)
                )
            self._warp = (frame, warp)
        return self._warp[1]

    def prepare_detections(
        self, frame: Frame, dets: Tensor, image_size: tuple[int, int] | None
    ) -> Tensor:
        """Birth material of this frame: the public detections re-scored and refined by the
        box head, or the detector's own (``private``); those scored below
        ``detection_thresh`` are dropped. ``(K, 5|6)`` -> ``(K', 5)`` xyxy + score."""
        self._align = (self._previous, frame) if self._previous is not None else None
        self._previous = frame
        if self._shared is None:
            found = self._birth_material(frame, dets)
        else:
            # cached before the threshold, so trials with other thresholds share it
            key = ("detections", self.config.private, self._shared.digest(frame))
            key += (self._shared.digest(dets),)
            found = self._shared.lookup(key, lambda: self._birth_material(frame, dets)).clone()
        return found[found[:, 4] >= self.config.detection_thresh]

    def _birth_material(self, frame: Frame, dets: Tensor) -> Tensor:
        """:meth:`prepare_detections` without the cache and the threshold: every re-scored
        public detection, or every private one."""
        features, resized, image = self.frame_features(frame)
        original = tuple(image.shape[-2:])
        if self.config.private:
            found = self.inner.detect(features, resized, image).cpu()
        elif len(dets) == 0:
            return dets.new_zeros((0, 5))
        else:
            with torch.no_grad():
                boxes, scores, _ = self.inner.regress(
                    features, resized, original, dets[:, :4].float().to(image.device)
                )
            found = torch.cat([boxes, scores[:, None]], dim=1).cpu()
        return found

    def predict(
        self,
        frame: Frame,
        tracks: TrackBatch,
        detections: Tensor | None,
        image_size: tuple[int, int] | None,
    ) -> Prediction:
        """Regress the tracks' last boxes to ``frame``; invisible tracks (``verified``
        False) are only moved (camera, motion model), as Tracktor's inactive tracks.

        Returns boxes ``(T, 4)``, person scores ``(T,)`` (1 for moved-only tracks) and ReID
        embeddings ``(T, reid_dim)``; differentiable in the trained layers.
        """
        if frame is None:
            raise ValueError("Tracktor regresses boxes from the image: pass the frame")
        features, resized, image = self.frame_features(frame)
        original = tuple(image.shape[-2:])
        history = tracks.history.to(image.device)
        warp = self._camera_warp(frame)
        if warp is not None:
            history = warp_boxes(history, warp)
        if self.config.motion_model:
            model = ConstantVelocityModel(ConstantVelocityConfig(self.config.velocity_steps))
            boxes = model(history, tracks.mask.to(image.device))
        else:
            boxes = history[:, -1]
        if len(boxes) == 0:
            empty = boxes.new_zeros((0,))
            return Prediction(boxes, empty, boxes.new_zeros((0, self.config.reid_dim)))
        regressed, scores, embeddings = self.model(features, resized, original, boxes)
        moved = ~tracks.verified.to(image.device)
        if bool(moved.any()):
            regressed = torch.where(moved[:, None], boxes, regressed)
            scores = torch.where(moved, torch.ones_like(scores), scores)
        if self.config.reid == "head":
            # kept with their gradient: in a training clip, later frames compare against them
            self._store(tracks, embeddings, moved)
        elif self.external is not None:
            self._store(tracks, self._external_embed(image, regressed), moved)
        return Prediction(regressed, scores, embeddings)

    # ------------------------------------------------------------------ appearance

    @property
    def external(self) -> nn.Module | None:
        """The external ReID network of ``reid="external:PATH"`` (loaded on first use)."""
        kind, _, path = self.config.reid.partition(":")
        if kind != "external":
            return None
        if self._external is None:
            from deepmot.trackers.reid import load_reid

            self._external = load_reid(path, map_location=module_device(self.model))
        return self._external

    @torch.no_grad()
    def _external_embed(self, image: Tensor, boxes: Tensor) -> Tensor:
        """``(K, E)`` embeddings of the external network for ``boxes (K, 4)`` of ``image``."""
        from deepmot.trackers.reid import crop_boxes

        net = self.external
        return net(crop_boxes(image, boxes.detach(), net.config.crop_size))

    def _store(self, tracks: TrackBatch, embeddings: Tensor, skip: Tensor) -> None:
        """Append each track's embedding (``(T, E)``) to its last ``max_features``."""
        for extra, embedding, hidden in zip(tracks.extras, embeddings, skip.tolist(), strict=True):
            if not hidden:
                stored = extra.setdefault("reid", [])
                stored.append(embedding)
                del stored[: -self.config.max_features]

    def embed(self, frame: Frame, boxes: Tensor) -> Tensor:
        """``(K, E)`` embeddings of ``boxes (K, 4)`` xyxy in ``frame``: the ReID head on their
        RoI features (differentiable in the head), or the external network's."""
        features, resized, image = self.frame_features(frame)
        boxes = boxes[:, :4].float().to(image.device)
        if self.external is not None:
            return self._external_embed(image, boxes)
        _, _, found = self.inner.regress(features, resized, tuple(image.shape[-2:]), boxes)
        return found

    def track_embeddings(self, tracks: TrackBatch) -> Tensor:
        """``(T, E)``: the mean of each track's stored embeddings (Tracktor averages its last
        ``max_features``; the paper's supp. A.2 trains on that mean); zeros for a track
        without any (cosine distance 0.5 to everything)."""
        device = module_device(self.model)
        external = self.external
        width = external.config.embedding if external is not None else self.config.reid_dim
        means = [
            torch.stack(e["reid"]).mean(0) if e.get("reid") else torch.zeros(width, device=device)
            for e in tracks.extras
        ]
        return torch.stack(means) if means else torch.zeros((0, width), device=device)

    # ------------------------------------------------------------------ hooks

    def on_birth(self, frame: Frame, tracks: TrackBatch) -> None:
        """Store the first embedding of each new track (with its gradient when training)."""
        if self.config.reid == "none":
            return
        for extra, embedding in zip(tracks.extras, self.embed(frame, tracks.last), strict=True):
            extra["reid"] = [embedding]

    @property
    def has_reid_head(self) -> bool:  # type: ignore[override]
        """Its embeddings come from the trainable ReID head (``reid="head"``)."""
        return self.config.reid == "head"

    @torch.no_grad()
    def appearance_similarity(
        self, frame: Frame, tracks: TrackBatch, boxes: Tensor
    ) -> Tensor | None:
        """``(T, K)``: cosine similarity, clamped to [0, 1], between each track's mean stored
        embedding and the embedding of each box in ``frame`` (Tracktor compares the mean of
        its stored features too). None with ``reid="none"``: the management revives invisible
        tracks by IoU matching alone (an all-ones similarity would leave its assignment
        arbitrary)."""
        if self.config.reid == "none":
            return None
        found = self.embed(frame, boxes)
        means = self.track_embeddings(tracks)
        similarity = F.normalize(means, dim=1) @ F.normalize(found, dim=1).T
        return similarity.clamp(0, 1).cpu()


def _inner(model: nn.Module) -> TracktorModel:
    """The :class:`TracktorModel` of ``model`` (itself, or the one DDP wraps), checked."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, TracktorModel):
        raise ValueError(f"Tracktor needs a TracktorModel, got {type(inner).__name__}")
    return inner


# --------------------------------------------------------------------------- build, save, load


def _detector_for(config: TracktorConfig) -> tuple[nn.Module, DetectorConfig]:
    if config.detector == "untrained":
        detector_config = DetectorConfig.light(backbone=config.backbone)
        return build_detector(detector_config), detector_config
    named = {"shipped": SHIPPED_DETECTOR, "real": REAL_DETECTOR, "light": LIGHT_DETECTOR}
    path = named.get(config.detector, Path(config.detector))
    if config.detector in named and not path.is_file():
        raise DeepMOTError(
            f"no shipped detector ({path}); train one with 'deepmot detector train' and give "
            "its detector.safetensors as the Tracktor config's detector"
        )
    return load_detector(path)


def build_tracktor(config: TracktorConfig | None = None) -> TracktorModel:
    """A Tracktor with the detector ``config.detector`` names and an untrained ReID head."""
    config = config if config is not None else TracktorConfig()
    detector, detector_config = _detector_for(config)
    return TracktorModel(config, detector, detector_config)


def save_tracktor(
    model: TracktorModel, path: str | Path, card: dict[str, Any] | None = None
) -> None:
    """Write detector and ReID head (safetensors, both configs in its metadata) and a card."""
    stored = {
        "kind": "tracktor",
        "tracktor": model.config.to_dict(),
        "detector": model.detector_config.to_dict(),
    }
    save_weights(WithoutBatchCounters(model), stored, path, card)


def load_tracktor(path: str | Path, map_location: str | torch.device = "cpu") -> TracktorModel:
    """Read Tracktor weights: a file :func:`save_tracktor` wrote, or a detector alone (ours,
    torchvision's or Tracktor's layout: then the ReID head is untrained). Eval mode."""
    path = Path(path)
    if path.suffix == ".safetensors":
        stored, state = read_weights(path, "Tracktor", map_location)
        if stored.get("kind") == "tracktor":
            config = TracktorConfig.from_dict(stored["tracktor"])
            detector_config = DetectorConfig.from_dict(stored["detector"])
            model = TracktorModel(config, build_detector(detector_config), detector_config)
            return load_detector_state(model, state, path).to(map_location).eval()
    detector, detector_config = load_detector(path, map_location=map_location)
    config = TracktorConfig(detector=str(path))
    return TracktorModel(config, detector, detector_config).to(map_location).eval()


TRACKTOR = register_trainable(
    Trainable(
        name="tracktor",
        config=TracktorConfig,
        build=build_tracktor,
        predictor=TracktorPredictor,
        save=save_tracktor,
        load=load_tracktor,
        weights_file="tracktor.safetensors",
        management=TRACKTOR_MANAGEMENT,
        needs_images=True,
    )
)
"""Tracktor: ``create_tracker("tracktor", weights=...)``, ``deepmot train --tracker tracktor``."""
