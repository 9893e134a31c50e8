"""Where a sequence's frames come from: an image folder, or a synthetic scene rendered on demand.

A frame source maps a frame number (1-based, in the source's own numbering) to the image as an
``(H, W, 3) uint8`` RGB array. :class:`~deepmot.data.sequence.Sequence` holds one and reads
frames through it, so trackers that regress from pixels train and track on a MOTChallenge
``img1/`` folder and on in-memory synthetic scenes alike, without writing them to disk.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from deepmot.errors import DeepMOTError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["FrameSource", "ImageFolder", "RenderedFrames", "image_to_tensor"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class FrameSource(Protocol):
    """``read(frame) -> (H, W, 3) uint8`` RGB for ``frame`` in the source's numbering."""

    def read(self, frame: int) -> np.ndarray: ...


class ImageFolder:
    """Frames stored as ``<image_dir>/<frame:06d><ext>`` (the MOTChallenge ``img1/`` layout).

    Args:
        image_dir: the folder.
        ext: file extension with its dot (``.jpg``).
    """

    def __init__(self, image_dir: str | Path, ext: str = ".jpg") -> None:
        self.image_dir = Path(image_dir)
        self.ext = ext

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.image_dir)!r}, {self.ext!r})"

    def path(self, frame: int) -> Path:
        """The file of ``frame``."""
        return self.image_dir / f"{frame:06d}{self.ext}"

    def read(self, frame: int) -> np.ndarray:
        """Decode ``frame`` (OpenCV) as RGB; a missing or unreadable file is a DeepMOTError."""
        import cv2

        path = self.path(frame)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DeepMOTError(f"{path}: missing or unreadable image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class RenderedFrames:
    """Frames rendered on demand by ``render(frame)`` (a synthetic scene), with an LRU cache.

    Rendering is deterministic (the scene's seed), so a cached frame equals a re-rendered one.

    Args:
        render: ``frame -> (H, W, 3) uint8`` RGB, e.g. ``SyntheticScene.render_frame``.
        cache_size: frames kept (the last ones read); 0 disables the cache.
    """

    def __init__(self, render: Any, cache_size: int = 32) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.render = render
        self.cache_size = cache_size
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def read(self, frame: int) -> np.ndarray:
        """The rendered ``frame`` (read-only array; copy it to draw on it)."""
        image = self._cache.get(frame)
        if image is not None:
            self._cache.move_to_end(frame)
            return image
        image = np.asarray(self.render(frame), dtype=np.uint8)
        image.setflags(write=False)
        if self.cache_size:
            self._cache[frame] = image
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image


def image_to_tensor(image: np.ndarray, normalize: bool = False) -> Tensor:
    """``(H, W, 3) uint8`` RGB to a ``(3, H, W) float32`` tensor in [0, 1]; with ``normalize``,
    standardised with the ImageNet mean and standard deviation (what torchvision's backbones
    were trained with)."""
    import torch

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"image must be an (H, W, 3) uint8 array, got {image.dtype} {tuple(image.shape)}"
        )
    if not image.flags.writeable:  # a cached frame: torch.from_numpy would warn on it
        image = image.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
        std = torch.tensor(IMAGENET_STD)[:, None, None]
        tensor = (tensor - mean) / std
    return tensor
