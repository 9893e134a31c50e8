"""SiamRPN (Li et al., CVPR 2018) as a MOT-by-SOT predictor (paper Sec. 5, Tables 3-4).

A shared Siamese backbone encodes the template (cut once, at the track's birth, from a square
region with SiamFC's context) and the search region around the track's box at t − 1. A region
proposal head correlates them (depth-wise cross-correlation, as SiamRPN++ does, per branch)
into, for each of ``k`` anchors at each position of the score map, a target/background score
and a box regression. Decoding (SiamRPN Sec. 4.3, DaSiamRPN's released settings) penalises
changes of scale and aspect ratio, mixes in a cosine window, takes the best anchor, and
smooths the size with a rate that grows with its score. All tracks of a frame go through one
forward pass; the template of each track lives in its ``extras``.

The chosen anchor's regression is differentiable, so the DeepMOT loss and Smooth-L1 train
through it (the choice itself, an argmax, is not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepmot.boxes import box_iou
from deepmot.io.weights import load_state, read_weights, save_weights
from deepmot.trackers.crops import crop, siamese_regions
from deepmot.trackers.management import SOT_MANAGEMENT
from deepmot.trackers.predictor import (
    Frame,
    Prediction,
    Predictor,
    Proposals,
    TrackBatch,
    module_device,
)
from deepmot.trackers.registry import Trainable, register_trainable
from deepmot.trackers.sot import as_image, backbone, config_from_dict, config_to_dict

__all__ = [
    "SIAMRPN",
    "SiamRPNConfig",
    "SiamRPNModel",
    "SiamRPNPredictor",
    "decode_anchors",
    "generate_anchors",
    "load_siamrpn",
    "save_siamrpn",
]

TEMPLATE_KEY = "siamrpn_template"
"""The ``extras`` key of a track's template features ``(cls (C, h, w), reg (C, h, w))``."""


@dataclass(frozen=True)
class SiamRPNConfig:
    """SiamRPN's settings.

    Attributes:
        backbone: ``"light"`` (CPU-scale, valid convolutions, stride 8) or ``"alexnet"`` (the
            paper's modified AlexNet, stride 8).
        exemplar_size, search_size: crop sides (SiamRPN: 127 and 255; light: 64 and 128).
        context_amount: SiamFC's context ``p = context_amount * (w + h)`` (0.5).
        anchor_ratios: anchor height/width ratios (SiamRPN: 0.33, 0.5, 1, 2, 3).
        anchor_scales: anchor side over the stride (SiamRPN: 8 for 127-pixel exemplars; 4 for
            64-pixel ones keeps the anchors the size of a pedestrian there).
        penalty_k: scale/aspect change penalty (DaSiamRPN's released SiamRPN: 0.055).
        window_influence: weight of the cosine window (DaSiamRPN: 0.42).
        size_lr: size smoothing rate, times the chosen score and penalty (DaSiamRPN: 0.295).
        channels: width of the correlation features (light: 128; AlexNet: 256).
    """

    backbone: str = "light"
    exemplar_size: int = 64
    search_size: int = 128
    context_amount: float = 0.5
    anchor_ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    anchor_scales: tuple[float, ...] = (4.0,)
    penalty_k: float = 0.055
    window_influence: float = 0.42
    size_lr: float = 0.295
    channels: int = 128

    def __post_init__(self) -> None:
        if self.backbone not in ("light", "alexnet"):
            raise ValueError(f"backbone must be 'light' or 'alexnet', got {self.backbone!r}")
        if not 16 <= self.exemplar_size < self.search_size:
            raise ValueError("need 16 <= exemplar_size < search_size")
        if not self.anchor_ratios or not self.anchor_scales:
            raise ValueError("anchor_ratios and anchor_scales must not be empty")
        if not 0 <= self.window_influence <= 1 or not 0 <= self.size_lr <= 1:
            raise ValueError("window_influence and size_lr must be in [0, 1]")

    @classmethod
    def alexnet(cls) -> SiamRPNConfig:
        """The paper's sizes: modified AlexNet, 127/255 crops, anchors of scale 8."""
        return cls(
            backbone="alexnet", exemplar_size=127, search_size=255, anchor_scales=(8.0,),
            channels=256,
        )  # fmt: skip

    @property
    def anchors_per_position(self) -> int:
        return len(self.anchor_ratios) * len(self.anchor_scales)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SiamRPNConfig:
        return config_from_dict(cls, values)


STRIDE = 8
"""Both backbones' total stride (SiamRPN's modified AlexNet; the light one)."""


def generate_anchors(
    ratios: tuple[float, ...], scales: tuple[float, ...], stride: int, score_size: int
) -> Tensor:
    """Anchors ``(A, 4)`` as ``(cx, cy, w, h)`` in search-crop pixels relative to its centre,
    ``A = len(ratios) * len(scales) * score_size**2``, ordered (shape, row, column).

    A shape of ratio r (height/width) and scale s has area ``(stride * s)**2``: ``w =
    stride * s / sqrt(r)``, ``h = w * r``. Position (i, j) of the score map sits at
    ``((j - score_size // 2) * stride, (i - score_size // 2) * stride)``.
    """
    shapes = [
        (stride * s / math.sqrt(r), stride * s * math.sqrt(r)) for r in ratios for s in scales
    ]
    wh = torch.tensor(shapes, dtype=torch.float32)  # (k, 2)
    offsets = (torch.arange(score_size, dtype=torch.float32) - score_size // 2) * stride
    cy, cx = torch.meshgrid(offsets, offsets, indexing="ij")
    k, cells = len(shapes), score_size * score_size
    centres = torch.stack([cx.flatten(), cy.flatten()], dim=1)  # (cells, 2)
    return torch.cat(
        [centres[None].expand(k, cells, 2), wh[:, None].expand(k, cells, 2)], dim=2
    ).reshape(-1, 4)


def decode_anchors(deltas: Tensor, anchors: Tensor) -> Tensor:
    """Boxes ``(..., A, 4)`` ``(cx, cy, w, h)`` from regressions ``(..., A, 4)`` ``(dx, dy,
    dw, dh)``: ``cx = ax + dx * aw``, ``w = aw * exp(dw)`` (SiamRPN eq. 3 inverted)."""
    centre = anchors[..., :2] + deltas[..., :2] * anchors[..., 2:]
    size = anchors[..., 2:] * torch.exp(deltas[..., 2:].clamp(max=4.0))
    return torch.cat([centre, size], dim=-1)


def _alexnet_siamese() -> tuple[nn.Module, int]:
    """SiamRPN's modified AlexNet (valid convolutions, two max-pools, stride 8)."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=2),
        nn.MaxPool2d(3, stride=2),
        nn.ReLU(inplace=True),
        nn.Conv2d(96, 256, 5),
        nn.MaxPool2d(3, stride=2),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 384, 3),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3),
    ), 256


def depthwise_xcorr(search: Tensor, kernel: Tensor) -> Tensor:
    """Per-sample, per-channel cross-correlation: ``(N, C, H, W)`` with ``(N, C, h, w)`` ->
    ``(N, C, H - h + 1, W - w + 1)``, one grouped convolution for the whole batch."""
    n, c = search.shape[:2]
    out = F.conv2d(
        search.reshape(1, n * c, *search.shape[2:]),
        kernel.reshape(n * c, 1, *kernel.shape[2:]),
        groups=n * c,
    )
    return out.reshape(n, c, *out.shape[2:])


class _Branch(nn.Module):
    """One RPN branch: adjust template and search features, correlate, 1x1 head."""

    def __init__(self, channels: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.kernel = nn.Sequential(nn.Conv2d(channels, hidden, 3), nn.ReLU(inplace=True))
        self.search = nn.Sequential(nn.Conv2d(channels, hidden, 3), nn.ReLU(inplace=True))
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, outputs, 1)
        )
        # zero start: even scores (the cosine window picks the centre) and no regression, so
        # the untrained tracker keeps each box's centre where it was
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, search: Tensor, kernel: Tensor) -> Tensor:
        return self.head(depthwise_xcorr(self.search(search), kernel))


class SiamRPNModel(nn.Module):
    """Siamese backbone + RPN head.

    ``template(z (N, 3, e, e))`` -> the two branches' kernels; ``forward(x (N, 3, s, s),
    kernel_cls, kernel_reg)`` -> ``cls (N, 2, k, S, S)`` logits (background, target) and
    ``reg (N, 4, k, S, S)``. Crops are in [0, 1].
    """

    def __init__(self, config: SiamRPNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SiamRPNConfig()
        if config.backbone == "alexnet":
            self.features, channels = _alexnet_siamese()
        else:
            self.features, channels = backbone("light", padding=False)
        k = config.anchors_per_position
        self.cls = _Branch(channels, config.channels, 2 * k)
        self.reg = _Branch(channels, config.channels, 4 * k)
        with torch.no_grad():
            z = self.features(torch.zeros(1, 3, config.exemplar_size, config.exemplar_size))
            x = self.features(torch.zeros(1, 3, config.search_size, config.search_size))
        self.score_size = int(x.shape[-1] - z.shape[-1] + 1)
        anchors = generate_anchors(
            config.anchor_ratios, config.anchor_scales, STRIDE, self.score_size
        )
        self.register_buffer("anchors", anchors, persistent=False)
        window = torch.hann_window(self.score_size + 2, periodic=False)[1:-1]
        self.register_buffer(
            "window", torch.outer(window, window).flatten().repeat(k), persistent=False
        )

    def template(self, exemplar: Tensor) -> tuple[Tensor, Tensor]:
        z = self.features(exemplar - 0.5)
        return self.cls.kernel(z), self.reg.kernel(z)

    def forward(
        self, search: Tensor, kernel_cls: Tensor, kernel_reg: Tensor
    ) -> tuple[Tensor, Tensor]:
        x = self.features(search - 0.5)
        n, k, s = len(search), self.config.anchors_per_position, self.score_size
        cls = self.cls(x, kernel_cls).reshape(n, 2, k, s, s)
        reg = self.reg(x, kernel_reg).reshape(n, 4, k, s, s)
        return cls, reg


def _change(r: Tensor) -> Tensor:
    return torch.maximum(r, 1.0 / r)


def _padded_size(wh: Tensor) -> Tensor:
    pad = wh.sum(-1, keepdim=True) / 2
    return torch.sqrt((wh + pad).prod(-1))


class SiamRPNPredictor(Predictor):
    """:class:`SiamRPNModel` behind the predictor contract; per track, the template features
    (``extras``), cut at birth."""

    history_len = 1
    needs_images = True
    has_single_object_loss = True

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.inner: SiamRPNModel = getattr(model, "module", model)
        self.config: SiamRPNConfig = self.inner.config

    def on_birth(self, frame: Frame, tracks: TrackBatch) -> None:
        """Cut the new tracks' templates from ``frame`` at their boxes."""
        image = as_image(frame, module_device(self.model))
        self._cut_templates(image, tracks.last.detach().to(image), tracks.extras)

    def _cut_templates(self, image: Tensor, boxes: Tensor, extras: list[dict[str, Any]]) -> None:
        regions = siamese_regions(boxes, self.config.context_amount)
        kernels = self.inner.template(crop(image, regions, self.config.exemplar_size))
        for i, extra in enumerate(extras):
            extra[TEMPLATE_KEY] = (kernels[0][i], kernels[1][i])

    def heads(self, frame: Frame, tracks: TrackBatch) -> tuple[Tensor, ...]:
        """One forward pass for all tracks: ``score (T, A)`` every anchor's target
        probability, ``boxes (T, A, 4)`` its decoded ``(cx, cy, w, h)`` in search-crop pixels
        relative to the crop's centre, the search ``regions (T, 4)``, the logits ``(T, 2, k, S,
        S)`` and the regressions ``(T, A, 4)``. A track ``on_birth`` never saw gets its
        template from its box in this frame."""
        cfg = self.config
        current = as_image(frame, module_device(self.model))
        last = tracks.last.detach().to(current)
        missing = [i for i, e in enumerate(tracks.extras) if TEMPLATE_KEY not in e]
        if missing:
            self._cut_templates(current, last[missing], [tracks.extras[i] for i in missing])
        kernel_cls = torch.stack([e[TEMPLATE_KEY][0] for e in tracks.extras])
        kernel_reg = torch.stack([e[TEMPLATE_KEY][1] for e in tracks.extras])
        regions = siamese_regions(last, cfg.context_amount, cfg.search_size / cfg.exemplar_size)
        cls, reg = self.model(crop(current, regions, cfg.search_size), kernel_cls, kernel_reg)
        n = len(tracks)
        score = cls.softmax(dim=1)[:, 1].reshape(n, -1)
        deltas = reg.reshape(n, 4, -1).transpose(1, 2)
        return score, decode_anchors(deltas, self.inner.anchors), regions, cls, deltas

    def predict(
        self,
        frame: Frame,
        tracks: TrackBatch,
        detections: Tensor | None,
        image_size: tuple[int, int] | None,
    ) -> Prediction:
        """Boxes ``(T, 4)`` at t (differentiable through the chosen anchor's regression),
        the chosen anchors' target scores ``(T,)``, and every anchor's logits with the anchors
        in image pixels (``proposals``, for the focal term of the authors' training)."""
        if len(tracks) == 0:
            return Prediction(tracks.last.detach(), tracks.last.new_zeros(0))
        score, boxes, regions, cls, _ = self.heads(frame, tracks)
        prediction = self._choose(score, boxes, regions, tracks.last.detach().to(regions))
        logits = cls.reshape(len(tracks), 2, -1).transpose(1, 2)  # (T, A, 2), anchors' order
        prediction.proposals = Proposals(logits, self._anchors_in_image(regions))
        return prediction

    def _anchors_in_image(self, regions: Tensor) -> Tensor:
        """The anchors ``(T, A, 4)`` xyxy in image pixels of the search ``regions (T, 4)``."""
        to_crop = (self.config.search_size / (regions[:, 2:3] - regions[:, 0:1]))[:, None]
        anchors = self.inner.anchors[None]  # (1, A, 4) cx, cy, w, h relative to the centre
        centre = ((regions[:, :2] + regions[:, 2:]) / 2)[:, None] + anchors[..., :2] / to_crop
        half = anchors[..., 2:] / to_crop / 2
        return torch.cat([centre - half, centre + half], dim=2)

    def _choose(self, score: Tensor, boxes: Tensor, regions: Tensor, last: Tensor) -> Prediction:
        """The selected proposal of each track, in image pixels."""
        cfg = self.config
        n = len(score)
        to_crop = cfg.search_size / (regions[:, 2:3] - regions[:, 0:1])  # (T, 1)
        previous = (last[:, 2:] - last[:, :2]) * to_crop  # the previous box in crop pixels
        best, penalty = select_anchor(
            score.detach(), boxes.detach(), previous, self.inner.window, cfg
        )
        rows = torch.arange(n, device=score.device)
        chosen = boxes[rows, best]  # (T, 4) cx, cy, w, h, relative to the crop's centre
        rate = (penalty[rows, best] * score[rows, best] * cfg.size_lr).detach()[:, None]
        size = previous * (1 - rate) + chosen[:, 2:] * rate
        centre = (regions[:, :2] + regions[:, 2:]) / 2 + chosen[:, :2] / to_crop
        half = size / to_crop / 2
        return Prediction(torch.cat([centre - half, centre + half], dim=1), score[rows, best])

    def single_object_loss(
        self, previous_frame: Frame, frame: Frame, boxes: Tensor, targets: Tensor
    ) -> tuple[Tensor, Tensor]:
        """SiamRPN's own objective on one frame pair ("Vanilla"): templates cut at ``boxes
        (T, 4)`` in ``previous_frame``, searched for around the same boxes in ``frame``;
        anchors overlapping the target box ``targets (T, 4)`` by more than 0.6 (and each
        track's best anchor) are positives, below 0.3 negatives (SiamRPN Sec. 3.4); balanced
        cross-entropy plus Smooth-L1 on the positives' regression.

        Returns the loss and the predicted boxes ``(T, 4)`` (detached).
        """
        tracks = TrackBatch.from_histories([b[None] for b in boxes], 1)
        self.on_birth(previous_frame, tracks)
        score, decoded, regions, cls, deltas = self.heads(frame, tracks)
        n = len(tracks)
        to_crop = self.config.search_size / (regions[:, 2:3] - regions[:, 0:1])
        targets = targets.to(regions)
        centre = (targets[:, :2] + targets[:, 2:]) / 2 - (regions[:, :2] + regions[:, 2:]) / 2
        target = torch.cat([centre * to_crop, (targets[:, 2:] - targets[:, :2]) * to_crop], 1)
        anchors = self.inner.anchors
        iou = torch.stack([box_iou(_xyxy(anchors), _xyxy(t[None]))[:, 0] for t in target])
        positive = (iou > 0.6) | (iou == iou.max(dim=1, keepdim=True).values)
        negative = (iou < 0.3) & ~positive
        logits = cls.reshape(n, 2, -1).transpose(1, 2)  # (T, A, 2)
        ce = F.cross_entropy(logits.reshape(-1, 2), positive.long().flatten(), reduction="none")
        ce = ce.reshape(n, -1)
        cls_loss = ce[positive].mean() + (ce[negative].mean() if negative.any() else 0.0)
        wanted = torch.cat(
            [
                (target[:, None, :2] - anchors[None, :, :2]) / anchors[None, :, 2:],
                torch.log(target[:, None, 2:] / anchors[None, :, 2:]),
            ],
            dim=2,
        )  # (T, A, 4)
        reg_loss = F.smooth_l1_loss(deltas[positive], wanted[positive])
        last = boxes.to(regions)
        predicted = self._choose(score.detach(), decoded.detach(), regions, last).boxes
        return cls_loss + reg_loss, predicted


def _xyxy(cxcywh: Tensor) -> Tensor:
    return torch.cat([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], 1)


def select_anchor(
    score: Tensor, boxes: Tensor, previous: Tensor, window: Tensor, config: SiamRPNConfig
) -> tuple[Tensor, Tensor]:
    """SiamRPN's proposal selection (Sec. 4.3).

    Args:
        score: ``(T, A)`` target probabilities. boxes: ``(T, A, 4)`` decoded ``(cx, cy, w,
            h)``. previous: ``(T, 2)`` the previous box's ``(w, h)`` (same pixels).
        window: ``(A,)`` cosine window. config: its ``penalty_k`` and ``window_influence``.

    Returns:
        ``best (T,)`` the chosen anchor of each track and ``penalty (T, A)``
        ``exp(-k (r_c s_c - 1))`` with ``r_c``, ``s_c`` the aspect and padded-size changes.
    """
    wh = boxes[..., 2:]
    size_change = _change(_padded_size(wh) / _padded_size(previous)[:, None])
    ratio = previous[:, 0:1] / previous[:, 1:2]
    ratio_change = _change(ratio / (wh[..., 0] / wh[..., 1]))
    penalty = torch.exp(-(ratio_change * size_change - 1) * config.penalty_k)
    mixed = penalty * score * (1 - config.window_influence) + window * config.window_influence
    return mixed.argmax(dim=1), penalty


def save_siamrpn(model: SiamRPNModel, path: str | Path, card: dict[str, Any] | None = None) -> None:
    """Weights (safetensors, config in the metadata) and a JSON card, atomically."""
    save_weights(model, model.config.to_dict(), path, card)


def load_siamrpn(path: str | Path, map_location: str | torch.device = "cpu") -> SiamRPNModel:
    """Weights written by :func:`save_siamrpn`, in eval mode."""
    config, state = read_weights(path, "SiamRPN", map_location)
    return load_state(SiamRPNModel(SiamRPNConfig.from_dict(config)), state, path)


SIAMRPN = register_trainable(
    Trainable(
        name="siamrpn",
        config=SiamRPNConfig,
        build=SiamRPNModel,
        predictor=SiamRPNPredictor,
        save=save_siamrpn,
        load=load_siamrpn,
        weights_file="siamrpn.safetensors",
        management=SOT_MANAGEMENT,
        needs_images=True,
        backbones={"light": SiamRPNConfig, "alexnet": SiamRPNConfig.alexnet},
    )
)
"""SiamRPN, trainable; untrained, it keeps each box's centre (its size drifts towards the
nearest anchor shape)."""
