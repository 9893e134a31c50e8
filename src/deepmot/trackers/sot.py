"""What the single-object trackers (GOTURN, SiamRPN) share: frames as tensors, the per-track
frame memory, backbones, and their configs' dict round trip.

MOT-by-SOT (paper Sec. 5) keeps one single-object tracker state per track, in the track's
``extras``: here the frame its last box was seen in (GOTURN's previous crop is cut from it) and,
for SiamRPN, the template cut at birth. The state is written by ``on_birth`` (a new track) and
by every ``predict`` (the frame becomes the next call's previous frame); all tracks of a frame
go through one batched forward pass.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from deepmot.trackers.predictor import Frame

__all__ = [
    "FRAME_KEY",
    "as_image",
    "backbone",
    "config_from_dict",
    "config_to_dict",
    "previous_frames",
    "remember_frame",
]

FRAME_KEY = "sot_frame"
"""The ``extras`` key holding the ``(3, H, W)`` frame a track's last box lies in."""


def as_image(frame: Frame, device: torch.device) -> Tensor:
    """``(H, W, 3) uint8`` RGB (numpy or tensor) to ``(3, H, W) float32`` in [0, 1] on
    ``device``; an image already converted passes through."""
    if frame is None:
        raise ValueError("a single-object tracker needs the frame")
    if (
        isinstance(frame, Tensor)
        and frame.ndim == 3
        and frame.shape[0] == 3
        and frame.is_floating_point()
    ):
        return frame.to(device)
    tensor = frame if isinstance(frame, Tensor) else torch.from_numpy(np.array(frame))
    if tensor.ndim != 3 or tensor.shape[-1] != 3 or tensor.dtype != torch.uint8:
        raise ValueError(
            f"frame must be an (H, W, 3) uint8 RGB image, got {tensor.dtype} {tuple(tensor.shape)}"
        )
    return tensor.to(device).permute(2, 0, 1).float().div_(255.0)


def remember_frame(extras: list[dict[str, Any]], image: Tensor) -> None:
    """Record ``image`` as the frame of every track's last box (one shared tensor)."""
    for extra in extras:
        extra[FRAME_KEY] = image


def previous_frames(
    extras: list[dict[str, Any]], current: Tensor
) -> list[tuple[Tensor, list[int]]]:
    """Group tracks by the frame of their last box: ``[(image, track indices)]``. A track
    without one (never seen by ``on_birth``) uses ``current``."""
    groups: dict[int, tuple[Tensor, list[int]]] = {}
    for i, extra in enumerate(extras):
        image = extra.get(FRAME_KEY, current)
        groups.setdefault(id(image), (image, []))[1].append(i)
    return list(groups.values())


def backbone(kind: str, padding: bool) -> tuple[nn.Module, int]:
    """A convolutional backbone and its output channels.

    ``"light"``: four small ReLU convolutions, stride 8 (for CPU-scale runs); ``"alexnet"``:
    torchvision's AlexNet features (no pre-trained weights here, no internet), the paper's
    backbone for both trackers. ``padding=False`` gives valid convolutions (SiamRPN's
    translation-equivariant features).
    """
    if kind == "alexnet":
        from torchvision.models import alexnet

        return alexnet(weights=None).features, 256
    if kind != "light":
        raise ValueError(f"backbone must be 'light' or 'alexnet', got {kind!r}")
    p = 1 if padding else 0
    layers = nn.Sequential(
        nn.Conv2d(3, 32, 5, stride=2, padding=2 * p),
        nn.ReLU(inplace=True),
        nn.Conv2d(32, 64, 3, stride=2, padding=p),
        nn.ReLU(inplace=True),
        nn.Conv2d(64, 96, 3, stride=2, padding=p),
        nn.ReLU(inplace=True),
        nn.Conv2d(96, 128, 3, padding=p),
        nn.ReLU(inplace=True),
    )
    return layers, 128


def config_to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)``, tuples restored from JSON lists; ValueError on unknown keys."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
