"""Camera-motion compensation: OpenCV's ECC alignment of consecutive frames, as Tracktor does.

Tracktor (``tracker.py``, ``align``) estimates a Euclidean warp from the previous frame to the
current one with ``cv2.findTransformECC`` (``warp_mode: cv2.MOTION_EUCLIDEAN``,
``number_of_iterations: 100``, ``termination_eps: 0.00001`` in ``cfgs/tracktor.yaml``) and
moves every track's box corners with it before regressing them.

ECC's cost grows with the pixels: on a 768x576 frame it is most of a CPU's tracking time.
``scale`` runs it on frames shrunk by that factor (``cv2.INTER_AREA``) and brings the warp back
to full-size coordinates; a Euclidean warp ``x' = R x + t`` found on images scaled by ``s`` is
``x' = R x + t / s`` at full size (``benchmarks/bench_ecc.py`` measures time and agreement).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

__all__ = ["ecc_warp", "warp_boxes"]

log = logging.getLogger(__name__)


def _gray(image: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``image (H, W, 3) uint8`` RGB as float32 gray, shrunk by ``scale`` (area averaging)."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        height, width = gray.shape
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32)


def ecc_warp(
    previous: np.ndarray,
    current: np.ndarray,
    iterations: int = 100,
    eps: float = 1e-5,
    scale: float = 1.0,
) -> np.ndarray:
    """The Euclidean warp ``(2, 3) float32`` taking coordinates in ``previous`` to those in
    ``current`` (both ``(H, W, 3) uint8`` RGB), estimated on the frames shrunk by ``scale``
    (``0 < scale <= 1``) and returned in full-size coordinates; the identity where ECC does not
    converge."""
    import cv2

    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
    try:
        _, warp = cv2.findTransformECC(
            _gray(previous, scale),
            _gray(current, scale),
            warp,
            cv2.MOTION_EUCLIDEAN,
            criteria,
            None,
            1,
        )
    except cv2.error as error:  # flat images, no convergence
        log.debug("ECC did not converge (%s); no camera-motion compensation", error)
        return np.eye(2, 3, dtype=np.float32)
    warp[:, 2] /= scale
    return warp


def warp_boxes(boxes: Tensor, warp: np.ndarray) -> Tensor:
    """``boxes (..., 4)`` xyxy with both corners moved by ``warp (2, 3)`` (as Tracktor moves
    them); differentiable with respect to ``boxes``."""
    matrix = torch.as_tensor(warp, dtype=boxes.dtype, device=boxes.device)
    corners = boxes.reshape(*boxes.shape[:-1], 2, 2)  # (..., corner, xy)
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    return moved.reshape(boxes.shape)
