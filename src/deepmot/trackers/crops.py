"""Crop geometry of the single-object trackers: context regions, batched crops, box mapping.

GOTURN (Held et al., ECCV 2016, Sec. 3.2) looks at a region twice the target's size around its
previous box, in both frames; SiamRPN (Li et al., CVPR 2018, following SiamFC) cuts a square
exemplar of side ``sqrt((w + p)(h + p))`` with ``p = (w + h) / 2`` and a search region scaled
by ``search_size / exemplar_size``. :func:`crop` cuts N regions of one image in a single
``grid_sample`` call, reading zeros outside the image (the padding at its borders);
:func:`to_image` and :func:`to_crop` map boxes between image and crop pixels.

Coordinates are continuous pixels: pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, so a
region ``[x0, y0, x0 + S, y0 + S]`` cropped at size ``S`` with integer corners reproduces the
image's pixels exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["context_regions", "crop", "siamese_regions", "to_crop", "to_image"]


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of the crops."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def context_regions(boxes: Tensor, context: float = 2.0) -> Tensor:
    """GOTURN's search regions: ``boxes (N, 4)`` xyxy scaled by ``context`` about their centres.

    Returns ``(N, 4)`` xyxy; a region may reach outside the image (:func:`crop` pads it).
    """
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (context / 2)
    return torch.cat([centre - half, centre + half], dim=1)


def siamese_regions(boxes: Tensor, context_amount: float = 0.5, scale: float = 1.0) -> Tensor:
    """SiamFC / SiamRPN square regions: side ``scale * sqrt((w + p)(h + p))``, ``p =
    context_amount * (w + h)``, centred on ``boxes (N, 4)`` xyxy. ``scale = 1`` gives the
    exemplar region, ``search_size / exemplar_size`` the search region. Returns ``(N, 4)``."""
    wh = boxes[:, 2:] - boxes[:, :2]
    pad = context_amount * wh.sum(dim=1, keepdim=True)
    side = scale * torch.sqrt(((wh + pad).prod(dim=1, keepdim=True)).clamp_min(1e-12))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    return torch.cat([centre - side / 2, centre + side / 2], dim=1)


def crop(image: Tensor, regions: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Cut ``regions (N, 4)`` xyxy out of ``image (C, H, W)``, each resized to ``size``.

    Bilinear sampling at the crop pixels' centres; samples outside the image read 0. One
    ``grid_sample`` call for all N regions (the image is expanded, not copied).

    Returns:
        ``(N, C, h, w)`` with ``(h, w) = size`` (an int gives square crops).
    """
    if image.ndim != 3:
        raise ValueError(f"image must have shape (C, H, W), got {tuple(image.shape)}")
    if regions.ndim != 2 or regions.shape[-1] != 4:
        raise ValueError(f"regions must have shape (N, 4), got {tuple(regions.shape)}")
    out_h, out_w = _size_pair(size)
    n = len(regions)
    _, height, width = image.shape
    regions = regions.to(image)
    steps_x = (torch.arange(out_w, device=image.device, dtype=image.dtype) + 0.5) / out_w
    steps_y = (torch.arange(out_h, device=image.device, dtype=image.dtype) + 0.5) / out_h
    xs = regions[:, 0:1] + steps_x * (regions[:, 2:3] - regions[:, 0:1])  # (N, w)
    ys = regions[:, 1:2] + steps_y * (regions[:, 3:4] - regions[:, 1:2])  # (N, h)
    gx = (2 * xs / width - 1)[:, None, :].expand(n, out_h, out_w)
    gy = (2 * ys / height - 1)[:, :, None].expand(n, out_h, out_w)
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(
        image[None].expand(n, -1, -1, -1),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )


def to_image(boxes: Tensor, regions: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Boxes ``(N, 4)`` xyxy in crop pixels (crops of ``size``) to image pixels; ``regions
    (N, 4)`` are the crops' regions. Differentiable in both."""
    out_h, out_w = _size_pair(size)
    scale = (regions[:, 2:] - regions[:, :2]) / regions.new_tensor([out_w, out_h])
    origin = regions[:, :2]
    return torch.cat([origin + boxes[:, :2] * scale, origin + boxes[:, 2:] * scale], dim=1)


def to_crop(boxes: Tensor, regions: Tensor, size: int | tuple[int, int]) -> Tensor:
    """The inverse of :func:`to_image`: image-pixel boxes ``(N, 4)`` to crop pixels."""
    out_h, out_w = _size_pair(size)
    scale = regions.new_tensor([out_w, out_h]) / (regions[:, 2:] - regions[:, :2])
    origin = regions[:, :2]
    return torch.cat([(boxes[:, :2] - origin) * scale, (boxes[:, 2:] - origin) * scale], dim=1)
