"""Tracks over the ground truth (and over the frame, where the sequence has one): a picture of
one frame, or a video of a sequence.

Each frame shows the ground-truth boxes (thin, grey), the tracks (coloured by id, with a tail
through their last centres), the objects no track covers (red, "miss") and the tracks that
cover no object (a red cross, "FP"). Misses and false positives come from a one-to-one IoU
matching of the frame (IoU ≥ 0.5, as the evaluator's), without the evaluator's ID memory:
they are the frame's FN and FP, not its ID switches. A header band says what is shown.

Images are ``(H, W, 3) uint8`` RGB; boxes ``(K, 4)`` xyxy pixels.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from deepmot.viz.frames import draw_boxes, id_color, write_png

if TYPE_CHECKING:
    from deepmot.data.sequence import Sequence
    from deepmot.io.mot import Results

__all__ = [
    "FrameMatch",
    "draw_tracking_frame",
    "match_frame",
    "render_tracking_video",
    "tracking_frames",
    "write_tracking_png",
]

GT_COLOR = (150, 150, 150)
MISS_COLOR = (230, 20, 20)
CANVAS = 238  # grey level of the background when a sequence has no frames
LEGEND = "grey: ground truth; colour: track id (tail: last centres); red: miss; X: false positive"


@dataclass(frozen=True)
class FrameMatch:
    """One frame's matching: ``pairs (P, 2)`` track/object indices, ``fp`` track indices
    matched to no object, ``fn`` object indices matched to no track."""

    pairs: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def match_frame(tracks: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> FrameMatch:
    """One-to-one matching of ``tracks (N, 4)`` to ``gt (M, 4)`` maximising IoU, pairs with
    IoU ≥ ``threshold`` only."""
    from scipy.optimize import linear_sum_assignment

    tracks = np.asarray(tracks, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    pairs = np.zeros((0, 2), np.int64)
    if len(tracks) and len(gt):
        iou = _iou(tracks, gt)
        rows, cols = linear_sum_assignment(-iou)
        keep = iou[rows, cols] >= threshold
        pairs = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    fp = np.setdiff1d(np.arange(len(tracks)), pairs[:, 0])
    fn = np.setdiff1d(np.arange(len(gt)), pairs[:, 1])
    return FrameMatch(pairs, fp, fn)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _text_scale(width: int) -> float:
    return max(0.45, width / 1400)


def _line_height(width: int) -> int:
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, _text_scale(width), 1)
    return th + base + 6


def _header(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """``image`` below a white band with ``lines`` of text, wrapped to its width."""
    font, width = cv2.FONT_HERSHEY_SIMPLEX, image.shape[1] - 12
    scale = _text_scale(image.shape[1])
    wrapped: list[str] = []
    for text in lines:
        current = ""
        for word in text.split(" "):
            trial = f"{current} {word}".strip()
            if current and cv2.getTextSize(trial, font, scale, 1)[0][0] > width:
                wrapped.append(current)
                current = word
            else:
                current = trial
        wrapped.append(current)
    step = _line_height(image.shape[1])
    th = cv2.getTextSize("Ag", font, scale, 1)[0][1]
    band = np.full((step * len(wrapped) + 6, image.shape[1], 3), 255, np.uint8)
    for k, text in enumerate(wrapped):
        y = 4 + step * k + th + 2
        cv2.putText(band, text, (6, y), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def draw_tracking_frame(
    image: np.ndarray,
    tracks: np.ndarray,
    track_ids: np.ndarray,
    gt: np.ndarray,
    tails: dict[int, Iterable[tuple[float, float]]] | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Draw one frame's tracks over its ground truth (see the module doc).

    Args:
        image: the frame ``(H, W, 3) uint8`` RGB (or a blank canvas of its size).
        tracks: ``(N, 4)`` xyxy; track_ids: ``(N,)``.
        gt: ``(M, 4)`` xyxy of the objects an evaluation counts.
        tails: track id to its last centres ``(x, y)``, oldest first.
        title: a line for the header band (with the counts and the legend below it).

    Returns:
        A new RGB image: the header band above the frame.
    """
    tracks = np.asarray(tracks, np.float64).reshape(-1, 4)
    track_ids = np.asarray(track_ids, np.int64).reshape(-1)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    if len(track_ids) != len(tracks):
        raise ValueError(f"got {len(tracks)} tracks but {len(track_ids)} ids")
    match = match_frame(tracks, gt)
    thick = max(1, round(min(image.shape[:2]) / 400))
    out = draw_boxes(image, gt, color=GT_COLOR, color_by_id=False, thickness=thick)
    for tid, centres in (tails or {}).items():
        points = np.round(np.asarray(list(centres), np.float64)).astype(np.int32)
        if len(points) > 1:
            cv2.polylines(out, [points.reshape(-1, 1, 2)], False, id_color(tid), thick, cv2.LINE_AA)
    if len(match.fn):
        out = draw_boxes(
            out,
            gt[match.fn],
            labels=["miss"] * len(match.fn),
            color=MISS_COLOR,
            color_by_id=False,
            thickness=2 * thick,
        )
    labels = [str(int(i)) for i in track_ids]
    for k in match.fp:
        labels[k] = f"{int(track_ids[k])} FP"
    out = draw_boxes(out, tracks, ids=track_ids, labels=labels, thickness=2 * thick)
    for x1, y1, x2, y2 in np.round(tracks[match.fp]).astype(np.int64).tolist():
        cv2.line(out, (x1, y1), (x2, y2), MISS_COLOR, thick, cv2.LINE_AA)
        cv2.line(out, (x1, y2), (x2, y1), MISS_COLOR, thick, cv2.LINE_AA)
    counts = (
        f"{len(tracks)} tracks, {len(gt)} objects: {len(match.pairs)} matched (IoU >= 0.5), "
        f"{len(match.fp)} false positives, {len(match.fn)} misses"
    )
    return _header(out, [*([title] if title else []), counts, LEGEND])


def _frame_image(sequence: Sequence, frame: int) -> np.ndarray:
    if sequence.has_images:
        return np.asarray(sequence.read_image(frame))
    if not (sequence.im_width and sequence.im_height):
        raise ValueError(f"sequence {sequence.name}: no frames and no image size to draw on")
    return np.full((int(sequence.im_height), int(sequence.im_width), 3), CANVAS, np.uint8)


def tracking_frames(
    sequence: Sequence,
    results: Results,
    title: str = "",
    tail: int = 20,
    frames: Iterable[int] | None = None,
    frame_offset: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame, picture)`` for the frames of ``sequence`` (all by default) with ``results``
    (tracker output in the sequence's frame numbers) drawn over its ground truth.

    ``frame_offset`` is added to the frame numbers shown (a clip's frames in its sequence).
    """
    wanted = set(sequence.frames if frames is None else frames)
    history: dict[int, deque] = defaultdict(lambda: deque(maxlen=tail))
    boxes = np.array(results.boxes_xywh, np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    order = np.searchsorted(results.frames, np.arange(len(sequence) + 2))
    for frame in sequence.frames:
        s = slice(order[frame], order[frame + 1])
        ids, xyxy = np.asarray(results.ids[s]), boxes[s]
        for tid, (x1, y1, x2, y2) in zip(ids.tolist(), xyxy.tolist(), strict=True):
            history[tid].append(((x1 + x2) / 2, (y1 + y2) / 2))
        if frame not in wanted:
            continue
        gt = sequence.gt_at(frame).active_pedestrians().boxes if sequence.gt is not None else []
        tails = {tid: history[tid] for tid in ids.tolist()}
        heading = f"{title}{'; ' if title else ''}{sequence.name}, frame {frame + frame_offset}"
        yield (
            frame,
            draw_tracking_frame(_frame_image(sequence, frame), xyxy, ids, gt, tails, heading),
        )


def write_tracking_png(
    sequence: Sequence,
    results: Results,
    frame: int,
    path: str | Path,
    title: str = "",
    frame_offset: int = 0,
) -> Path:
    """One frame of :func:`tracking_frames` as a PNG (atomically)."""
    for _, picture in tracking_frames(
        sequence, results, title, frames=[frame], frame_offset=frame_offset
    ):
        return write_png(path, picture)
    raise ValueError(f"frame {frame} is not a frame of {sequence.name}")


def _bottom_aligned(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``picture`` on a white ``size`` (width, height) canvas, its bottom (the frame) fixed; a
    taller header loses its top lines."""
    width, height = size
    canvas = np.full((height, width, 3), 255, np.uint8)
    part = picture[-height:, :width]
    canvas[height - part.shape[0] :, : part.shape[1]] = part
    return canvas


def render_tracking_video(
    sequence: Sequence,
    results: Results,
    path: str | Path,
    title: str = "",
    fps: float | None = None,
    frame_offset: int = 0,
    max_width: int = 1280,
) -> Path:
    """Write :func:`tracking_frames` of every frame as a video (OpenCV's writer; the codec
    from the name: ``.mp4`` → mp4v, ``.avi`` → MJPG). The file appears only when complete.

    ``fps`` defaults to the sequence's frame rate (else 25); frames wider than ``max_width``
    are scaled down.
    """
    path = Path(path)
    codecs = {".mp4": "mp4v", ".avi": "MJPG"}
    if path.suffix.lower() not in codecs:
        raise ValueError(f"{path}: the video's name must end in .mp4 or .avi")
    fps = fps or sequence.frame_rate or 25.0
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer = None
    try:
        for _, picture in tracking_frames(sequence, results, title, frame_offset=frame_offset):
            if picture.shape[1] > max_width:
                height = round(picture.shape[0] * max_width / picture.shape[1])
                picture = cv2.resize(picture, (max_width, height), interpolation=cv2.INTER_AREA)
            if writer is None:
                # room for two more header lines than the first frame's (texts vary per frame)
                spare = 2 * _line_height(picture.shape[1])
                size = (picture.shape[1], picture.shape[0] + spare)
                fourcc = cv2.VideoWriter_fourcc(*codecs[path.suffix.lower()])
                writer = cv2.VideoWriter(str(partial), fourcc, float(fps), size)
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {path.suffix} videos here")
            writer.write(np.ascontiguousarray(_bottom_aligned(picture, size)[..., ::-1]))
        if writer is None:
            raise ValueError(f"sequence {sequence.name} has no frames to render")
        writer.release()
        writer = None
        os.replace(partial, path)
    finally:
        if writer is not None:
            writer.release()
        partial.unlink(missing_ok=True)
    return path
