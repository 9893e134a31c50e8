"""GOTURN (Held et al., ECCV 2016) as a MOT-by-SOT predictor (paper Sec. 5, Tables 3-4).

Per track, the previous frame is cropped around the track's box at t − 1 with twice its size
of context, and the current frame at the same region (the search region). A shared
convolutional backbone encodes both crops, their features are concatenated, and fully
connected layers regress the box in the search region. All tracks of a frame go through one
forward pass (:func:`~deepmot.trackers.crops.crop` cuts the N crops in one call).

The regression is residual: the head outputs the change of the box's corners from where the
previous box sits in the search region (its centre half), in units of the search region, and
its last layer starts at zero, so the untrained model keeps each box where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepmot.io.weights import load_state, read_weights, save_weights
from deepmot.trackers.crops import context_regions, crop, to_crop, to_image
from deepmot.trackers.management import SOT_MANAGEMENT
from deepmot.trackers.predictor import Frame, Prediction, Predictor, TrackBatch, module_device
from deepmot.trackers.registry import Trainable, register_trainable
from deepmot.trackers.sot import (
    as_image,
    backbone,
    config_from_dict,
    config_to_dict,
    previous_frames,
    remember_frame,
)

__all__ = ["GOTURN", "GoturnConfig", "GoturnModel", "GoturnPredictor", "load_goturn", "save_goturn"]


@dataclass(frozen=True)
class GoturnConfig:
    """GOTURN's settings.

    Attributes:
        backbone: ``"light"`` (CPU-scale) or ``"alexnet"`` (the paper's CaffeNet-style
            features, GOTURN Sec. 3.3).
        crop_size: side of both crops in pixels (GOTURN: 227, AlexNet's input; 64 for light).
        context: search region size over the box size (GOTURN Sec. 3.2: "twice as large").
        hidden: width of the fully connected layers (GOTURN: 4096; 256 for light).
        pool: side of the feature map after adaptive average pooling (AlexNet: 6).
    """

    backbone: str = "light"
    crop_size: int = 64
    context: float = 2.0
    hidden: int = 256
    pool: int = 4

    def __post_init__(self) -> None:
        if self.backbone not in ("light", "alexnet"):
            raise ValueError(f"backbone must be 'light' or 'alexnet', got {self.backbone!r}")
        if self.crop_size < 16 or self.hidden < 1 or self.pool < 1:
            raise ValueError("crop_size must be >= 16, hidden and pool >= 1")
        if self.context < 1:
            raise ValueError(f"context must be >= 1, got {self.context}")

    @classmethod
    def alexnet(cls) -> GoturnConfig:
        """The paper's sizes: AlexNet features on 227-pixel crops, three 4096-wide layers."""
        return cls(backbone="alexnet", crop_size=227, hidden=4096, pool=6)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GoturnConfig:
        return config_from_dict(cls, values)


class GoturnModel(nn.Module):
    """Two-stream CNN (shared weights) + fully connected regressor.

    ``forward(previous (N, 3, S, S), search (N, 3, S, S))`` in [0, 1] -> ``(N, 4)`` xyxy of
    the box in the search region, in units of its side (the previous box is at
    ``[0.25, 0.25, 0.75, 0.75]`` for context 2).
    """

    def __init__(self, config: GoturnConfig | None = None) -> None:
        super().__init__()
        self.config = config or GoturnConfig()
        self.features, channels = backbone(self.config.backbone, padding=True)
        self.pool = nn.AdaptiveAvgPool2d(self.config.pool)
        width, hidden = 2 * channels * self.config.pool**2, self.config.hidden
        self.regressor = nn.Sequential(
            nn.Linear(width, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 4),
        )
        nn.init.zeros_(self.regressor[-1].weight)
        nn.init.zeros_(self.regressor[-1].bias)
        half = 0.5 / self.config.context
        self.register_buffer("base", torch.tensor([0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half]))

    def encode(self, crops: Tensor) -> Tensor:
        """``(N, 3, S, S)`` -> ``(N, F)`` pooled features (inputs centred at 0)."""
        return self.pool(self.features(crops - 0.5)).flatten(1)

    def forward(self, previous: Tensor, search: Tensor) -> Tensor:
        both = self.encode(torch.cat([previous, search]))
        prev, cur = both.split(len(previous))
        return self.base + self.regressor(torch.cat([prev, cur], dim=1))


class GoturnPredictor(Predictor):
    """:class:`GoturnModel` behind the predictor contract; state per track: the frame of its
    last box (``extras``), written at birth and after every prediction."""

    history_len = 1
    needs_images = True
    has_single_object_loss = True

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        inner = getattr(model, "module", model)
        self.config: GoturnConfig = inner.config

    def on_birth(self, frame: Frame, tracks: TrackBatch) -> None:
        """New tracks: their box lies in ``frame``."""
        remember_frame(tracks.extras, as_image(frame, module_device(self.model)))

    def crops(self, frame: Frame, tracks: TrackBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(current image, regions (T, 4), previous crops, search crops)``, batched."""
        current = as_image(frame, module_device(self.model))
        regions = context_regions(tracks.last.detach().to(current), self.config.context)
        size = self.config.crop_size
        search = crop(current, regions, size)
        previous = torch.empty_like(search)
        for image, rows in previous_frames(tracks.extras, current):
            index = torch.tensor(rows, device=current.device)
            previous[index] = crop(image, regions[index], size)
        return current, regions, previous, search

    def predict(
        self,
        frame: Frame,
        tracks: TrackBatch,
        detections: Tensor | None,
        image_size: tuple[int, int] | None,
    ) -> Prediction:
        """Boxes ``(T, 4)`` at t, differentiable in the model's parameters."""
        if len(tracks) == 0:
            return Prediction(tracks.last.detach())
        current, regions, previous, search = self.crops(frame, tracks)
        size = self.config.crop_size
        boxes = to_image(self.model(previous, search) * size, regions, size)
        remember_frame(tracks.extras, current)
        return Prediction(boxes)

    def single_object_loss(
        self, previous_frame: Frame, frame: Frame, boxes: Tensor, targets: Tensor
    ) -> tuple[Tensor, Tensor]:
        """GOTURN's own objective on one frame pair ("Vanilla", GOTURN Sec. 3.4): L1 between
        the regressed box and the target box ``targets (T, 4)`` in search-region units, the
        tracks starting at ``boxes (T, 4)`` in ``previous_frame``.

        Returns the loss and the predicted boxes ``(T, 4)`` in image pixels (detached).
        """
        tracks = TrackBatch.from_histories([b[None] for b in boxes], 1)
        self.on_birth(previous_frame, tracks)
        _, regions, previous, search = self.crops(frame, tracks)
        size = self.config.crop_size
        out = self.model(previous, search)
        wanted = to_crop(targets.to(regions), regions, size) / size
        predicted = to_image(out.detach() * size, regions, size)
        return F.l1_loss(out, wanted), predicted


def save_goturn(model: GoturnModel, path: str | Path, card: dict[str, Any] | None = None) -> None:
    """Weights (safetensors, config in the metadata) and a JSON card, atomically."""
    save_weights(model, model.config.to_dict(), path, card)


def load_goturn(path: str | Path, map_location: str | torch.device = "cpu") -> GoturnModel:
    """Weights written by :func:`save_goturn`, in eval mode."""
    config, state = read_weights(path, "GOTURN", map_location)
    return load_state(GoturnModel(GoturnConfig.from_dict(config)), state, path)


GOTURN = register_trainable(
    Trainable(
        name="goturn",
        config=GoturnConfig,
        build=GoturnModel,
        predictor=GoturnPredictor,
        save=save_goturn,
        load=load_goturn,
        weights_file="goturn.safetensors",
        management=SOT_MANAGEMENT,
        needs_images=True,
        backbones={"light": GoturnConfig, "alexnet": GoturnConfig.alexnet},
    )
)
"""GOTURN, trainable; untrained, it keeps each box where it was."""
