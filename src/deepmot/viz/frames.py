"""Frames with boxes drawn on them: a stable colour per id, id labels, PNGs written atomically.

Images are ``(H, W, 3) uint8`` RGB, as :meth:`deepmot.data.sequence.Sequence.read_image`
returns them; drawing uses OpenCV.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from deepmot.io.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from deepmot.data.sequence import Sequence

__all__ = ["id_color", "draw_boxes", "write_png", "save_frame_with_boxes"]

_GOLDEN = 0.618033988749895


def id_color(track_id: int) -> tuple[int, int, int]:
    """A saturated RGB colour for ``track_id``, the same every time; nearby ids differ."""
    hue = (int(track_id) * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
    """Text on a filled box of ``color`` just above ``(x, y)`` (below it at the top edge)."""
    scale = max(0.35, min(image.shape[:2]) / 1000)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    top = y - th - base - 2 if y - th - base - 2 >= 0 else y
    x = min(max(x, 0), max(0, image.shape[1] - tw - 2))
    cv2.rectangle(image, (x, top), (x + tw + 2, top + th + base + 2), color, -1)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(
        image, text, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA
    )


def draw_boxes(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    ids: np.ndarray | None = None,
    color_by_id: bool = True,
    labels: SequenceABC[str] | None = None,
    color: tuple[int, int, int] = (0, 255, 0),
    thickness: int = 2,
) -> np.ndarray:
    """Draw boxes on a copy of ``image``.

    Args:
        image: ``(H, W, 3) uint8`` RGB (or ``(H, W)`` grey, drawn on as RGB).
        boxes_xyxy: ``(K, 4)`` boxes in pixels.
        ids: ``(K,)`` integer ids, or None.
        color_by_id: colour each box by its id (:func:`id_color`); otherwise use ``color``.
        labels: ``K`` texts to write on the boxes; by default the ids (if given), else none.
        color: RGB colour of boxes without ids or with ``color_by_id=False``.
        thickness: line width in pixels.

    Returns:
        A new ``(H, W, 3) uint8`` RGB image; ``image`` is left as it was.
    """
    image = np.asarray(image)
    if (
        image.dtype != np.uint8
        or image.ndim not in (2, 3)
        or (image.ndim == 3 and image.shape[2] != 3)
    ):
        raise ValueError(
            f"image must be (H, W, 3) or (H, W) uint8, got {image.shape} {image.dtype}"
        )
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image.copy()
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if not np.isfinite(boxes).all():
        raise ValueError("boxes_xyxy must be finite")
    k = len(boxes)
    if ids is not None:
        ids = np.asarray(ids).reshape(-1)
        if len(ids) != k:
            raise ValueError(f"got {k} boxes but {len(ids)} ids")
    if labels is None and ids is not None:
        labels = [str(int(i)) for i in ids]
    if labels is not None and len(labels) != k:
        raise ValueError(f"got {k} boxes but {len(labels)} labels")
    if thickness < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness}")
    for j, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(np.int64).tolist()):
        c = id_color(int(ids[j])) if (ids is not None and color_by_id) else tuple(color)
        cv2.rectangle(out, (x1, y1), (x2, y2), c, thickness, cv2.LINE_AA)
        if labels is not None and labels[j]:
            _label(out, labels[j], x1, y1, c)
    return out


def write_png(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Write an RGB image as a PNG, atomically (a temporary file in the same folder, renamed).

    Returns the path. Raises ``ValueError`` unless the name ends in ``.png``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: the file name must end in .png")
    image = np.asarray(image_rgb)
    bgr = image if image.ndim == 2 else np.ascontiguousarray(image[..., ::-1])
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path} as PNG")
    atomic_write_bytes(path, buf.tobytes())
    return path


def save_frame_with_boxes(
    sequence: Sequence,
    frame: int,
    path: str | Path,
    image: np.ndarray | None = None,
    detections: bool = False,
    thickness: int = 2,
) -> Path:
    """Draw the ground-truth boxes of ``frame`` with their ids and write a PNG.

    Args:
        sequence: a sequence with ground truth (and images, unless ``image`` is given).
        frame: 1-based frame number.
        path: the PNG to write (atomically).
        image: the frame's ``(H, W, 3) uint8`` RGB image; by default read from the sequence.
        detections: also draw the frame's detections, thin and white, under the ground truth.
        thickness: line width of the ground-truth boxes.

    Returns:
        The path written.
    """
    if image is None:
        image = sequence.read_image(frame)
    gt = sequence.gt_at(frame)
    if detections:
        dets = sequence.detections_at(frame)
        image = draw_boxes(image, dets[:, :4], color=(255, 255, 255), thickness=1)
    out = draw_boxes(image, gt.boxes, ids=gt.ids, thickness=thickness)
    _label(out, f"{sequence.name} frame {frame}: {len(gt.ids)} gt boxes", 0, 0, (0, 0, 0))
    return write_png(path, out)
