"""Box geometry: format conversions, differentiable pairwise IoU and the DeepMOT distance matrix.

Boxes are ``(..., K, 4)`` tensors; ``xyxy`` is ``(x1, y1, x2, y2)``, ``xywh`` is
``(x, y, w, h)`` with ``(x, y)`` the top-left corner (MOTChallenge files), ``cxcywh`` is
``(cx, cy, w, h)``. Leading dimensions are batch dimensions and broadcast.

Every function takes a ``torch.Tensor`` or a ``numpy.ndarray`` and returns the same kind.
Everything here is differentiable, including at degenerate boxes: zero-area boxes and
coinciding centres give finite values and finite gradients (no NaN).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "xywh_to_xyxy",
    "xyxy_to_xywh",
    "xyxy_to_cxcywh",
    "cxcywh_to_xyxy",
    "box_area",
    "box_iou",
    "center_distance",
    "cosine_distance",
    "distance_matrix",
]

ArrayOrTensor = TypeVar("ArrayOrTensor", Tensor, np.ndarray)


def _numpy_in_numpy_out(fn: Callable[..., Tensor]) -> Callable[..., ArrayOrTensor]:
    """Let a tensor function take numpy arrays: they go in as tensors and come back as arrays."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not any(isinstance(a, np.ndarray) for a in (*args, *kwargs.values())):
            return fn(*args, **kwargs)

        def to_tensor(a):
            return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a

        out = fn(*map(to_tensor, args), **{k: to_tensor(v) for k, v in kwargs.items()})
        return out.numpy()

    return wrapper


def _check_boxes(boxes: Tensor, name: str) -> None:
    if not isinstance(boxes, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy.ndarray, got {type(boxes).__name__}"
        )
    if boxes.ndim < 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., K, 4), got {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        raise TypeError(f"{name} must hold floating-point coordinates, got {boxes.dtype}")


@_numpy_in_numpy_out
def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(..., 4)`` top-left + size → corners."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


@_numpy_in_numpy_out
def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """``(..., 4)`` corners → top-left + size."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


@_numpy_in_numpy_out
def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(..., 4)`` corners → centre + size."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


@_numpy_in_numpy_out
def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(..., 4)`` centre + size → corners."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


@_numpy_in_numpy_out
def box_area(boxes: Tensor) -> Tensor:
    """Area of ``(..., K, 4)`` xyxy boxes, ``(..., K)``; inverted boxes count as empty."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(
        min=0
    )


def _safe_divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator``, or 0 where the denominator is 0 or below the dtype's
    resolution (e.g. a union of 1e-45 px²), so that values and gradients stay finite."""
    positive = denominator > torch.finfo(denominator.dtype).eps
    return torch.where(positive, numerator / torch.where(positive, denominator, 1), 0)


@_numpy_in_numpy_out
def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise intersection over union.

    Args:
        boxes1: ``(..., N, 4)`` xyxy.
        boxes2: ``(..., M, 4)`` xyxy; leading dimensions broadcast with ``boxes1``'s.

    Returns:
        ``(..., N, M)`` IoU in [0, 1]. Two empty boxes have IoU 0 (not NaN), and the gradient
        there is 0.
    """
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    a, b = boxes1[..., :, None, :], boxes2[..., None, :, :]
    width = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    height = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(
        min=0
    )
    inter = width * height
    union = box_area(boxes1)[..., :, None] + box_area(boxes2)[..., None, :] - inter
    return _safe_divide(inter, union)


def _as_size(value: float | Tensor, like: Tensor) -> Tensor:
    """An image dimension as a tensor that broadcasts over ``(..., N, M)``: scalar or ``(B,)``."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.ndim > 1:
        raise ValueError(
            f"an image dimension must be a number or a (B,) tensor, got shape {tuple(value.shape)}"
        )
    if (value <= 0).any():
        raise ValueError("image width and height must be > 0")
    return value[..., None, None] if value.ndim == 1 else value


@_numpy_in_numpy_out
def center_distance(
    boxes1: Tensor, boxes2: Tensor, im_width: float | Tensor, im_height: float | Tensor
) -> Tensor:
    """Pairwise centre distance normalised by the image diagonal (paper eq. 4).

    Args:
        boxes1: ``(..., N, 4)`` xyxy; boxes2: ``(..., M, 4)`` xyxy.
        im_width, im_height: image size in pixels, a number or a ``(B,)`` tensor per batch item.

    Returns:
        ``(..., N, M)`` in [0, 1] for boxes inside the image. The gradient is 0 (not NaN) where
        two centres coincide.
    """
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    c1 = (boxes1[..., :2] + boxes1[..., 2:]) / 2
    c2 = (boxes2[..., :2] + boxes2[..., 2:]) / 2
    squared = ((c1[..., :, None, :] - c2[..., None, :, :]) ** 2).sum(-1)
    positive = squared > 0
    distance = torch.where(positive, torch.sqrt(torch.where(positive, squared, 1)), 0)
    width, height = _as_size(im_width, distance), _as_size(im_height, distance)
    return distance / torch.sqrt(width**2 + height**2)


@_numpy_in_numpy_out
def cosine_distance(embeddings1: Tensor, embeddings2: Tensor) -> Tensor:
    """Pairwise ``(1 - cosine similarity) / 2`` in [0, 1].

    Args:
        embeddings1: ``(..., N, C)``; embeddings2: ``(..., M, C)``.

    Returns:
        ``(..., N, M)``. A zero vector is treated as orthogonal to everything (distance 0.5).
    """
    norm1 = embeddings1.norm(dim=-1, keepdim=True)
    norm2 = embeddings2.norm(dim=-1, keepdim=True)
    unit1 = _safe_divide(embeddings1, norm1)
    unit2 = _safe_divide(embeddings2, norm2)
    return (1 - unit1 @ unit2.transpose(-1, -2)) / 2


@_numpy_in_numpy_out
def distance_matrix(
    tracks: Tensor,
    objects: Tensor,
    im_width: float | Tensor,
    im_height: float | Tensor,
    track_embeddings: Tensor | None = None,
    object_embeddings: Tensor | None = None,
) -> Tensor:
    """The DeepMOT distance matrix D (paper eqs. 3–4).

    ``d_nm = (f(x_n, y_m) + (1 - IoU(x_n, y_m))) / 2`` with ``f`` the centre distance over the
    image diagonal. With embeddings, the cosine distance joins the average as a third term
    (``(f + J + cos) / 3``), as for the paper's ReID head; D stays in [0, 1].

    Args:
        tracks: ``(..., N, 4)`` xyxy predictions (rows of D).
        objects: ``(..., M, 4)`` xyxy ground truth or detections (columns of D).
        im_width, im_height: image size, a number or a ``(B,)`` tensor per batch item.
        track_embeddings: optional ``(..., N, C)``; object_embeddings: optional ``(..., M, C)``.

    Returns:
        D of shape ``(..., N, M)``, differentiable with respect to every input.
    """
    if (track_embeddings is None) != (object_embeddings is None):
        raise ValueError("give both track_embeddings and object_embeddings, or neither")
    terms = [center_distance(tracks, objects, im_width, im_height), 1 - box_iou(tracks, objects)]
    if track_embeddings is not None:
        terms.append(cosine_distance(track_embeddings, object_embeddings))
    return torch.stack(terms).mean(0)
