"""The external ReID network of Tracktor's +ReIDext rows (paper Sec. 5.2, Table 1).

Tracktor's authors re-identify with a ResNet-50 embedding trained with a triplet loss on MOT17
crops; here a torchvision ResNet (``weights=None``: nothing can be downloaded) embeds person
crops cut from the frame with :func:`crop_boxes`, and :func:`batch_hard_triplet_loss` (Hermans
et al., "In Defense of the Triplet Loss for Person Re-Identification", 2017) trains it on
identity crops (:mod:`deepmot.train.reid`). :func:`save_reid` / :func:`load_reid` store it with
:mod:`deepmot.io.weights`; Tracktor uses it with ``reid="external:PATH"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepmot.errors import DeepMOTError
from deepmot.io.weights import load_state, read_weights, save_weights

__all__ = [
    "ReIDConfig",
    "ReIDNet",
    "batch_hard_triplet_loss",
    "crop_boxes",
    "load_reid",
    "save_reid",
]

ARCHS = ("resnet18", "resnet34", "resnet50")


@dataclass(frozen=True)
class ReIDConfig:
    """The external ReID network.

    Attributes:
        arch: torchvision ResNet (the paper's external ReID is a ResNet-50, Sec. 5.2; the
            default resnet18 is the one a 2-core CPU trains in minutes).
        embedding: output size (128, as the ReID head's, supp. "+ReIDhead").
        crop_size: ``(height, width)`` of the crops (person ReID uses 256x128; 64x32 is 16
            times cheaper and enough for the synthetic scenes' sprites).
    """

    arch: str = "resnet18"
    embedding: int = 128
    crop_size: tuple[int, int] = (64, 32)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.embedding < 1 or min(self.crop_size) < 8:
            raise ValueError("embedding must be >= 1 and both crop sides >= 8")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ReIDConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ReIDConfig keys {sorted(unknown)}")
        values = dict(values)
        if "crop_size" in values:
            values["crop_size"] = tuple(values["crop_size"])
        return cls(**values)


class ReIDNet(nn.Module):
    """A ResNet whose classifier is replaced by a linear embedding.

    ``net(crops (B, 3, h, w) in [0, 1]) -> (B, embedding)`` (ImageNet normalisation inside).
    """

    def __init__(self, config: ReIDConfig | None = None) -> None:
        super().__init__()
        import torchvision

        self.config = config if config is not None else ReIDConfig()
        backbone = getattr(torchvision.models, self.config.arch)(weights=None)
        width = backbone.fc.in_features
        backbone.fc = nn.Linear(width, self.config.embedding)
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, crops: Tensor) -> Tensor:
        return self.backbone((crops - self.mean) / self.std)


def crop_boxes(image: Tensor, boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Crops of ``boxes (K, 4)`` xyxy from ``image (3, H, W)`` in [0, 1], each resized to
    ``size = (h, w)`` by bilinear RoI align: ``(K, 3, h, w)``."""
    from torchvision.ops import roi_align

    if len(boxes) == 0:
        return image.new_zeros((0, 3, *size))
    return roi_align(image[None], [boxes.to(image)], output_size=size, aligned=True)


def batch_hard_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float = 0.2) -> Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017): for every anchor, its farthest positive
    and its nearest negative in the batch, ``mean(relu(d(a, p) − d(a, n) + margin))`` with
    Euclidean distances between L2-normalised embeddings.

    Args:
        embeddings: ``(B, E)``; labels: ``(B,)`` identities.
        margin: FaceNet's α = 0.2 (Schroff et al. 2015, the paper's [47]).

    Returns:
        A scalar; anchors without a positive or a negative in the batch are left out (0 when
        none is left, with a gradient of zeros).
    """
    unit = F.normalize(embeddings, dim=1)
    # squared distances of unit vectors; the clamp keeps sqrt's gradient finite at 0
    distance = (2 - 2 * unit @ unit.T).clamp(min=1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    negative = ~same
    usable = positive.any(1) & negative.any(1)
    if not bool(usable.any()):
        return embeddings.sum() * 0
    hardest_positive = distance.masked_fill(~positive, float("-inf")).amax(1)
    hardest_negative = distance.masked_fill(~negative, float("inf")).amin(1)
    losses = F.relu(hardest_positive - hardest_negative + margin)
    return losses[usable].mean()


def save_reid(model: ReIDNet, path: str | Path, card: dict[str, Any] | None = None) -> None:
    """Write the network (safetensors, config in the metadata) and its JSON card."""
    save_weights(model, {"kind": "reid", "reid": model.config.to_dict()}, path, card)


def load_reid(path: str | Path, map_location: str | torch.device = "cpu") -> ReIDNet:
    """Read a network :func:`save_reid` wrote; eval mode. A file of another kind is a
    :class:`~deepmot.errors.DeepMOTError` naming it."""
    stored, state = read_weights(path, "ReID", map_location)
    if stored.get("kind") != "reid":
        raise DeepMOTError(f"{path}: not a ReID network (kind {stored.get('kind')!r})")
    model = ReIDNet(ReIDConfig.from_dict(stored["reid"]))
    load_state(model, state, path)
    return model.to(map_location).eval()
